// trafficDistribution end to end (issue 11 §4): a Service with PreferSameNode whose
// EndpointSlice carries hints.forNodes, on the two-node topology with an agent per node. A pod
// on node1 reaching the ClusterIP is balanced only over node1's endpoints; once one endpoint
// loses its hints, over every endpoint again (kube-proxy ignores a hint set with a gap).
// Both families (issue 15): a dual-stack Service on a dual-stack topology, each family's
// EndpointSlice hinted alike; every check asks both ClusterIPs at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, httpUrl, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, type SvcDef, type KObj } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { answers, eventually } from '../helpers/e2e.js';

const TAG = 'tdist';
const web: SvcDef = { name: 'web', clusterIP: '10.96.7.10', clusterIP6: 'fd00:96::7:10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
const URLS = [httpUrl(web.clusterIP), httpUrl(web.clusterIP6!)];

let topo: Topology;
let c: XlbCluster;
let backends: TopoPod[];
let client: TopoPod;

/** web with PreferSameNode; each endpoint hinted for its own node and zone unless `unhinted`. */
function apply(unhinted: Set<string> = new Set()): void {
  const svc = serviceObj(web);
  svc.spec.trafficDistribution = 'PreferSameNode';
  const slices = ([4, 6] as const).map((f) => sliceObj(web, backends.map((pod) => ({ pod })), f));
  for (const ep of slices.flatMap((s) => s.endpoints as KObj[])) {
    if (unhinted.has(ep.targetRef.name)) continue;
    ep.zone = 'zone-a';
    ep.hints = { forNodes: [{ name: ep.nodeName }], forZones: [{ name: 'zone-a' }] };
  }
  c.write('web.yaml', [svc, ...slices]);
}

/** Pods that answered `n` requests from the client pod, per ClusterIP (IPv4, IPv6); none may fail. */
async function reached(n: number): Promise<string[][]> {
  return Promise.all(URLS.map(async (url) => {
    const a = await answers(topo, client.name, url, n);
    assert.equal(a.failed, 0, `${url}: ${a.failed} of ${n} requests failed`);
    return [...a.names].sort();
  }));
}

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1', 'cli'], podsPerNode: 2, dualStack: true });
  backends = topo.pods.filter((p) => p.app === 'app1');
  client = topo.pods.find((p) => p.app === 'cli' && p.node === 'node1')!;
  await startPodServers(topo, backends);
  c = new XlbCluster(topo, TAG);
  apply();
  await c.startAgents(['node1', 'node2']);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('PreferSameNode with node hints: a pod on node1 is balanced only over node1\'s endpoints; without hints over all', async () => {
  const node1 = backends.filter((p) => p.node === 'node1').map((p) => p.name).sort();
  const all = backends.map((p) => p.name).sort();
  for (const url of URLS) await eventually(`${url} answers`, async () => (await topo.curl(client.name, url, { timeoutMs: 500 })).status === 200);
  // 24 requests over two endpoints: both answer unless something is badly skewed (2^-23).
  assert.deepEqual(await reached(24), [node1, node1], 'hinted for node1: only node1\'s endpoints answer, in both families');

  // One node2 endpoint without hints: the whole hint set is ignored.
  apply(new Set([backends.find((p) => p.node === 'node2')!.name]));
  await eventually('every endpoint answers once a hint is missing', async () => {
    const got = await reached(24);
    return got.every((g) => g.length === all.length);
  }, 15_000);
  assert.deepEqual(await reached(24), [all, all]);

  // Hints back: node1 only again.
  apply();
  await eventually('node1 only again', async () => (await reached(16)).flat().every((n) => node1.includes(n)), 15_000);
  assert.deepEqual(await reached(24), [node1, node1]);
});
