// LoadBalancer addresses in kube mode (issue 17 item 3) and the refused-externalIP Event
// (issue 21 item 3): two agents, one per node, against one wire-level fake API server that
// runs in node1's namespace and listens on node1's address (node2 reaches it over the
// bridge). A LoadBalancerIPPool and a LoadBalancer Service: the agent holding the Lease writes
// the address into the Service status once, both program it, and the client reaches the
// Service on it (the topology routes SERVICE_VIP_RANGE to node1). A Service asking for an
// externalIP outside --external-ip-cidrs (none by default) gets one Warning Event.
// Both families (issue 15): dual-stack topology, Nodes and Services; the pool has an IPv4 and
// an IPv6 address, the Service gets both in one status write and answers on both; each refused
// externalIP (one per family) gets its own Event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnFakeApiServer, type FakeApiProcess } from '../helpers/fake-apiserver-proc.js';
import { buildTopology, httpUrl, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, nodeObj, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

const TAG = 'klb';
const ADDR = '198.18.100.210';
const ADDR6 = 'fd00:18:100::210';
const REFUSED = '198.18.100.220';
const REFUSED6 = 'fd00:18:100::220';
let topo: Topology;
let c: XlbCluster;
let api: FakeApiProcess;
let call: (cmd: object) => Promise<any>;

const web: SvcDef = { name: 'web', type: 'LoadBalancer', clusterIP: '10.96.8.1', clusterIP6: 'fd00:96::8:1', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
const ext: SvcDef = { name: 'ext', clusterIP: '10.96.8.2', clusterIP6: 'fd00:96::8:2', externalIPs: [REFUSED, REFUSED6], ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 1, dualStack: true });
  await startPodServers(topo);
  c = new XlbCluster(topo, TAG);
  api = await spawnFakeApiServer(topo);
  call = api.call;
  for (const [i, n] of topo.nodes.entries()) await call({ op: 'apply', resource: 'nodes', obj: nodeObj(`node${i + 1}`, n.ip, {}, n.ip6) });
  await call({ op: 'apply', resource: 'loadbalancerippools', obj: ipPool('kube-demo', [`${ADDR}-${ADDR}`, `${ADDR6}-${ADDR6}`]) });
  for (const d of [web, ext]) {
    await call({ op: 'apply', resource: 'services', obj: serviceObj(d) });
    for (const f of [4, 6] as const) await call({ op: 'apply', resource: 'endpointslices', obj: sliceObj(d, topo.pods.map((pod) => ({ pod })), f) });
  }
  // node2 reaches the server on node1's address; the kubeconfig already names it.
  // both at once (the load of one overlaps the other's), each with the bound of both
  await Promise.all(['node1', 'node2'].map(async (node) => c.startAgent(node, [], 60_000, ['--source', 'kube', '--kubeconfig', await api.kubeconfig(node)])));
});

after(async () => {
  api?.proc.stdin?.end();
  await c?.teardown();
  await topo?.teardown();
});

const ingress = async (name: string) => ((await call({ op: 'get', resource: 'services', name, namespace: 'default' }))?.status?.loadBalancer?.ingress ?? []) as Array<{ ip: string; ipMode?: string }>;
const statusWrites = async (name: string) => ((await call({ op: 'writes', resource: 'services' })) as Array<{ name: string; subresource?: string }>)
  .filter((w) => w.name === name && w.subresource === 'status');

test('kube mode: the leader writes the pool addresses into the Service status, once; both agents serve them', async () => {
  await eventually('status.loadBalancer.ingress written', async () => (await ingress('web')).length === 2, 20_000);
  assert.deepEqual(await ingress('web'), [{ ip: ADDR, ipMode: 'VIP' }, { ip: ADDR6, ipMode: 'VIP' }]);
  const lease = await call({ op: 'get', resource: 'leases', name: 'xlb-lb-status', namespace: 'xlb-system' });
  const holder = lease?.spec?.holderIdentity as string;
  assert.ok(['node1', 'node2'].includes(holder), `lease held by ${holder}`);
  const wrote = (n: string) => c.agents.get(n)!.log.filter((l) => l.includes('"load balancer address written"')).length;
  await new Promise((r) => setTimeout(r, 2000)); // time for a second write, if there were one
  assert.equal((await statusWrites('web')).length, 1, 'written once');
  assert.equal(wrote(holder), 1, 'by the lease holder');
  assert.equal(wrote(holder === 'node1' ? 'node2' : 'node1'), 0, 'not by the other agent');
  for (const node of ['node1', 'node2']) {
    await eventually(`${node} programs ${ADDR} and ${ADDR6}`, async () => {
      const list = JSON.parse(await c.cli(node, ['services', '-o', 'json'])) as Array<{ key: string; frontends: Array<{ type: string; addr: string }> }>;
      const lb = list.find((s) => s.key === 'default/web')?.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.addr) ?? [];
      return lb.includes(ADDR) && lb.includes(ADDR6);
    });
  }
});

test('kube mode: the client reaches the Service on its assigned addresses', async () => {
  for (const url of [httpUrl(ADDR), httpUrl(ADDR6)]) {
    await eventually(`${url} answers`, async () => (await topo.curl('client', url, { timeoutMs: 1000 })).status === 200);
    for (let i = 0; i < 5; i++) {
      const r = await topo.curl('client', url, { timeoutMs: 1500 });
      assert.equal(r.status, 200, r.error);
      assert.match(r.body, /^Hello, /);
    }
  }
});

test('kube mode: each externalIP refused by --external-ip-cidrs gets one Warning Event on its Service, in both families', async () => {
  let events: any[] = [];
  await eventually('an ExternalIPRefused Event per address', async () => {
    events = ((await call({ op: 'all', resource: 'events' })) as any[]).filter((e) => e.reason === 'ExternalIPRefused');
    return events.length >= 2;
  }, 20_000);
  await new Promise((r) => setTimeout(r, 1500)); // both agents saw the warnings: still one Event each
  events = ((await call({ op: 'all', resource: 'events' })) as any[]).filter((e) => e.reason === 'ExternalIPRefused');
  assert.equal(events.length, 2, JSON.stringify(events));
  assert.deepEqual(events.map((e) => e.message).sort(), [REFUSED, REFUSED6].map((a) => `externalIP ${a} refused: not inside --external-ip-cidrs (empty: no externalIPs allowed)`));
  for (const e of events) {
    assert.equal(e.type, 'Warning');
    assert.equal(e.involvedObject.name, 'ext');
    assert.equal(e.involvedObject.kind, 'Service');
    assert.equal(e.count, 1);
  }
  for (const a of [REFUSED, REFUSED6]) assert.equal((await topo.curl('client', httpUrl(a), { timeoutMs: 700 })).status, 0, `the refused address ${a} is not served`);
});
