// The agent end to end (issue 4): one agent per node namespace reading a manifests folder;
// Services and EndpointSlices created, updated and deleted with traffic following; and under
// continuous load, kill -9 + restart, an upgrade to a rebuilt program, and scale-up/down
// with zero failed requests; the per-node toggle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTopology, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, type SvcDef, type EpDef } from '../helpers/cluster.js';
import { steadyIn } from '../helpers/steady.js';
import { run, sweepStale } from '../helpers/netns.js';
import { answers, eventually, xdpProgId } from '../helpers/e2e.js';

let topo: Topology;
let c: XlbCluster;
let app1: TopoPod[];
const work = mkdtempSync(join(tmpdir(), 'xlb-e2e-agent-'));

const web: SvcDef = { name: 'web', type: 'NodePort', clusterIP: '10.96.1.10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30180 }] };
const eps = (pods: TopoPod[]): EpDef[] => pods.map((pod) => ({ pod }));


/** `xlb maps -o json` prints the decoded maps as a list. */
function mapEntries(json: string, name: string): unknown[] {
  const j = JSON.parse(json) as Array<{ name: string; entries: unknown[] }> | { maps: Array<{ name: string; entries: unknown[] }> };
  const list = Array.isArray(j) ? j : j.maps;
  const m = list.find((x) => x.name === name);
  assert.ok(m, `map ${name} in ${json.slice(0, 200)}`);
  return m.entries;
}



/** The datapath object rebuilt with another define, for the upgrade test: compiled (seconds of
 *  CPU) while the topology and agents come up, where it costs no wall time. */
let rebuilt: Promise<string>;
async function rebuild(): Promise<string> {
  const obj = join(work, 'xlb-rebuilt.o');
  const inc = `/usr/include/${(await run('uname', ['-m'])).stdout.trim()}-linux-gnu`;
  const bpfDir = new URL('../../../bpf/', import.meta.url).pathname;
  await run('clang', ['-O2', '-g', '-target', 'bpf', `-I${inc}`, `-I${bpfDir}include`, `-I${bpfDir}`, '-DXLB_REBUILD=2', '-c', `${bpfDir}xlb.c`, '-o', obj], { timeoutMs: 120_000 });
  return obj;
}

before(async () => {
  rebuilt = rebuild();
  rebuilt.catch(() => undefined); // awaited (and reported) by the upgrade test
  await sweepStale('agent');
  topo = await buildTopology({ tag: 'agent', apps: ['app1'], podsPerNode: 2 });
  app1 = topo.pods;
  await startPodServers(topo);
  // XDP on purpose: these veths would get tc under the default (auto); the restart, atomic
  // replacement and toggle checks below keep the XDP attachment covered end to end.
  c = new XlbCluster(topo, 'agent', { deviceMode: 'xdp' });
  // Both at once (the load of one overlaps the other's), each with the bound of both.
  // The toggle test below checks the immediate detach; the drain has its own file (hitless.test.ts).
  await Promise.all([c.startAgent('node1', [], 40_000), c.startAgent('node2', ['--drain-timeout', '0'], 40_000)]);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
  rmSync(work, { recursive: true, force: true });
});

test('create: a new Service answers on its ClusterIP (pod) and NodePort (both nodes) within a second', async () => {
  c.apply(web, eps(app1));
  await eventually('ClusterIP answers', async () => (await topo.curl(app1[0].name, 'http://10.96.1.10/', { timeoutMs: 500 })).status === 200);
  const cip = await answers(topo, app1[1].name, 'http://10.96.1.10/', 12);
  assert.equal(cip.failed, 0);
  assert.ok(cip.names.size >= 2, `answers rotate across pods: ${[...cip.names]}`);
  for (const n of topo.nodes) {
    const np = await answers(topo, 'client', `http://${n.ip}:30180/`, 8);
    assert.equal(np.failed, 0, `NodePort on ${n.name}`);
    for (const name of np.names) assert.ok(app1.some((p) => p.name === name));
  }
});

test('update: the EndpointSlice shrinks to one pod and only that pod answers; grows back', async () => {
  c.apply(web, eps([app1[3]]));
  await eventually('only app1-4 answers', async () => {
    const r = await answers(topo, app1[0].name, 'http://10.96.1.10/', 6);
    return r.failed === 0 && r.names.size === 1 && r.names.has(app1[3].name);
  });
  const np = await answers(topo, 'client', `http://${topo.nodes[0].ip}:30180/`, 6);
  assert.deepEqual([...np.names], [app1[3].name]);
  c.apply(web, eps(app1));
  await eventually('all pods answer again', async () => (await answers(topo, app1[0].name, 'http://10.96.1.10/', 16)).names.size >= 3);
});

test('delete: removing the Service removes its frontends from the maps and from traffic', async () => {
  c.remove('web.yaml');
  await eventually('services map empty', async () => {
    return mapEntries(await c.cli('node1', ['maps', 'services', '-o', 'json']), 'services').length === 0;
  });
  const r = await topo.curl('client', `http://${topo.nodes[0].ip}:30180/`, { timeoutMs: 800 });
  assert.equal(r.status, 0, 'the NodePort no longer answers');
  c.apply(web, eps(app1));
  await eventually('back', async () => (await topo.curl('client', `http://${topo.nodes[0].ip}:30180/`, { timeoutMs: 500 })).status === 200);
});

test('kill -9 and restart under load: no failed request on established or new connections; ids kept', async () => {
  const before = await c.cli('node1', ['maps', 'services', '-o', 'json']);
  const load = steadyIn(topo.client.ns, topo.nodes[0].ip, 30180, 5000);
  await new Promise((r) => setTimeout(r, 1200));
  await c.stopAgent('node1', 'SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  await c.startAgent('node1');
  const res = await load;
  assert.equal(res.established.failed, 0, `established: ${res.established.errors.join('; ')}`);
  assert.equal(res.fresh.failed, 0, `new: ${res.fresh.errors.join('; ')}`);
  assert.ok(res.established.ok > 50 && res.fresh.ok > 50, `enough traffic ran: ${JSON.stringify({ e: res.established.ok, n: res.fresh.ok })}`);
  const svcIds = (s: string) => (mapEntries(s, 'services') as Array<{ key: unknown; value: { svcId: number } }>)
    .map((e) => `${JSON.stringify(e.key)}=${e.value.svcId}`).sort();
  assert.deepEqual(svcIds(await c.cli('node1', ['maps', 'services', '-o', 'json'])), svcIds(before));
});

test('upgrade to a rebuilt program under load: program replaced atomically, no failed request', async () => {
  const obj = await rebuilt;
  const oldProg = await xdpProgId(topo, 'node1');
  assert.ok(oldProg > 0);
  const load = steadyIn(topo.client.ns, topo.nodes[0].ip, 30180, 4000);
  await new Promise((r) => setTimeout(r, 1000));
  await c.stopAgent('node1', 'SIGTERM');
  process.env.XLB_BPF_OBJECT = obj;
  try {
    await c.startAgent('node1');
  } finally {
    delete process.env.XLB_BPF_OBJECT;
  }
  const res = await load;
  assert.equal(res.established.failed, 0, `established: ${res.established.errors.join('; ')}`);
  assert.equal(res.fresh.failed, 0, `new: ${res.fresh.errors.join('; ')}`);
  const newProg = await xdpProgId(topo, 'node1');
  assert.ok(newProg > 0 && newProg !== oldProg, `XDP program replaced (${oldProg} -> ${newProg})`);
});

test('scale up and down under load: no failed request', async () => {
  c.apply(web, eps(app1.slice(0, 2)));
  await c.settle(800);
  const load = steadyIn(topo.client.ns, topo.nodes[0].ip, 30180, 4500);
  await new Promise((r) => setTimeout(r, 800));
  c.apply(web, eps(app1));                                   // scale up to 4
  await new Promise((r) => setTimeout(r, 1200));
  c.apply(web, eps(app1).map((e, i) => (i === 0 ? { ...e, ready: false, serving: true, terminating: true } : e)));
  await new Promise((r) => setTimeout(r, 800));
  c.apply(web, eps(app1.slice(1)));                          // scale down: app1-1 gone
  const res = await load;
  assert.equal(res.established.failed, 0, `established: ${res.established.errors.join('; ')}`);
  assert.equal(res.fresh.failed, 0, `new: ${res.fresh.errors.join('; ')}`);
  assert.ok(Object.keys(res.fresh.answers).length >= 3, `new connections reached the added pods: ${JSON.stringify(res.fresh.answers)}`);
  const after = await answers(topo, 'client', `http://${topo.nodes[0].ip}:30180/`, 12);
  assert.ok(!after.names.has(app1[0].name), 'the removed pod gets no new connection');
});

test('toggle off detaches the programs and says so; on attaches them again from current state', async () => {
  assert.ok((await xdpProgId(topo, 'node2')) > 0);
  const off = await c.cli('node2', ['toggle', 'off']);
  assert.match(off, /off|disabled|false/i);
  const st = JSON.parse(await c.cli('node2', ['status', '-o', 'json'])) as { enabled: boolean; enabledReason: string };
  assert.equal(st.enabled, false);
  assert.equal(st.enabledReason, 'toggle');
  assert.equal(await xdpProgId(topo, 'node2'), 0, 'XDP detached from eth0');
  await c.cli('node2', ['toggle', 'on']);
  assert.ok((await xdpProgId(topo, 'node2')) > 0, 'XDP attached again');
  const np = await answers(topo, 'client', `http://${topo.nodes[1].ip}:30180/`, 4);
  assert.equal(np.failed, 0);
  // The toggle is persisted: a restarted agent stays as toggled.
  await c.cli('node2', ['toggle', 'off']);
  await c.stopAgent('node2');
  await c.startAgent('node2', ['--drain-timeout', '0']);
  const st2 = JSON.parse(await c.cli('node2', ['status', '-o', 'json'])) as { enabled: boolean };
  assert.equal(st2.enabled, false);
  await c.cli('node2', ['toggle', 'on']);
});
