// `xlb toggle on|off`: switch the datapath on this node (manifests mode; in a cluster the
// Node label xlb.io/enabled decides and the agent says so).
import { call, COMMON_HELP, parseFlags, runCli, withAgent } from './client.js';
import { render, UsageError } from './output.js';

export const summary = 'switch xlb on or off on this node (manifests mode)';

const HELP = ['usage: xlb toggle on|off [flags]', '', summary, '', 'flags:', ...COMMON_HELP].join('\n');

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { common, positionals } = parseFlags(argv);
    if (common.help) { console.log(HELP); return 0; }
    const [want, ...rest] = positionals;
    if ((want !== 'on' && want !== 'off') || rest.length) throw new UsageError(`toggle needs exactly one of 'on' or 'off'`);
    return withAgent(common, async (client) => {
      const res = await call(client, 'Toggle', { on: want === 'on' }, common.where);
      console.log(render(res, common.output, () => `xlb is ${res.enabled ? 'on' : 'off'} on this node (${res.reason})`));
      return 0;
    });
  });
}
