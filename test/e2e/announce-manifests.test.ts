// LoadBalancer address announcement in manifests mode (issue 18): the first eligible node
// among the folder's Node objects answers ARP for the address; when its Node's Ready
// condition turns False in the folder, the other node takes it over at the next read of the
// folder and its gratuitous ARP moves the client (on the bridge, no route for the address).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Topology } from '../helpers/topology.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { announcingNode, buildSegmentTopology, eventually, neighMac, segmentNodes } from '../helpers/e2e.js';

const TAG = 'annm';
const ADDR = '198.18.0.220';
let topo: Topology;
let c: XlbCluster;
let macs: Map<string, string>;
const web: SvcDef = { name: 'web', type: 'LoadBalancer', clusterIP: '10.96.9.21', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };

const neigh = (): Promise<string | undefined> => neighMac(topo, ADDR);
const announcer = (): Promise<string> => announcingNode(c, ADDR);
const nodes = (notReady?: string) => segmentNodes(topo, notReady);

before(async () => {
  await sweepStale(TAG);
  ({ topo, macs } = await buildSegmentTopology(TAG));
  c = new XlbCluster(topo, TAG);
  c.write('nodes.yaml', nodes());
  c.write('pool.yaml', [ipPool('segment', [`${ADDR}-${ADDR}`])]);
  c.write('services.yaml', [serviceObj(web), sliceObj(web, topo.pods.map((pod) => ({ pod })))]);
  await c.startAgents(['node1', 'node2']);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('manifests mode: one node announces the address; its Node turning not Ready moves it, and the client follows', async () => {
  await eventually(`a node announces ${ADDR}`, async () => (await announcer()) !== '', 15_000);
  const first = await announcer();
  const other = first === 'node1' ? 'node2' : 'node1';
  await eventually(`http://${ADDR}/ answers`, async () => (await topo.curl('client', `http://${ADDR}/`, { timeoutMs: 1000 })).status === 200, 10_000);
  assert.equal(await neigh(), macs.get(first));
  const svcs = JSON.parse(await c.cli(other, ['services', '-o', 'json'])) as Array<{ frontends: Array<{ type: string; addr: string; announcer: string }> }>;
  assert.equal(svcs.flatMap((s) => s.frontends).find((f) => f.type === 'LoadBalancer')?.announcer, first, 'both agents agree who announces');
  c.write('nodes.yaml', nodes(first));
  await eventually(`${other} announces ${ADDR}`, async () => (await announcer()) === other, 15_000);
  await eventually('the client neighbour entry moves to the new node', async () => (await neigh()) === macs.get(other), 5000);
  assert.equal((await topo.curl('client', `http://${ADDR}/`, { timeoutMs: 1500 })).status, 200);
});
