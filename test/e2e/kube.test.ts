// The agent with the kube source, end to end: a wire-level API server (test/helpers/
// fake-apiserver.ts, driven by the real @kubernetes/client-node) runs inside node1's
// namespace; the agent programs Services and EndpointSlices from it, follows changes,
// honours kube-proxy's service-proxy-name label, and is switched off and on by the Node
// label xlb.io/enabled.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { buildTopology, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, nodeObj, type SvcDef } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { answers, eventually, xdpProgId } from '../helpers/e2e.js';

let topo: Topology;
let c: XlbCluster;
let api: ChildProcess;
let send: (cmd: object) => Promise<void>;
let pods: TopoPod[];
let kubeconfigPath: string;

const web: SvcDef = { name: 'web', type: 'NodePort', clusterIP: '10.96.2.10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30280 }] };




async function status(): Promise<{ enabled: boolean; enabledReason: string }> {
  return JSON.parse(await c.cli('node1', ['status', '-o', 'json'])) as { enabled: boolean; enabledReason: string };
}

before(async () => {
  await sweepStale('kube');
  topo = await buildTopology({ tag: 'kube', podsPerNode: 2 });
  pods = topo.pods;
  await startPodServers(topo);
  c = new XlbCluster(topo, 'kube', { deviceMode: 'xdp' }); // the label test reads the XDP program id
  // The fake API server lives in node1's namespace, where the agent reaches 127.0.0.1.
  api = topo.set.track(topo.nodes[0].ns.spawn(process.execPath, [new URL('../helpers/fake-apiserver-main.js', import.meta.url).pathname],
    { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: api.stdout! });
  const queue: Array<(l: string) => void> = [];
  lines.on('line', (l) => queue.shift()?.(l));
  const first = await new Promise<string>((r) => queue.push(r));
  const { kubeconfig } = JSON.parse(first) as { kubeconfig: string };
  kubeconfigPath = kubeconfig;
  send = async (cmd) => {
    const reply = new Promise<string>((r) => queue.push(r));
    api.stdin!.write(JSON.stringify(cmd) + '\n');
    const l = await reply;
    if (l !== 'ok') throw new Error(`fake API server: ${l}`);
  };
  await send({ op: 'apply', resource: 'nodes', obj: nodeObj('node1', topo.nodes[0].ip) });
  await send({ op: 'apply', resource: 'services', obj: serviceObj(web) });
  await send({ op: 'apply', resource: 'endpointslices', obj: sliceObj(web, pods.map((pod) => ({ pod }))) });
  // --drain-timeout 0: the label test checks the immediate detach (hitless.test.ts the drain)
  await c.startAgent('node1', ['--drain-timeout', '0'], 30_000, ['--source', 'kube', '--kubeconfig', kubeconfig]);
});

after(async () => {
  api?.stdin?.end();
  await c?.teardown();
  await topo?.teardown();
});

test('kube source: Services and EndpointSlices from the API server are programmed', async () => {
  await eventually('ClusterIP answers', async () => (await topo.curl(pods[0].name, 'http://10.96.2.10/', { timeoutMs: 500 })).status === 200);
  const cip = await answers(topo, pods[0].name, 'http://10.96.2.10/', 10);
  assert.equal(cip.failed, 0);
  assert.ok(cip.names.size >= 2, `answers rotate: ${[...cip.names]}`);
  const np = await answers(topo, 'client', `http://${topo.nodes[0].ip}:30280/`, 6);
  assert.equal(np.failed, 0);
});

test('kube source: an EndpointSlice update from a watch event moves traffic', async () => {
  await send({ op: 'apply', resource: 'endpointslices', obj: sliceObj(web, [{ pod: pods[2] }]) });
  await eventually('only one pod answers', async () => {
    const r = await answers(topo, pods[0].name, 'http://10.96.2.10/', 5);
    return r.failed === 0 && r.names.size === 1 && r.names.has(pods[2].name);
  });
  await send({ op: 'apply', resource: 'endpointslices', obj: sliceObj(web, pods.map((pod) => ({ pod }))) });
});

test("kube source: a Service another proxy owns (service-proxy-name) is left alone, like kube-proxy does", async () => {
  const other: SvcDef = { name: 'other', clusterIP: '10.96.2.20', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
  const svc = serviceObj(other);
  svc.metadata.labels = { 'service.kubernetes.io/service-proxy-name': 'someone-else' };
  await send({ op: 'apply', resource: 'services', obj: svc });
  await send({ op: 'apply', resource: 'endpointslices', obj: sliceObj(other, [{ pod: pods[0] }]) });
  await new Promise((r) => setTimeout(r, 1000));
  const listed = JSON.parse(await c.cli('node1', ['services', '-o', 'json'])) as unknown;
  assert.doesNotMatch(JSON.stringify(listed), /default\/other/);
  assert.equal((await topo.curl(pods[0].name, 'http://10.96.2.20/', { timeoutMs: 700 })).status, 0);
});

test('the Node label xlb.io/enabled=false detaches the programs and status says why; true attaches again', async () => {
  assert.ok((await xdpProgId(topo, 'node1')) > 0);
  await send({ op: 'apply', resource: 'nodes', obj: nodeObj('node1', topo.nodes[0].ip, { 'xlb.io/enabled': 'false' }) });
  await eventually('detached', async () => (await xdpProgId(topo, 'node1')) === 0);
  const off = await status();
  assert.equal(off.enabled, false);
  assert.equal(off.enabledReason, 'label');
  await send({ op: 'apply', resource: 'nodes', obj: nodeObj('node1', topo.nodes[0].ip, { 'xlb.io/enabled': 'true' }) });
  await eventually('attached', async () => (await xdpProgId(topo, 'node1')) > 0);
  assert.equal((await status()).enabled, true);
  await eventually('traffic again', async () => (await topo.curl(pods[0].name, 'http://10.96.2.10/', { timeoutMs: 500 })).status === 200);
});

test('xlb toggle in kube mode says to use the Node label instead', async () => {
  await assert.rejects(c.cli('node1', ['toggle', 'off']), /kubectl label node node1 xlb\.io\/enabled=false/);
  assert.equal((await status()).enabled, true);
});

/** 'service programmed' log lines of one Service, from the agent's kept log. */
function programmedLines(key: string): Array<{ backends: number }> {
  return c.agents.get('node1')!.log.filter((l) => l.includes('"service programmed"') && l.includes(`"svc":"${key}"`))
    .map((l) => JSON.parse(l) as { backends: number });
}

test('a kubelet status write to the Node reprograms nothing; a zone change reprograms topology Services only', async () => {
  const topoSvc: SvcDef = { name: 'near', clusterIP: '10.96.2.30', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
  const obj = serviceObj(topoSvc);
  obj.spec.trafficDistribution = 'PreferClose';
  await send({ op: 'apply', resource: 'services', obj });
  await send({ op: 'apply', resource: 'endpointslices', obj: sliceObj(topoSvc, [{ pod: pods[0] }]) });
  // With its endpoint: the Service's and the slice's events may be programmed one by one.
  await eventually('near programmed with its endpoint', async () => programmedLines('default/near').some((l) => l.backends > 0));
  const before = { web: programmedLines('default/web').length, near: programmedLines('default/near').length };
  const heartbeat = (zone: string, beat: number) => {
    const n = nodeObj('node1', topo.nodes[0].ip, { 'xlb.io/enabled': 'true', 'topology.kubernetes.io/zone': zone });
    n.status.conditions = [{ type: 'Ready', status: 'True', lastHeartbeatTime: new Date(Date.UTC(2026, 0, 1, 0, 0, beat)).toISOString() }];
    return send({ op: 'apply', resource: 'nodes', obj: n });
  };
  await heartbeat('zone-a', 1);
  await eventually('the zone change reprograms the topology Service', async () => programmedLines('default/near').length > before.near);
  const afterZone = { web: programmedLines('default/web').length, near: programmedLines('default/near').length };
  assert.equal(afterZone.web, before.web, 'a Service without topology routing is not reprogrammed by a zone change');
  for (let beat = 2; beat <= 4; beat++) await heartbeat('zone-a', beat);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual({ web: programmedLines('default/web').length, near: programmedLines('default/near').length }, afterZone,
    'heartbeats reprogram no Service');
  assert.equal((await topo.curl(pods[0].name, 'http://10.96.2.10/', { timeoutMs: 1000 })).status, 200);
  await send({ op: 'remove', resource: 'services', name: 'near', namespace: 'default' });
});

test('a restart whose EndpointSlice list is slow never programs a Service without its endpoints', async () => {
  await c.stopAgent('node1', 'SIGKILL');
  await send({ op: 'listDelay', resource: 'endpointslices', ms: 3000 });
  // New connections through the pinned maps all along the restart: none may be rejected.
  const probe = (async () => {
    let ok = 0, failed = 0;
    const end = Date.now() + 6000;
    for (let i = 0; i < 40 && Date.now() < end; i++) {
      if ((await topo.curl(pods[0].name, 'http://10.96.2.10/', { timeoutMs: 1000 })).status === 200) ok++; else failed++;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { ok, failed };
  })();
  try {
    // debug: the first full sync logs each Service it programs at debug level only
    await c.startAgent('node1', [], 30_000, ['--source', 'kube', '--kubeconfig', kubeconfigPath, '--log-level', 'debug']);
  } finally {
    await send({ op: 'listDelay', resource: 'endpointslices', ms: 0 });
  }
  const r = await probe;
  const web = programmedLines('default/web');
  assert.ok(web.length > 0, 'web programmed after the restart');
  assert.deepEqual(web.filter((l) => l.backends === 0), [], 'never programmed with zero backends');
  assert.equal(r.failed, 0, `connections during the restart: ${JSON.stringify(r)}`);
});
