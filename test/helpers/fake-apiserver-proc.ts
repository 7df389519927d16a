// The wire-level fake API server (fake-apiserver-main.ts) as a process in node1's namespace,
// listening on node1's address so node2 reaches it over the bridge; driven over its stdin,
// one JSON command a line and one reply line each.
import { createInterface } from 'node:readline';
import { readFile, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import type { Topology } from './topology.js';

export interface FakeApiProcess {
  proc: ChildProcess;
  /** sends one command; the reply's JSON (undefined for a bare ok), throws on an error */
  call(cmd: object): Promise<any>;
  /** a kubeconfig per node (the same server), for agents with their own file */
  kubeconfig(node: string): Promise<string>;
}

export async function spawnFakeApiServer(topo: Topology): Promise<FakeApiProcess> {
  const proc = topo.set.track(topo.nodes[0].ns.spawn(process.execPath,
    [new URL('./fake-apiserver-main.js', import.meta.url).pathname, `${topo.nodes[0].ip}:6443`],
    { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: proc.stdout! });
  const queue: Array<(l: string) => void> = [];
  lines.on('line', (l) => queue.shift()?.(l));
  const { kubeconfig } = JSON.parse(await new Promise<string>((r) => queue.push(r))) as { kubeconfig: string };
  return {
    proc,
    call: async (cmd) => {
      const reply = new Promise<string>((r) => queue.push(r));
      proc.stdin!.write(JSON.stringify(cmd) + '\n');
      const l = await reply;
      if (!l.startsWith('ok')) throw new Error(`fake API server: ${l}`);
      return l.length > 2 ? JSON.parse(l.slice(3)) : undefined;
    },
    kubeconfig: async (node) => {
      if (node === 'node1') return kubeconfig;
      const copy = kubeconfig.replace(/kubeconfig$/, `kubeconfig-${node}`);
      await writeFile(copy, await readFile(kubeconfig, 'utf8'));
      return copy;
    },
  };
}
