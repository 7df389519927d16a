// Restarts that migrate conntrack, under load: how often a connection breaks across the link
// switch (the race agent/pinmigrate.ts's catch-ups and the datapath's carry-over hold close).
//   node dist/test/bench/restarts.js [--rounds 12] [--new-every-ms 10] [--busy 0|1|2]
// The e2e topology (test/helpers/topology.ts: every address inside the run's namespaces), a
// NodePort Service with two local and two remote pods; node1's agent is restarted --rounds times,
// alternating the normal build and one whose ct value has an extra field (-DXLB_CT_EXTRA, as
// e2e/ctmigrate compiles it), so every start migrates ct. Each round runs steady.js for 9 s
// (6 keep-alive connections, a new connection every --new-every-ms) across the restart and
// prints what failed, with the client port and the agent's carry-over figures. --busy N adds N
// busy loops (each bounded by the run's own timeout) to load the CPUs, as a CI host is.
// Teardown (agent, namespaces, busy loops) always runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT } from '../helpers/cluster.js';
import { run, sweepStale } from '../helpers/netns.js';
import type { SteadyResult } from '../helpers/steady.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v < 0) throw new Error(`restarts: --${name} takes a number >= 0`);
  return v;
}

const ROUNDS = Math.min(50, Math.max(1, arg('rounds', 12)));
const NEW_EVERY_MS = Math.max(5, arg('new-every-ms', 10));
const BUSY = Math.min(4, arg('busy', 0));
const LOAD_MS = 9000;
/** the whole run's bound: a round is ~15 s (load 9 s, a start, the topology) */
const RUN_TIMEOUT_S = 120 + ROUNDS * 60;

async function steadyRound(topo: Topology, onConnected: () => void): Promise<SteadyResult> {
  const script = new URL('../helpers/steady.js', import.meta.url).pathname;
  const p = topo.client.ns.spawn(process.execPath, [script, topo.nodes[0].ip, '30780', String(LOAD_MS), '6', '50', String(NEW_EVERY_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const kill = setTimeout(() => p.kill('SIGKILL'), LOAD_MS + 15_000);
  p.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (/^connected$/m.test(out)) onConnected();
  });
  return new Promise((resolve, reject) => p.on('exit', (code) => {
    clearTimeout(kill);
    const last = out.trim().split('\n').pop() ?? '';
    if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as SteadyResult);
    else reject(new Error(`steady exited ${code}`));
  }));
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'xlb-restarts-'));
  const busy: ChildProcess[] = [];
  let topo: Topology | undefined;
  let c: XlbCluster | undefined;
  try {
    const inc = `/usr/include/${(await run('uname', ['-m'])).stdout.trim()}-linux-gnu`;
    const bpfDir = new URL('../../../bpf/', import.meta.url).pathname;
    const variant = join(work, 'xlb-ct-extra.o');
    await run('clang', ['-O2', '-g', '-target', 'bpf', `-I${inc}`, `-I${bpfDir}include`, `-I${bpfDir}`, '-DXLB_CT_EXTRA', '-c', `${bpfDir}xlb.c`, '-o', variant], { timeoutMs: 120_000 });
    await sweepStale('restarts');
    topo = await buildTopology({ tag: 'restarts', apps: ['app1'], podsPerNode: 2 });
    await startPodServers(topo);
    c = new XlbCluster(topo, 'restarts');
    c.apply({ name: 'web', type: 'NodePort', clusterIP: '10.96.7.10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30780 }] }, topo.pods.map((pod) => ({ pod })));
    await c.startAgent('node1', ['--conntrack-size', '65536'], 40_000);
    for (let i = 0; i < BUSY; i++) busy.push(spawn('timeout', [String(RUN_TIMEOUT_S), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' }));
    let failed = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const extra = r % 2 === 0;
      let connected!: () => void;
      const up = new Promise<void>((res) => { connected = res; });
      const load = steadyRound(topo, () => connected());
      await up;
      await new Promise((res) => setTimeout(res, 1500));
      await c.stopAgent('node1', 'SIGTERM');
      if (extra) process.env.XLB_BPF_OBJECT = variant;
      let h;
      try {
        h = await c.startAgent('node1', ['--conntrack-size', '65536'], 40_000);
      } finally {
        delete process.env.XLB_BPF_OBJECT;
      }
      const res = await load;
      const bad = res.established.failed + res.fresh.failed;
      if (bad) failed++;
      const carry = h.log.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } })
        .filter((j) => j.msg === 'conntrack carry-over done' || j.msg === 'entries the old programs made meanwhile carried over')
        .map((j) => (j.msg === 'conntrack carry-over done' ? `hold ${j.heldMs} ms, ${j.packetsHeld} packets held` : `${j.copied} caught up ${j.when}`));
      console.log(`round ${r + 1}/${ROUNDS} (${extra ? 'onto the extra-field build' : 'back'}): ${res.established.ok} requests on 6 connections, ${res.fresh.ok} new connections, ${bad} failed; ${carry.join('; ') || 'no carry-over logged'}`);
      for (const e of [...res.established.errors, ...res.fresh.errors]) console.log(`  ${e}`);
    }
    console.log(`${failed} of ${ROUNDS} restarts broke a connection (a new connection every ${NEW_EVERY_MS} ms, ${BUSY} busy loops)`);
    process.exitCode = failed ? 1 : 0;
  } finally {
    for (const b of busy) b.kill('SIGTERM'); // timeout passes it on to its loop (a SIGKILL would orphan the loop)
    await c?.teardown();
    await topo?.teardown();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
