// Kubernetes' topology-aware routing tests: test/e2e/network/topology_hints.go (hints from the
// EndpointSlice controller with service.kubernetes.io/topology-mode: Auto) and
// traffic_distribution.go (spec.trafficDistribution PreferClose, PreferSameZone,
// PreferSameNode). node1 is in zone-a, node2 in zone-b; the slices carry the hints the
// controller would write.
import { test, before, after } from 'node:test';
import { nodeObj } from '../helpers/cluster.js';
import { converges, setup, slice, svc, type Env, type Ep } from './lib.js';

let env: Env;
before(async () => {
  env = await setup('conf-topo');
  env.c.write('nodes.yaml', env.topo.nodes.map((n, i) => nodeObj(n.name, n.ip, { 'topology.kubernetes.io/zone': i === 0 ? 'zone-a' : 'zone-b' })));
});
after(async () => { await env?.teardown(); });

const zoneOf = (node: string) => (node === 'node1' ? 'zone-a' : 'zone-b');
const apply = (file: string, ...objs: Record<string, any>[]) => env.c.write(`${file}.yaml`, objs);

/** Endpoints of pods 1-4 with zone hints (each for its own zone), optionally node hints too. */
function hinted(o: { nodes?: boolean; pods?: number[] } = {}): Ep[] {
  return (o.pods ?? [1, 2, 3, 4]).map((i) => {
    const pod = env.pod(i);
    return { pod, zone: zoneOf(pod.node), forZones: [zoneOf(pod.node)], ...(o.nodes ? { forNodes: [pod.node] } : {}) };
  });
}

async function sameZone(name: string, ip: string, spec: object, meta: object = {}): Promise<void> {
  const s = svc(name, ip, [{ name: 'http', port: 80 }], spec, meta);
  apply(name, s, slice(name, 'abc12', [{ name: 'http' }], hinted()));
  // zone-a clients reach pods 1 and 3 (node1), zone-b clients pods 2 and 4 (node2).
  await converges(env, 'app1-5', `http://${ip}/`, [env.pod(1), env.pod(3)], { all: true, n: 12 });
  await converges(env, 'app1-6', `http://${ip}/`, [env.pod(2), env.pod(4)], { all: true, n: 12 });
  env.c.remove(`${name}.yaml`);
}

test('Topology Hints: should distribute endpoints evenly (traffic stays in the client\'s zone)', async () => {
  await sameZone('topo-hints', '10.96.63.1', {}, { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } });
});

test('Traffic Distribution: should route traffic to an endpoint in the same zone when using PreferClose', async () => {
  await sameZone('td-preferclose', '10.96.63.2', { trafficDistribution: 'PreferClose' });
});

test('Traffic Distribution: should route traffic correctly between pods on multiple nodes when using PreferClose', async () => {
  // Every pod, on either node, is served from its own zone's endpoints.
  const s = svc('td-multi', '10.96.63.3', [{ name: 'http', port: 80 }], { trafficDistribution: 'PreferClose' });
  apply('td-multi', s, slice('td-multi', 'abc12', [{ name: 'http' }], hinted({ pods: [1, 2] })));
  for (const from of env.pods) await converges(env, from.name, 'http://10.96.63.3/', [from.node === 'node1' ? env.pod(1) : env.pod(2)]);
  env.c.remove('td-multi.yaml');
});

test('Traffic Distribution: should route traffic to an endpoint in the same zone when using PreferSameZone', async () => {
  await sameZone('td-preferzone', '10.96.63.4', { trafficDistribution: 'PreferSameZone' });
});

test('Traffic Distribution: should route traffic to an endpoint on the same node or fall back to same zone when using PreferSameNode', async () => {
  const s = svc('td-samenode', '10.96.63.5', [{ name: 'http', port: 80 }], { trafficDistribution: 'PreferSameNode' });
  // pod 1 is hinted for node1 only; node2 has no endpoint hinted for it: its zone's (pod 2).
  const eps: Ep[] = [
    { pod: env.pod(1), zone: 'zone-a', forZones: ['zone-a'], forNodes: ['node1'] },
    { pod: env.pod(2), zone: 'zone-b', forZones: ['zone-b'], forNodes: ['node-elsewhere'] },
  ];
  apply('td-samenode', s, slice('td-samenode', 'abc12', [{ name: 'http' }], eps));
  await converges(env, 'app1-3', 'http://10.96.63.5/', [env.pod(1)], { n: 10 });
  await converges(env, 'app1-4', 'http://10.96.63.5/', [env.pod(2)], { n: 10 });
  env.c.remove('td-samenode.yaml');
});

test('Traffic Distribution: should route traffic to an endpoint on the same node when using PreferSameNode and fall back when the endpoint becomes unavailable', async () => {
  const s = svc('td-fallback', '10.96.63.6', [{ name: 'http', port: 80 }], { trafficDistribution: 'PreferSameNode' });
  apply('td-fallback', s, slice('td-fallback', 'abc12', [{ name: 'http' }], hinted({ nodes: true, pods: [1, 2] })));
  await converges(env, 'app1-3', 'http://10.96.63.6/', [env.pod(1)], { n: 10 });
  // The node-local endpoint goes away: the controller drops node hints it cannot satisfy and
  // the remaining endpoint carries hints for every zone, so node1 falls back to it.
  apply('td-fallback', s, slice('td-fallback', 'abc12', [{ name: 'http' }], [{ pod: env.pod(2), zone: 'zone-b', forZones: ['zone-a', 'zone-b'] }]));
  await converges(env, 'app1-3', 'http://10.96.63.6/', [env.pod(2)], { n: 10 });
  env.c.remove('td-fallback.yaml');
});
