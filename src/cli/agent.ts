// `xlb agent`: parse options, then hand over to the agent. The agent (datapath, addon, kube
// client) is imported only after parsing, so `--help` and usage errors never load it.
import { agentHelp, parseAgentOptions, UsageError, wantsHelp, type AgentOptions } from './options.js';

export const summary = 'run the node agent (programs the datapath from Services)';

interface AgentModule {
  runAgent(opts: AgentOptions): Promise<number>;
}

export async function run(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    console.log(agentHelp());
    return 0;
  }
  let opts: AgentOptions;
  try {
    opts = parseAgentOptions(argv, process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`xlb agent: ${e.message}`);
    return 2;
  }
  // A variable specifier keeps tsc from resolving the module at compile time: run.ts is
  // written separately and this file must compile before it exists.
  const runModule = '../agent/run.js';
  const { runAgent } = (await import(runModule)) as AgentModule;
  return runAgent(opts);
}
