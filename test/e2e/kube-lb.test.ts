// LoadBalancer addresses in kube mode (issue 17 item 3) and the refused-externalIP Event
// (issue 21 item 3): two agents, one per node, against one wire-level fake API server that
// runs in node1's namespace and listens on node1's address (node2 reaches it over the
// bridge). A LoadBalancerIPPool and a LoadBalancer Service: the agent holding the Lease writes
// the address into the Service status once, both program it, and the client reaches the
// Service on it (the topology routes SERVICE_VIP_RANGE to node1). A Service asking for an
// externalIP outside --external-ip-cidrs (none by default) gets one Warning Event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnFakeApiServer, type FakeApiProcess } from '../helpers/fake-apiserver-proc.js';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, nodeObj, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

const TAG = 'klb';
const ADDR = '198.18.100.210';
const REFUSED = '198.18.100.220';
let topo: Topology;
let c: XlbCluster;
let api: FakeApiProcess;
let call: (cmd: object) => Promise<any>;

const web: SvcDef = { name: 'web', type: 'LoadBalancer', clusterIP: '10.96.8.1', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
const ext: SvcDef = { name: 'ext', clusterIP: '10.96.8.2', externalIPs: [REFUSED], ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 1 });
  await startPodServers(topo);
  c = new XlbCluster(topo, TAG);
  api = await spawnFakeApiServer(topo);
  call = api.call;
  for (const [i, n] of topo.nodes.entries()) await call({ op: 'apply', resource: 'nodes', obj: nodeObj(`node${i + 1}`, n.ip) });
  await call({ op: 'apply', resource: 'loadbalancerippools', obj: ipPool('kube-demo', [`${ADDR}-${ADDR}`]) });
  for (const d of [web, ext]) {
    await call({ op: 'apply', resource: 'services', obj: serviceObj(d) });
    await call({ op: 'apply', resource: 'endpointslices', obj: sliceObj(d, topo.pods.map((pod) => ({ pod }))) });
  }
  // node2 reaches the server on node1's address; the kubeconfig already names it.
  for (const node of ['node1', 'node2']) await c.startAgent(node, [], 30_000, ['--source', 'kube', '--kubeconfig', await api.kubeconfig(node)]);
});

after(async () => {
  api?.proc.stdin?.end();
  await c?.teardown();
  await topo?.teardown();
});

const ingress = async (name: string) => ((await call({ op: 'get', resource: 'services', name, namespace: 'default' }))?.status?.loadBalancer?.ingress ?? []) as Array<{ ip: string; ipMode?: string }>;
const statusWrites = async (name: string) => ((await call({ op: 'writes', resource: 'services' })) as Array<{ name: string; subresource?: string }>)
  .filter((w) => w.name === name && w.subresource === 'status');

test('kube mode: the leader writes the pool address into the Service status, once; both agents serve it', async () => {
  await eventually('status.loadBalancer.ingress written', async () => (await ingress('web')).length === 1, 20_000);
  assert.deepEqual(await ingress('web'), [{ ip: ADDR, ipMode: 'VIP' }]);
  const lease = await call({ op: 'get', resource: 'leases', name: 'xlb-lb-status', namespace: 'xlb-system' });
  const holder = lease?.spec?.holderIdentity as string;
  assert.ok(['node1', 'node2'].includes(holder), `lease held by ${holder}`);
  const wrote = (n: string) => c.agents.get(n)!.log.filter((l) => l.includes('"load balancer address written"')).length;
  await new Promise((r) => setTimeout(r, 2000)); // time for a second write, if there were one
  assert.equal((await statusWrites('web')).length, 1, 'written once');
  assert.equal(wrote(holder), 1, 'by the lease holder');
  assert.equal(wrote(holder === 'node1' ? 'node2' : 'node1'), 0, 'not by the other agent');
  for (const node of ['node1', 'node2']) {
    await eventually(`${node} programs ${ADDR}`, async () => {
      const list = JSON.parse(await c.cli(node, ['services', '-o', 'json'])) as Array<{ key: string; frontends: Array<{ type: string; addr: string }> }>;
      return list.find((s) => s.key === 'default/web')?.frontends.some((f) => f.type === 'LoadBalancer' && f.addr === ADDR) ?? false;
    });
  }
});

test('kube mode: the client reaches the Service on its assigned address', async () => {
  await eventually(`http://${ADDR}/ answers`, async () => (await topo.curl('client', `http://${ADDR}/`, { timeoutMs: 1000 })).status === 200);
  for (let i = 0; i < 5; i++) {
    const r = await topo.curl('client', `http://${ADDR}/`, { timeoutMs: 1500 });
    assert.equal(r.status, 200, r.error);
    assert.match(r.body, /^Hello, /);
  }
});

test('kube mode: an externalIP refused by --external-ip-cidrs gets one Warning Event on its Service', async () => {
  let events: any[] = [];
  await eventually('an ExternalIPRefused Event', async () => {
    events = ((await call({ op: 'all', resource: 'events' })) as any[]).filter((e) => e.reason === 'ExternalIPRefused');
    return events.length > 0;
  }, 20_000);
  await new Promise((r) => setTimeout(r, 1500)); // both agents saw the warning: still one Event
  events = ((await call({ op: 'all', resource: 'events' })) as any[]).filter((e) => e.reason === 'ExternalIPRefused');
  assert.equal(events.length, 1, JSON.stringify(events));
  const e = events[0];
  assert.equal(e.type, 'Warning');
  assert.equal(e.involvedObject.name, 'ext');
  assert.equal(e.involvedObject.kind, 'Service');
  assert.equal(e.message, `externalIP ${REFUSED} refused: not inside --external-ip-cidrs (empty: no externalIPs allowed)`);
  assert.equal(e.count, 1);
  assert.equal((await topo.curl('client', `http://${REFUSED}/`, { timeoutMs: 700 })).status, 0, 'the refused address is not served');
});
