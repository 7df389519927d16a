// Established connections survive an agent restart that changes the conntrack table's layout
// (DESIGN §5): a new --conntrack-size, then a build whose xlb_ct_value has another field in
// place of padding (compiled here with -DXLB_CT_EXTRA, as agent.test.ts's upgrade rebuilds the
// object; the same size, told apart by BTF), then back. The pinned ct is migrated into the new map before the links switch, so the keep-alive
// connections keep their backends; `xlb status` says what the start did. The first start
// takes the default size, which follows the node's memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, type SvcDef } from '../helpers/cluster.js';
import { steadyIn } from '../helpers/steady.js';
import { run, sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { conntrackSizeFromMemory } from '../../src/agent/options.js';

let topo: Topology;
let c: XlbCluster;
const work = mkdtempSync(join(tmpdir(), 'xlb-e2e-ctmig-'));
let variant: Promise<string>;

const web: SvcDef = { name: 'web', type: 'NodePort', clusterIP: '10.96.7.10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30780 }] };

interface Check { name: string; ok: boolean; detail: string }
async function checks(): Promise<Check[]> {
  return (JSON.parse(await c.cli('node1', ['status', '-o', 'json'])) as { kernel: { checks: Check[] } }).kernel.checks;
}

async function ctMap(): Promise<{ maxEntries: number; entries: unknown[] }> {
  const j = JSON.parse(await c.cli('node1', ['maps', 'ct', '-o', 'json'])) as Array<{ name: string; maxEntries: number; entries: unknown[] }>;
  const m = j.find((x) => x.name === 'ct');
  assert.ok(m, 'ct in xlb maps');
  return m;
}

async function compileVariant(): Promise<string> {
  const obj = join(work, 'xlb-ct-extra.o');
  const inc = `/usr/include/${(await run('uname', ['-m'])).stdout.trim()}-linux-gnu`;
  const bpfDir = new URL('../../../bpf/', import.meta.url).pathname;
  await run('clang', ['-O2', '-g', '-target', 'bpf', `-I${inc}`, `-I${bpfDir}include`, `-I${bpfDir}`, '-DXLB_CT_EXTRA', '-c', `${bpfDir}xlb.c`, '-o', obj], { timeoutMs: 120_000 });
  return obj;
}

before(async () => {
  variant = compileVariant();
  variant.catch(() => undefined); // awaited by the struct test
  await sweepStale('ctmig');
  topo = await buildTopology({ tag: 'ctmig', apps: ['app1'], podsPerNode: 2 });
  await startPodServers(topo);
  c = new XlbCluster(topo, 'ctmig');
  c.apply(web, topo.pods.map((pod) => ({ pod })));
  await c.startAgent('node1', [], 40_000);
  await eventually('NodePort answers', async () => (await topo.curl('client', `http://${topo.nodes[0].ip}:30780/`, { timeoutMs: 500 })).status === 200);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
  rmSync(work, { recursive: true, force: true });
});

/** Keep-alive connections through the NodePort across a restart of node1's agent with `args` (and `object`). */
async function restartUnderLoad(args: string[], object?: string): Promise<string> {
  let connected!: () => void;
  const up = new Promise<void>((r) => { connected = r; });
  const load = steadyIn(topo.client.ns, topo.nodes[0].ip, 30780, 9000, 6, () => connected());
  await up;
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok((await ctMap()).entries.length >= 12, 'the keep-alive flows are in ct before the restart');
  await c.stopAgent('node1', 'SIGTERM');
  if (object) process.env.XLB_BPF_OBJECT = object;
  try {
    await c.startAgent('node1', args, 40_000);
  } finally {
    delete process.env.XLB_BPF_OBJECT;
  }
  const res = await load;
  assert.equal(res.established.failed, 0, `established connections survived: ${res.established.errors.join('; ')}`);
  assert.ok(res.established.ok > 20, `requests on them: ${res.established.ok}`);
  assert.equal(res.fresh.failed, 0, `new: ${res.fresh.errors.join('; ')}`);
  assert.ok(!existsSync(join(c.pinPath('node1'), 'ct~new')), 'the new ct renamed over the old pin');
  return `${res.established.ok} requests on 6 established connections, ${res.fresh.ok} new connections, 0 failed`;
}

test('the default conntrack size follows the node memory, and status says so', async () => {
  const want = conntrackSizeFromMemory(totalmem());
  assert.equal((await ctMap()).maxEntries, want);
  const cs = (await checks()).find((x) => x.name === 'conntrack size');
  assert.match(cs?.detail ?? '', new RegExp(`^${want} entries \\(from the node's memory`));
});

test('--conntrack-size changed across a restart under load: the flows are migrated, none broken', { timeout: 120_000 }, async (t) => {
  const load = await restartUnderLoad(['--conntrack-size', '65536']);
  assert.equal((await ctMap()).maxEntries, 65536);
  const all = await checks();
  assert.match(all.find((x) => x.name === 'conntrack size')?.detail ?? '', /^65536 entries \(--conntrack-size\)/);
  const m = all.find((x) => x.name === 'map migration ct');
  assert.ok(m?.ok, JSON.stringify(m));
  assert.match(m.detail, /^migrated (\d+)\/\1 entries \(max_entries \d+ -> 65536\)/);
  // The kernel sweep walks the map the pins name once the migration is done: the new ct,
  // not the old one, and not the JS fallback because the old pin did not match.
  let sweep: Check | undefined;
  await eventually('a sweep ran after the restart', async () => {
    sweep = (await checks()).find((x) => x.name === 'conntrack sweep');
    return /last /.test(sweep?.detail ?? '');
  }, 15_000);
  assert.match(sweep!.detail, /in the kernel \(bpf\/ct_sweep\.c\)/);
  t.diagnostic(`${m.detail}; ${load}; sweep: ${sweep!.detail}`);
});

test('a build whose ct value gained a field, and back: fields matched through BTF, the flows kept', { timeout: 240_000 }, async (t) => {
  const obj = await variant;
  const load1 = await restartUnderLoad(['--conntrack-size', '65536'], obj);
  let m = (await checks()).find((x) => x.name === 'map migration ct');
  assert.ok(m?.ok, JSON.stringify(m));
  assert.match(m.detail, /^migrated (\d+)\/\1 entries \(layout key 40 -> 40, value 64 -> 64 bytes.*fields added \(zero\): extra\)$/);
  t.diagnostic(`onto the variant: ${m.detail}; ${load1}`);
  const load2 = await restartUnderLoad(['--conntrack-size', '65536']);
  m = (await checks()).find((x) => x.name === 'map migration ct');
  assert.ok(m?.ok, JSON.stringify(m));
  assert.match(m.detail, /^migrated (\d+)\/\1 entries \(layout .*fields dropped: extra\)$/);
  t.diagnostic(`back: ${m.detail}; ${load2}`);
});
