// LoadBalancer addresses from a LoadBalancerIPPool in manifests mode (issue 17): both agents
// compute the same assignment from the same files, `xlb services` shows it (EXTERNAL-IP,
// -o json, the reason when there is none) and the client reaches each Service on it. The
// pool lies in SERVICE_VIP_RANGE, which the topology routes from the client to node1.
// Both families (issue 15): the pool has an IPv4 and an IPv6 range (SERVICE_VIP_RANGE6, routed
// likewise), the Services are dual-stack and get one address of each family.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, httpUrl, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

const TAG = 'lbp';
const POOL = ['198.18.100.200-198.18.100.201', 'fd00:18:100::200-fd00:18:100::201'];
/** The addresses the pool gives alpha, beta and (once the pool grows) gamma: [IPv4, IPv6] each. */
const ADDRS = [['198.18.100.200', 'fd00:18:100::200'], ['198.18.100.201', 'fd00:18:100::201'], ['198.18.100.202', 'fd00:18:100::202']];
let topo: Topology;
let c: XlbCluster;

const lb = (name: string, n: number): SvcDef => ({ name, type: 'LoadBalancer', clusterIP: `10.96.7.${n}`, clusterIP6: `fd00:96::7:${n}`, ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] });
const svcs = [lb('alpha', 1), lb('beta', 2), lb('gamma', 3)];

interface SvcJson { key: string; type: string; warnings: string[]; frontends: Array<{ type: string; addr: string }> }
const lbAddrs = (s: SvcJson | undefined) => [...new Set(s?.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.addr))].sort();

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 1, dualStack: true });
  await startPodServers(topo);
  c = new XlbCluster(topo, TAG);
  c.write('pool.yaml', [ipPool('demo', POOL)]);
  // gamma is the newest: the two addresses go to alpha and beta.
  c.write('services.yaml', svcs.flatMap((d, i) => {
    const o = serviceObj(d);
    o.metadata.creationTimestamp = `2026-01-0${i + 1}T00:00:00Z`;
    const eps = topo.pods.map((pod) => ({ pod }));
    return [o, sliceObj(d, eps), sliceObj(d, eps, 6)];
  }));
  await c.startAgents(['node1', 'node2']);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('both agents assign the same pool addresses; the Service left over shows why', async () => {
  for (const node of ['node1', 'node2']) {
    const list = JSON.parse(await c.cli(node, ['services', '-o', 'json'])) as SvcJson[];
    const by = (k: string) => list.find((s) => s.key === k);
    assert.deepEqual(lbAddrs(by('default/alpha')), ADDRS[0], node);
    assert.deepEqual(lbAddrs(by('default/beta')), ADDRS[1], node);
    assert.deepEqual(lbAddrs(by('default/gamma')), [], node);
    const why = 'no load balancer address: no free IPv4 address in pool demo; no free IPv6 address in pool demo';
    assert.ok(by('default/gamma')!.warnings.includes(why), JSON.stringify(by('default/gamma')));
    const table = await c.cli(node, ['services']);
    const alpha = /^default\/alpha\s+LoadBalancer\s+(\S+)\s/m.exec(table);
    assert.deepEqual(alpha?.[1]?.split(',').sort(), ADDRS[0], table);
    assert.match(table, /^default\/gamma\s+ClusterIP\s+<pending>\s/m);
    assert.ok(table.split('\n').includes(`warning: default/gamma: ${why}`), table);
  }
});

test('the client reaches each Service on its assigned addresses', async () => {
  for (const ip of [...ADDRS[0], ...ADDRS[1]]) {
    await eventually(`${httpUrl(ip)} answers`, async () => (await topo.curl('client', httpUrl(ip), { timeoutMs: 1000 })).status === 200);
    const r = await topo.curl('client', httpUrl(ip), { timeoutMs: 1500 });
    assert.equal(r.status, 200, r.error);
    assert.match(r.body, /^Hello, /);
  }
});

test('a pool edit that adds an address serves the Service left over; the others keep theirs', async () => {
  c.write('pool.yaml', [ipPool('demo', [...POOL, ...ADDRS[2]])]);
  for (const ip of ADDRS[2]) await eventually(`gamma answers on ${ip}`, async () => (await topo.curl('client', httpUrl(ip), { timeoutMs: 1000 })).status === 200);
  const list = JSON.parse(await c.cli('node1', ['services', '-o', 'json'])) as SvcJson[];
  assert.deepEqual(['alpha', 'beta', 'gamma'].map((n) => lbAddrs(list.find((s) => s.key === `default/${n}`))), ADDRS);
  for (const ip of ADDRS[0]) assert.equal((await topo.curl('client', httpUrl(ip), { timeoutMs: 1500 })).status, 200);
});
