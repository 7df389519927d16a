// Bad Service input end to end (issue 12 §7, §8), on the two-node topology with node1's agent:
// - two Services ask for nodePort 30080: the older one owns it, before and after `kill -9`
//   and restart, whatever the file names; the other says why in `xlb services` and the log,
//   and takes the port the moment the owner goes (and gives it back when the owner returns);
// - an EndpointSlice endpoint at a loopback address is refused with a reason, and the
//   Service's real endpoint serves every request.
// Both families (issue 15): the topology and both Services are dual-stack; the NodePort is
// asked for on node1's IPv4 and IPv6 addresses at once, and the loopback endpoint is refused in
// each family's EndpointSlice (127.0.0.1, ::1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, httpUrl, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, type SvcDef, type KObj } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { answers, eventually } from '../helpers/e2e.js';

const TAG = 'clash';
const owner: SvcDef = { name: 'web', type: 'NodePort', clusterIP: '10.96.8.10', clusterIP6: 'fd00:96::8:10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30080 }] };
const intruder: SvcDef = { name: 'intruder', type: 'NodePort', clusterIP: '10.96.8.11', clusterIP6: 'fd00:96::8:11', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30080 }] };
// The intruder's file sorts first and it is there first: neither order may decide.
const INTRUDER_FILE = 'a-intruder.yaml';
const OWNER_FILE = 'z-web.yaml';

let topo: Topology;
let c: XlbCluster;
let ownerPod: TopoPod;
let intruderPod: TopoPod;
let urls: string[];

/** The Service and its IPv4 and IPv6 EndpointSlices; `extra[i]`: more endpoints for family i's slice. */
function objs(d: SvcDef, pod: TopoPod, created: string, extra: KObj[][] = [[], []]): KObj[] {
  const svc = serviceObj(d);
  svc.metadata.creationTimestamp = created;
  const slices = ([4, 6] as const).map((f, i) => {
    const slice = sliceObj(d, [{ pod }], f);
    slice.endpoints.push(...extra[i]);
    return slice;
  });
  return [svc, ...slices];
}

const loopback = (addr: string): KObj => ({ addresses: [addr], nodeName: 'node1', conditions: { ready: true, serving: true, terminating: false } });
const writeOwner = () => c.write(OWNER_FILE, objs(owner, ownerPod, '2026-01-01T00:00:00Z', [[loopback('127.0.0.1')], [loopback('::1')]]));
const writeIntruder = () => c.write(INTRUDER_FILE, objs(intruder, intruderPod, '2026-06-01T00:00:00Z'));

/** Who answers the NodePort, on node1's IPv4 and IPv6 address: every one of n requests must succeed. */
async function answeredBy(n = 12): Promise<string[]> {
  const all = await Promise.all(urls.map(async (url) => {
    const a = await answers(topo, 'client', url, n);
    assert.equal(a.failed, 0, `${a.failed} of ${n} NodePort requests to ${url} failed`);
    return [...a.names].sort().join();
  }));
  assert.equal(all[0], all[1], 'the same Service owns the NodePort in both families');
  return all[0].split(',');
}

/** While the port changes hands a request may be refused: true once `pod` alone answers, in both families. */
async function onlyBy(pod: TopoPod): Promise<boolean> {
  const all = await Promise.all(urls.map((url) => answers(topo, 'client', url, 4)));
  return all.every((a) => a.failed === 0 && [...a.names].join() === pod.name);
}

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1', 'app2'], podsPerNode: 1, dualStack: true });
  ownerPod = topo.pods.find((p) => p.app === 'app1' && p.node === 'node1')!;
  intruderPod = topo.pods.find((p) => p.app === 'app2' && p.node === 'node1')!;
  await startPodServers(topo, [ownerPod, intruderPod]);
  urls = [httpUrl(topo.nodes[0].ip, 30080), httpUrl(topo.nodes[0].ip6!, 30080)];
  c = new XlbCluster(topo, TAG);
  writeIntruder();
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('nodePort clash: the older Service owns the port across kill -9 and restart; it moves as soon as the clash ends', async () => {
  // The newer Service alone has the port; then the older one appears and takes it at once.
  await c.startAgent('node1');
  for (const url of urls) await eventually(`${url} answers`, async () => (await topo.curl('client', url, { timeoutMs: 500 })).status === 200);
  assert.deepEqual(await answeredBy(), [intruderPod.name], 'no clash yet: the only Service with nodePort 30080 has it');
  writeOwner();
  await eventually('the older Service takes nodePort 30080', () => onlyBy(ownerPod), 10_000);
  assert.deepEqual(await answeredBy(), [ownerPod.name], 'the older Service owns nodePort 30080');

  for (let i = 0; i < 2; i++) {
    await c.stopAgent('node1', 'SIGKILL');
    await c.startAgent('node1');
    assert.deepEqual(await answeredBy(), [ownerPod.name], `after kill -9 and restart ${i + 1}`);
  }
  const services = await c.cli('node1', ['services']);
  assert.match(services, /^warning: default\/intruder: NodePort \*:30080\/TCP is also claimed by default\/web, which owns it \(created earlier/m);
  assert.ok(c.agents.get('node1')!.log.some((l) => l.includes('frontend owned by another Service') && l.includes('default/intruder')), 'the loser is logged');

  // The owner goes: the other Service gets the port at once; the owner back: it takes it back.
  c.remove(OWNER_FILE);
  await eventually('the intruder serves once the owner is gone', () => onlyBy(intruderPod), 10_000);
  assert.deepEqual(await answeredBy(), [intruderPod.name]);
  writeOwner();
  await eventually('the owner serves again', () => onlyBy(ownerPod), 10_000);
  // The intruder goes: nothing changes for the owner (its file untouched).
  c.remove(INTRUDER_FILE);
  await c.settle(1500);
  assert.deepEqual(await answeredBy(), [ownerPod.name]);
  assert.doesNotMatch(await c.cli('node1', ['services']), /also claimed by/);
});

test('a loopback EndpointSlice address is refused with a reason; the Service\'s real endpoint serves every request', async () => {
  const services = await c.cli('node1', ['services']);
  assert.match(services, /^warning: default\/web: EndpointSlice web-abc12: endpoint 127\.0\.0\.1 refused: it is loopback/m);
  assert.match(services, /^warning: default\/web: EndpointSlice web-v6abc12: endpoint ::1 refused: it is loopback/m);
  const json = JSON.parse(await c.cli('node1', ['services', '-o', 'json'])) as Array<{ key: string; frontends: Array<{ backends: Array<{ addr: string }> }> }>;
  const web = json.find((s) => s.key === 'default/web')!;
  assert.deepEqual([...new Set(web.frontends.flatMap((f) => f.backends.map((b) => b.addr)))].sort(), [ownerPod.ip, ownerPod.ip6!].sort());
  assert.deepEqual(await answeredBy(20), [ownerPod.name]);
  for (const a of ['127.0.0.1', '::1']) assert.ok(c.agents.get('node1')!.log.some((l) => l.includes(`${a} refused`)), `the refusal of ${a} is logged`);
});
