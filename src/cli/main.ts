#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=2
// `xlb` entry point: dispatches to one module per command. Each command module exports
// `run(argv: string[]): Promise<number>` (the exit code) and `summary` (one line for help).
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  agent: { summary: 'run the node agent (programs the datapath from Services)', load: () => import('./agent.js') },
  status: { summary: "show this node's xlb status", load: () => import('./status.js') },
  services: { summary: 'list Services as xlb programs them (desired state)', load: () => import('./services.js') },
  maps: { summary: 'decode the kernel maps (actual state)', load: () => import('./maps.js') },
  stats: { summary: 'per-service packets, bytes, new flows; drops by reason', load: () => import('./stats.js') },
  toggle: { summary: 'switch xlb on or off on this node (manifests mode)', load: () => import('./toggle.js') },
};

function usage(): string {
  const lines = ['usage: xlb <command> [flags]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', "run 'xlb <command> --help' for a command's flags");
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    console.error(`xlb: unknown command '${cmd}'\n${usage()}`);
    return 2;
  }
  const mod = await c.load();
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    console.error(`xlb: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
