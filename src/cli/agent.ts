// `xlb agent`: parse options, then hand over to the agent. The agent (datapath, addon, kube
// client) is imported only after parsing, so `--help` and usage errors never load it.
import { agentHelp, parseAgentOptions, UsageError, wantsHelp, type AgentOptions } from '../agent/options.js';

export const summary = 'run the node agent (programs the datapath from Services)';

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
  // Imported only now: the agent loads the addon and the kube client, which --help and usage
  // errors never need.
  const { runAgent } = await import('../agent/run.js');
  return runAgent(opts);
}
