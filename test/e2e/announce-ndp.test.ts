// IPv6 LoadBalancer addresses announced on the nodes' L2 segment (issue 18, NDP): manifests
// mode on a dual-stack segment, the client with no route for the Service addresses (the IPv6
// one is in the bridge's own subnet fd00:18::/64, so the client solicits it). The announcing
// node answers the neighbour solicitation from the datapath; when its Node turns not Ready, the
// other node takes over and its unsolicited neighbour advertisement moves the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Topology } from '../helpers/topology.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { announcingNode, buildSegmentTopology, eventually, neighMac, segmentNodes } from '../helpers/e2e.js';

const TAG = 'annv6';
const ADDR = '198.18.0.230';
const ADDR6 = 'fd00:18::230';
let topo: Topology;
let c: XlbCluster;
let macs: Map<string, string>;
const web: SvcDef = {
  name: 'web6', type: 'LoadBalancer', clusterIP: '10.96.9.31', clusterIP6: 'fd00:96::9:31', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }],
};

const announcer = (): Promise<string> => announcingNode(c, ADDR6);
const nodes = (notReady?: string) => segmentNodes(topo, notReady);
const url = `http://[${ADDR6}]/`;

before(async () => {
  await sweepStale(TAG);
  ({ topo, macs } = await buildSegmentTopology(TAG, { dualStack: true }));
  c = new XlbCluster(topo, TAG);
  c.write('nodes.yaml', nodes());
  c.write('pool.yaml', [ipPool('segment', [`${ADDR}-${ADDR}`, `${ADDR6}-${ADDR6}`])]);
  const eps = topo.pods.map((pod) => ({ pod }));
  c.write('services.yaml', [serviceObj(web), sliceObj(web, eps), sliceObj(web, eps, 6)]);
  await c.startAgents(['node1', 'node2']);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('IPv6: the announcing node answers neighbour solicitations from the datapath; a takeover moves the client by unsolicited NA', async () => {
  await eventually(`a node announces ${ADDR6}`, async () => (await announcer()) !== '', 15_000);
  const first = await announcer();
  const other = first === 'node1' ? 'node2' : 'node1';
  await eventually(`${url} answers`, async () => (await topo.curl('client', url, { timeoutMs: 1000 })).status === 200, 10_000);
  assert.equal(await neighMac(topo, ADDR6), macs.get(first), 'the client learnt the announcing node\'s MAC');
  const maps = JSON.parse(await c.cli(first, ['maps', 'announce_stats', '-o', 'json'])) as Array<{ name: string; entries: Array<{ key: any; value: any }> }>;
  const replies = maps.find((m) => m.name === 'announce_stats')?.entries.find((e) => e.key.counter === 'ndp_replies');
  assert.ok(replies && Number(replies.value.count) >= 1, `the datapath counted its neighbour advertisements: ${JSON.stringify(maps)}`);
  c.write('nodes.yaml', nodes(first));
  await eventually(`${other} announces ${ADDR6}`, async () => (await announcer()) === other, 15_000);
  await eventually('the client neighbour entry moves to the new node', async () => (await neighMac(topo, ADDR6)) === macs.get(other), 5000);
  assert.equal((await topo.curl('client', url, { timeoutMs: 1500 })).status, 200);
});
