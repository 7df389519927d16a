// Dual stack (issue 15): the test topology in both families, first without xlb (IPv6 between
// the client, the nodes and the pods works on its own: ULA addresses, routes and forwarding
// inside the namespaces), then one agent on it programming a dual-stack Service: its IPv6
// frontends and backends in the maps, both families in `xlb services` and `xlb status`, and
// one dual-stack Service reached over both families at once. Every Service feature in IPv6
// alone: datapath6.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, CLIENT_IP6, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, UDP_PORT, type SvcDef } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { answersFrom, assertOnly, servingFrom } from '../helpers/wire.js';

const TAG = 'ds';
let topo: Topology;
let c: XlbCluster | undefined;

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 1, dualStack: true });
  await startPodServers(topo);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('the dual-stack topology carries IPv6 without xlb: TCP and UDP between the client and pods on both nodes, pod to pod', async () => {
  const [p1, p2] = topo.pods;
  assert.match(p1!.ip6 ?? '', /^fd00:244:1::/);
  assert.match(p2!.ip6 ?? '', /^fd00:244:2::/);
  for (const p of [p1!, p2!]) {
    const r = await topo.curl('client', `http://[${p.ip6}]:${HTTP_PORT}/ip`);
    assert.equal(r.body.trim(), CLIENT_IP6, `client to ${p.name} over IPv6 (routed by its node): ${r.error ?? ''}`);
  }
  const ip = await topo.curl('app1-1', `http://[${p2!.ip6}]:${HTTP_PORT}/ip`);
  assert.equal(ip.body.trim(), p1!.ip6, 'pod to pod across nodes, the source address kept');
  assert.equal(await topo.udpEcho('client', p1!.ip6!, UDP_PORT, 'v6'), 'app1-1:v6');
  assert.equal((await topo.curl('client', `http://${p1!.ip}:${HTTP_PORT}/ip`)).body.trim(), topo.client.ip, 'IPv4 unchanged beside it');
});

interface MapDump { name: string; entries: Array<{ key: Record<string, unknown>; value: Record<string, unknown> }> }

test('the agent on a dual-stack node programs a dual-stack Service\'s IPv6 frontends and backends', async () => {
  c = new XlbCluster(topo, TAG);
  await c.startAgent('node1');
  const svc: SvcDef = {
    name: 'dual', type: 'LoadBalancer', clusterIP: '10.96.6.1', clusterIP6: 'fd00:96::6:1', lbIP: '198.18.100.61', lbIP6: 'fd00:18:100::61',
    ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30601 }],
  };
  c.apply(svc, topo.pods.map((pod) => ({ pod })));
  const pods6 = topo.pods.map((p) => p.ip6!).sort();

  const maps = async (name: string): Promise<MapDump['entries']> =>
    (JSON.parse(await c!.cli('node1', ['maps', name, '-o', 'json'])) as MapDump[]).find((m) => m.name === name)?.entries ?? [];
  await eventually('the IPv6 ClusterIP in the services map', async () =>
    (await maps('services')).some((e) => e.key.addr === 'fd00:96::6:1'), 15_000);

  const services = await maps('services');
  const has = (addr: string | null, port: number, family?: number) => services.filter((e) => e.key.addr === addr && e.key.port === port && e.key.family === family).length;
  assert.equal(has('fd00:96::6:1', 80), 2, 'IPv6 ClusterIP, internal and external');
  assert.equal(has('fd00:18:100::61', 80), 2, 'IPv6 LoadBalancer address');
  assert.equal(has(null, 30601, 6), 2, 'IPv6 NodePort (its own wildcard key)');
  assert.equal(has(null, 30601), 2, 'IPv4 NodePort beside it');
  assert.equal(has('10.96.6.1', 80), 2, 'IPv4 ClusterIP beside it');
  const backends = (await maps('backends')).map((e) => e.value.addr as string);
  for (const a of [...pods6, ...topo.pods.map((p) => p.ip)]) assert.ok(backends.includes(a), `backend ${a} in ${backends.join(', ')}`);
  const nodeAddrs = (await maps('node_addrs')).map((e) => e.key.addr);
  assert.ok(nodeAddrs.includes(topo.nodes[0]!.ip6!) && nodeAddrs.includes(topo.nodes[0]!.ip), `node_addrs: ${nodeAddrs.join(', ')}`);

  // The desired state: each family's frontends take only that family's endpoints.
  const desired = JSON.parse(await c.cli('node1', ['services', 'dual', '-o', 'json'])) as Array<{ frontends: Array<{ addr: string; ipFamily: string; backends: Array<{ addr: string }> }> }>;
  for (const f of desired[0]!.frontends) {
    const want = f.ipFamily === 'IPv6' ? pods6 : topo.pods.map((p) => p.ip).sort();
    assert.deepEqual(f.backends.map((b) => b.addr).sort(), want, `${f.ipFamily} ${f.addr}`);
  }
  const table = await c.cli('node1', ['services', 'dual']);
  assert.match(table, /\[fd00:96::6:1\]:80\s+IPv6\s+TCP/);
  assert.match(table, /\[::\]:30601\s+IPv6\s+TCP/);
  assert.match(table, /10\.96\.6\.1:80\s+IPv4\s+TCP/);
  const status = await c.cli('node1', ['status']);
  assert.match(status, new RegExp(`IPv6 addresses:\\s+${topo.nodes[0]!.ip6} \\(SNAT ${topo.nodes[0]!.ip6}\\)`));
});

test('a dual-stack Service answers over both families at once, each family from its own EndpointSlice', async () => {
  // the agent of the previous test runs on node1; its IPv4 slice names app1-1 (node1), its
  // IPv6 slice app1-2 (node2): who answers tells which family's endpoints a frontend took
  const [p1, p2] = topo.pods;
  const svc: SvcDef = {
    name: 'both', type: 'NodePort', clusterIP: '10.96.6.2', clusterIP6: 'fd00:96::6:2',
    ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30602 }, { name: 'echo', port: 9000, targetPort: UDP_PORT, protocol: 'UDP', nodePort: 30602 }],
  };
  c!.apply(svc, [{ pod: p1! }], [{ pod: p2! }]);
  const node = topo.nodes[0]!;
  const paths: Array<[string, string, 4 | 6]> = [
    ['app1-1', 'http://10.96.6.2/', 4], ['app1-1', 'http://[fd00:96::6:2]/', 6],
    ['client', `http://${node.ip}:30602/`, 4], ['client', `http://[${node.ip6}]:30602/`, 6],
  ];
  for (const [from, url] of paths) await servingFrom(topo, from, url, 15_000);
  const runs = await Promise.all(paths.map(([from, url]) => answersFrom(topo, from, url, 8)));
  for (const [i, [from, url, fam]] of paths.entries()) assertOnly(runs[i]!, fam === 6 ? [p2!] : [p1!], `IPv${fam} ${url} from ${from}`);
  // the IPv6 NodePort from the client reaches a remote pod: SNAT to node1's IPv6 address
  assert.equal((await topo.curl('client', `http://[${node.ip6}]:30602/ip`)).body.trim(), node.ip6);
  const udp = await Promise.all([topo.udpEcho('client', node.ip, 30602, 'v4'), topo.udpEcho('client', node.ip6!, 30602, 'v6'),
    topo.udpEcho('app1-1', '10.96.6.2', 9000, 'c4'), topo.udpEcho('app1-1', 'fd00:96::6:2', 9000, 'c6')]);
  assert.deepEqual(udp, ['app1-1:v4', 'app1-2:v6', 'app1-1:c4', 'app1-2:c6'], 'UDP over both families at once');
});
