// --local-delivery peer end to end: NodePort traffic (TCP and UDP) and pod -> ClusterIP
// traffic to pods on the same node enter the pod's namespace straight from tc
// (bpf_redirect_peer), so the node's netfilter FORWARD hook never sees them; with the default
// (stack) it does. A counter in node1's FORWARD chain tells the two apart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, UDP_PORT, type SvcDef } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

let topo: Topology;
let c: XlbCluster;
let local: TopoPod[];

const web: SvcDef = {
  name: 'web', type: 'NodePort', clusterIP: '10.96.3.10',
  ports: [
    { name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30380 },
    { name: 'udp', port: 53, targetPort: UDP_PORT, protocol: 'UDP', nodePort: 30381 },
  ],
};

/** Packets node1 forwarded from `iif` toward its own pods (nft counter in a forward chain). */
async function forwarded(iif: 'eth0' | 'lxc'): Promise<number> {
  const r = await topo.nodes[0].ns.exec('nft', ['-j', 'list', 'chain', 'ip', 'xlbt', 'counted']);
  const rules = (JSON.parse(r.stdout) as { nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }> }).nftables;
  const rule = rules.find((x) => x.rule?.comment === iif)?.rule;
  assert.ok(rule, `counter rule ${iif}`);
  return rule.expr.find((e) => e.counter)!.counter!.packets;
}

/** Every request answered, by pods of node1 only. */
async function traffic(): Promise<void> {
  const node1 = topo.nodes[0];
  const names = new Set(local.map((p) => p.name));
  for (let i = 0; i < 8; i++) {
    const r = await topo.curl('client', `http://${node1.ip}:30380/`, { timeoutMs: 1500 });
    assert.equal(r.status, 200, `NodePort request ${i}: ${r.error ?? r.status}`);
    assert.ok(names.has(r.body.trim().replace(/^Hello, /, '')), r.body);
    const u = await topo.udpEcho('client', node1.ip, 30381, `u${i}`, 1500);
    assert.ok(u && names.has(u.split(':')[0]!), `UDP NodePort datagram ${i}: ${u}`);
    const p = await topo.curl(local[0]!.name, 'http://10.96.3.10/', { timeoutMs: 1500 });
    assert.equal(p.status, 200, `pod -> ClusterIP request ${i}: ${p.error ?? p.status}`);
  }
}

before(async () => {
  await sweepStale('dlv');
  topo = await buildTopology({ tag: 'dlv', apps: ['app1'], podsPerNode: 2 });
  await startPodServers(topo);
  local = topo.pods.filter((p) => p.node === 'node1');
  const cidr = topo.nodes[0].podCidr;
  const nft = (args: string[]) => topo.nodes[0].ns.exec('nft', args);
  await nft(['add', 'table', 'ip', 'xlbt']);
  await nft(['add', 'chain', 'ip', 'xlbt', 'counted', '{ type filter hook forward priority 0; policy accept; }']);
  await nft(['add', 'rule', 'ip', 'xlbt', 'counted', 'iifname', 'eth0', 'ip', 'daddr', cidr, 'counter', 'comment', '"eth0"']);
  await nft(['add', 'rule', 'ip', 'xlbt', 'counted', 'iifname', '"lxc*"', 'ip', 'daddr', cidr, 'counter', 'comment', '"lxc"']);
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
  await eventually('NodePort answers', async () => (await topo.curl('client', `http://${topo.nodes[0].ip}:30380/`, { timeoutMs: 500 })).status === 200);
  await traffic(); // warm: the node learns its pods' neighbours (a FIB miss there goes through the stack)
  const before = { eth0: await forwarded('eth0'), lxc: await forwarded('lxc') };
  await traffic();
  assert.equal(await forwarded('eth0') - before.eth0, 0, 'client -> local pod packets forwarded by the host stack');
  assert.equal(await forwarded('lxc') - before.lxc, 0, 'pod -> ClusterIP -> local pod packets forwarded by the host stack');

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
  await eventually('NodePort answers', async () => (await topo.curl('client', `http://${topo.nodes[0].ip}:30380/`, { timeoutMs: 500 })).status === 200);
  const before = { eth0: await forwarded('eth0'), lxc: await forwarded('lxc') };
  await traffic();
  // 8 requests and 8 datagrams from the client, 8 requests from a pod: each at least one packet.
  assert.ok(await forwarded('eth0') - before.eth0 >= 16, 'client -> local pod packets forwarded by the host stack');
  assert.ok(await forwarded('lxc') - before.lxc >= 8, 'pod -> ClusterIP -> local pod packets forwarded by the host stack');
  assert.match(await c.cli('node1', ['status', '-o', 'json']), /stack: translated packets reach local pods through host routing/);
});
