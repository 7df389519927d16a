// LoadBalancer addresses from a LoadBalancerIPPool in manifests mode (issue 17): both agents
// compute the same assignment from the same files, `xlb services` shows it (EXTERNAL-IP,
// -o json, the reason when there is none) and the client reaches each Service on it. The
// pool lies in SERVICE_VIP_RANGE, which the topology routes from the client to node1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

const TAG = 'lbp';
const POOL = ['198.18.100.200-198.18.100.201'];
let topo: Topology;
let c: XlbCluster;

const lb = (name: string, clusterIP: string): SvcDef => ({ name, type: 'LoadBalancer', clusterIP, ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] });
const svcs = [lb('alpha', '10.96.7.1'), lb('beta', '10.96.7.2'), lb('gamma', '10.96.7.3')];

interface SvcJson { key: string; type: string; warnings: string[]; frontends: Array<{ type: string; addr: string }> }
const lbAddrs = (s: SvcJson | undefined) => [...new Set(s?.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.addr))];

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 1 });
  await startPodServers(topo);
  c = new XlbCluster(topo, TAG);
  c.write('pool.yaml', [ipPool('demo', POOL)]);
  // gamma is the newest: the two addresses go to alpha and beta.
  c.write('services.yaml', svcs.flatMap((d, i) => {
    const o = serviceObj(d);
    o.metadata.creationTimestamp = `2026-01-0${i + 1}T00:00:00Z`;
    return [o, sliceObj(d, topo.pods.map((pod) => ({ pod })))];
  }));
  await c.startAgent('node1');
  await c.startAgent('node2');
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('both agents assign the same pool addresses; the Service left over shows why', async () => {
  for (const node of ['node1', 'node2']) {
    const list = JSON.parse(await c.cli(node, ['services', '-o', 'json'])) as SvcJson[];
    const by = (k: string) => list.find((s) => s.key === k);
    assert.deepEqual(lbAddrs(by('default/alpha')), ['198.18.100.200'], node);
    assert.deepEqual(lbAddrs(by('default/beta')), ['198.18.100.201'], node);
    assert.deepEqual(lbAddrs(by('default/gamma')), [], node);
    assert.ok(by('default/gamma')!.warnings.includes('no load balancer address: no free IPv4 address in pool demo'), JSON.stringify(by('default/gamma')));
    const table = await c.cli(node, ['services']);
    assert.match(table, /^default\/alpha\s+LoadBalancer\s+198\.18\.100\.200\s/m);
    assert.match(table, /^default\/gamma\s+ClusterIP\s+<pending>\s/m);
    assert.match(table, /^warning: default\/gamma: no load balancer address: no free IPv4 address in pool demo$/m);
  }
});

test('the client reaches each Service on its assigned address', async () => {
  for (const ip of ['198.18.100.200', '198.18.100.201']) {
    await eventually(`http://${ip}/ answers`, async () => (await topo.curl('client', `http://${ip}/`, { timeoutMs: 1000 })).status === 200);
    const r = await topo.curl('client', `http://${ip}/`, { timeoutMs: 1500 });
    assert.equal(r.status, 200, r.error);
    assert.match(r.body, /^Hello, /);
  }
});

test('a pool edit that adds an address serves the Service left over; the others keep theirs', async () => {
  c.write('pool.yaml', [ipPool('demo', [...POOL, '198.18.100.202'])]);
  await eventually('gamma answers on 198.18.100.202', async () => (await topo.curl('client', 'http://198.18.100.202/', { timeoutMs: 1000 })).status === 200);
  const list = JSON.parse(await c.cli('node1', ['services', '-o', 'json'])) as SvcJson[];
  assert.deepEqual(['alpha', 'beta', 'gamma'].map((n) => lbAddrs(list.find((s) => s.key === `default/${n}`)).join()), ['198.18.100.200', '198.18.100.201', '198.18.100.202']);
  assert.equal((await topo.curl('client', 'http://198.18.100.200/', { timeoutMs: 1500 })).status, 200);
});
