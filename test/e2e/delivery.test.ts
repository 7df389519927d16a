// --local-delivery peer end to end: NodePort traffic (TCP and UDP) and pod -> ClusterIP
// traffic to pods on the same node enter the pod's namespace straight from tc
// (bpf_redirect_peer), so the node's netfilter FORWARD hook never sees them; with the default
// (stack) it does. A counter in node1's FORWARD chain tells the two apart.
// Both families (issue 15): a dual-stack Service on a dual-stack topology, the same traffic in
// IPv4 and IPv6 at once, counted per family.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addrOf, buildTopology, FAMILIES, httpUrl, type IpFamily, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, UDP_PORT, type SvcDef } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

let topo: Topology;
let c: XlbCluster;
let local: TopoPod[];

const web: SvcDef = {
  name: 'web', type: 'NodePort', clusterIP: '10.96.3.10', clusterIP6: 'fd00:96::3:10',
  ports: [
    { name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30380 },
    { name: 'udp', port: 53, targetPort: UDP_PORT, protocol: 'UDP', nodePort: 30381 },
  ],
};

type Counted = Record<string, number>;
/** Packets node1 forwarded toward its own pods, per rule (`eth0`/`lxc` and family): nft counters in a forward chain. */
async function forwarded(): Promise<Counted> {
  const r = await topo.nodes[0].ns.exec('nft', ['-j', 'list', 'chain', 'inet', 'xlbt', 'counted']);
  const rules = (JSON.parse(r.stdout) as { nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }> }).nftables;
  const out: Counted = {};
  for (const x of rules) if (x.rule?.comment) out[x.rule.comment] = x.rule.expr.find((e) => e.counter)!.counter!.packets;
  assert.deepEqual(Object.keys(out).sort(), ['eth0 4', 'eth0 6', 'lxc 4', 'lxc 6'], 'counter rules');
  return out;
}

const since = (before: Counted, now: Counted): Counted => Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - before[k]!]));

/** Every request answered, by pods of node1 only: in both families at once. */
async function traffic(): Promise<void> {
  const names = new Set(local.map((p) => p.name));
  await Promise.all(FAMILIES.map(async (f: IpFamily) => {
    const node1 = addrOf(topo.nodes[0], f);
    const cip = f === 6 ? web.clusterIP6! : web.clusterIP;
    for (let i = 0; i < 8; i++) {
      const r = await topo.curl('client', httpUrl(node1, 30380), { timeoutMs: 1500 });
      assert.equal(r.status, 200, `IPv${f} NodePort request ${i}: ${r.error ?? r.status}`);
      assert.ok(names.has(r.body.trim().replace(/^Hello, /, '')), r.body);
      const p = await topo.curl(local[0]!.name, httpUrl(cip), { timeoutMs: 1500 });
      assert.equal(p.status, 200, `IPv${f} pod -> ClusterIP request ${i}: ${p.error ?? p.status}`);
    }
    // eight datagrams, each from a new socket, in one process (a process per datagram cost more than the datagrams)
    const replies = await topo.udpEchoEach('client', node1, 30381, Array.from({ length: 8 }, (_, i) => `u${i}`), 1500);
    for (const [i, u] of replies.entries()) assert.ok(u && names.has(u.split(':')[0]!) && u.endsWith(`:u${i}`), `IPv${f} UDP NodePort datagram ${i}: ${u}`);
  }));
}

/** Both NodePorts answer from the client. */
async function servingBoth(): Promise<void> {
  for (const f of FAMILIES) {
    const url = httpUrl(addrOf(topo.nodes[0], f), 30380);
    await eventually(`${url} answers`, async () => (await topo.curl('client', url, { timeoutMs: 500 })).status === 200);
  }
}

before(async () => {
  await sweepStale('dlv');
  topo = await buildTopology({ tag: 'dlv', apps: ['app1'], podsPerNode: 2, dualStack: true });
  await startPodServers(topo);
  local = topo.pods.filter((p) => p.node === 'node1');
  const nft = (args: string[]) => topo.nodes[0].ns.exec('nft', args);
  await nft(['add', 'table', 'inet', 'xlbt']);
  await nft(['add', 'chain', 'inet', 'xlbt', 'counted', '{ type filter hook forward priority 0; policy accept; }']);
  for (const [f, match, cidr] of [[4, 'ip', topo.nodes[0].podCidr], [6, 'ip6', topo.nodes[0].podCidr6!]] as const) {
    await nft(['add', 'rule', 'inet', 'xlbt', 'counted', 'iifname', 'eth0', match, 'daddr', cidr, 'counter', 'comment', `"eth0 ${f}"`]);
    await nft(['add', 'rule', 'inet', 'xlbt', 'counted', 'iifname', '"lxc*"', match, 'daddr', cidr, 'counter', 'comment', `"lxc ${f}"`]);
  }
  c = new XlbCluster(topo, 'dlv');
  // Endpoints on node1 only: every flow below has a backend on the node it arrives at.
  c.apply(web, local.map((pod) => ({ pod })));
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('--local-delivery peer: NodePort (TCP, UDP) and pod -> ClusterIP reach local pods without the host FORWARD hook', async () => {
  await c.startAgent('node1', ['--local-delivery', 'peer']);
  await servingBoth();
  await traffic(); // warm: the node learns its pods' neighbours (a FIB miss there goes through the stack)
  const before = await forwarded();
  await traffic();
  // eth0: client -> local pod; lxc: pod -> ClusterIP -> local pod
  assert.deepEqual(since(before, await forwarded()), { 'eth0 4': 0, 'eth0 6': 0, 'lxc 4': 0, 'lxc 6': 0 }, 'packets forwarded by the host stack');

  const status = await c.cli('node1', ['status', '-o', 'json']);
  assert.match(status, /peer: translated packets enter local pods directly/);
  const maps = JSON.parse(await c.cli('node1', ['maps', '-o', 'json'])) as Array<{ name: string; entries: Array<{ key: { ifindex: number }; value: { peer: boolean } }> }>;
  const podIfs = maps.find((m) => m.name === 'pod_ifs');
  assert.ok(podIfs, 'pod_ifs in xlb maps');
  assert.equal(podIfs.entries.length, local.length, 'one entry per pod veth of node1');
  assert.ok(podIfs.entries.every((e) => e.value.peer), 'every pod veth is a peer-redirect target');
});

test('--local-delivery stack (the default): the same traffic goes through the host FORWARD hook', async () => {
  await c.stopAgent('node1');
  await c.startAgent('node1');
  await servingBoth();
  const before = await forwarded();
  await traffic();
  // per family, 8 requests and 8 datagrams from the client, 8 requests from a pod: each at least one packet.
  const n = since(before, await forwarded());
  for (const f of FAMILIES) {
    assert.ok(n[`eth0 ${f}`]! >= 16, `IPv${f}: client -> local pod packets forwarded by the host stack: ${JSON.stringify(n)}`);
    assert.ok(n[`lxc ${f}`]! >= 8, `IPv${f}: pod -> ClusterIP -> local pod packets forwarded by the host stack: ${JSON.stringify(n)}`);
  }
  assert.match(await c.cli('node1', ['status', '-o', 'json']), /stack: translated packets reach local pods through host routing/);
});
