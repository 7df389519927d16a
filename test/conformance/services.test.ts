// Kubernetes' "[sig-network] Services" tests (test/e2e/network/service.go) that exercise the
// node proxy, each asserting on the wire what the upstream test asserts, on the namespace
// topology with the manifests source. README.md in this folder maps every upstream test to
// its test here, or says why it cannot run on this topology.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_IP } from '../helpers/topology.js';
import { eventually } from '../helpers/e2e.js';
import { probe } from '../helpers/wire.js';
import { converges, setup, slice, sliceFor, svc, udpConverges, unanswered, sleep, type Env, type Ep } from './lib.js';

let env: Env;
let n = 0;
/** A fresh ClusterIP per test, so no test sees another's state. */
const cip = () => `10.96.60.${++n}`;
const apply = (file: string, ...objs: Record<string, any>[]) => env.c.write(`${file}.yaml`, objs);
const remove = (file: string) => env.c.remove(`${file}.yaml`);
const http = (name = 'http', port = 80, extra = {}) => ({ name, port, ...extra });

before(async () => { env = await setup('conf-svc'); });
after(async () => { await env?.teardown(); });

async function refused(kind: 'tcp' | 'udp', from: string, addr: string, port: number): Promise<void> {
  await eventually(`${kind} ${addr}:${port} refused at once from ${from}`, async () => {
    const r = await probe(kind, env.topo.nsFor(from), addr, port, 2000);
    return r.result === 'error' && r.code === 'ECONNREFUSED' && r.ms < 1000;
  });
}

test('should serve a basic endpoint from pods', async () => {
  const ip = cip();
  const s = svc('endpoint-test2', ip, [http()]);
  apply('basic', s, sliceFor(s, []));
  await refused('tcp', 'app1-3', ip, 80);
  apply('basic', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  apply('basic', s, sliceFor(s, [{ pod: env.pod(1) }, { pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1), env.pod(2)], { all: true });
  apply('basic', s, sliceFor(s, [{ pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(2)]);
  apply('basic', s, sliceFor(s, []));
  await refused('tcp', 'app1-3', ip, 80);
  remove('basic');
});

test('should serve multiport endpoints from pods', async () => {
  const ip = cip();
  const s = svc('multi-endpoint-test', ip, [{ name: 'portname1', port: 80, targetPort: 'svc1' }, { name: 'portname2', port: 81, targetPort: 'svc2' }]);
  // Two pods, each exposing one of the named ports: one slice per port, as the controller writes them.
  apply('multiport', s, slice('multi-endpoint-test', 'p1', [{ name: 'portname1' }], [{ pod: env.pod(1) }]),
    slice('multi-endpoint-test', 'p2', [{ name: 'portname2' }], [{ pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}:80/`, [env.pod(1)]);
  await converges(env, 'app1-3', `http://${ip}:81/`, [env.pod(2)]);
  apply('multiport', s, slice('multi-endpoint-test', 'p2', [{ name: 'portname2' }], [{ pod: env.pod(2) }]));
  await refused('tcp', 'app1-3', ip, 80);
  await converges(env, 'app1-3', `http://${ip}:81/`, [env.pod(2)]);
  remove('multiport');
});

test('should be updated after adding or deleting ports', async () => {
  const ip = cip();
  const eps: Ep[] = [{ pod: env.pod(1) }];
  const one = svc('edit-port-test', ip, [http('tcp-port', 80)]);
  apply('ports', one, sliceFor(one, eps));
  await converges(env, 'app1-3', `http://${ip}:80/`, [env.pod(1)]);
  const two = svc('edit-port-test', ip, [http('tcp-port', 80), http('tcp-port2', 81)]);
  apply('ports', two, sliceFor(two, eps));
  await converges(env, 'app1-3', `http://${ip}:81/`, [env.pod(1)]);
  const onlyNew = svc('edit-port-test', ip, [http('tcp-port2', 81)]);
  apply('ports', onlyNew, sliceFor(onlyNew, eps));
  await unanswered(env, 'app1-3', `http://${ip}:80/`);
  await converges(env, 'app1-3', `http://${ip}:81/`, [env.pod(1)]);
  remove('ports');
});

test('should preserve source pod IP for traffic thru service cluster IP', async () => {
  const ip = cip();
  const s = svc('sourceip-test', ip, [http()]);
  apply('sourceip', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  for (const from of [env.pod(3), env.pod(2)]) { // same node, other node
    const r = await env.topo.curl(from.name, `http://${ip}/ip`, { timeoutMs: 1500 });
    assert.equal(r.body.trim(), from.ip, `the server sees ${from.name}'s own address`);
  }
  remove('sourceip');
});

test('should allow pods to hairpin back to themselves through services', async () => {
  const ip = cip();
  const s = svc('hairpin-test', ip, [http('http', 8080)]);
  apply('hairpin', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-1', `http://${ip}:8080/`, [env.pod(1)]);
  remove('hairpin');
});

test('should be able to up and down services', async () => {
  const [ip1, ip2, ip3] = [cip(), cip(), cip()];
  const mk = (name: string, ip: string, eps: Ep[]) => { const s = svc(name, ip, [http()]); apply(name, s, sliceFor(s, eps)); };
  mk('service1', ip1, [{ pod: env.pod(1) }, { pod: env.pod(2) }, { pod: env.pod(3) }]);
  mk('service2', ip2, [{ pod: env.pod(4) }, { pod: env.pod(5) }, { pod: env.pod(6) }]);
  await converges(env, 'app1-4', `http://${ip1}/`, [env.pod(1), env.pod(2), env.pod(3)]);
  await converges(env, 'app1-4', `http://${ip2}/`, [env.pod(4), env.pod(5), env.pod(6)]);
  remove('service1');
  await unanswered(env, 'app1-4', `http://${ip1}/`);
  await converges(env, 'app1-4', `http://${ip2}/`, [env.pod(4), env.pod(5), env.pod(6)]);
  mk('service3', ip3, [{ pod: env.pod(1) }]);
  await converges(env, 'app1-4', `http://${ip3}/`, [env.pod(1)]);
  await converges(env, 'app1-4', `http://${ip2}/`, [env.pod(4), env.pod(5), env.pod(6)]);
  remove('service2');
  remove('service3');
});

test('should work after the service has been recreated', async () => {
  const ip = cip();
  const s = svc('recreated', ip, [http()]);
  apply('recreated', s, sliceFor(s, [{ pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(2)]);
  remove('recreated');
  await unanswered(env, 'app1-3', `http://${ip}/`);
  apply('recreated', s, sliceFor(s, [{ pod: env.pod(4) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(4)]);
  remove('recreated');
});

test('should work after restarting kube-proxy (the agent, kill -9)', async () => {
  const ip = cip();
  const s = svc('restart', ip, [http()], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30610 }] });
  apply('restart', s, sliceFor(s, [{ pod: env.pod(1) }, { pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1), env.pod(2)]);
  const args = ['--external-ip-cidrs', '198.18.100.0/24'];
  await env.c.stopAgent('node1', 'SIGKILL');
  // Programs and maps stay pinned: Services answer while no agent runs, and after it is back.
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1), env.pod(2)]);
  await env.c.startAgent('node1', args);
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1), env.pod(2)]);
  await converges(env, 'client', `http://${env.node1}:30610/`, [env.pod(1), env.pod(2)]);
  remove('restart');
});

test('should be able to create a functioning NodePort service', async () => {
  const s = svc('nodeport-test', cip(), [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30611 }] });
  apply('nodeport', s, sliceFor(s, [{ pod: env.pod(1) }, { pod: env.pod(2) }]));
  for (const node of [env.node1, env.node2]) await converges(env, 'client', `http://${node}:30611/`, [env.pod(1), env.pod(2)]);
  remove('nodeport');
});

const externalName = (name: string) => svc(name, null, [], { type: 'ExternalName', externalName: 'foo.example.com', ports: undefined });

test('should be able to change the type from ExternalName to ClusterIP', async () => {
  apply('en2cip', externalName('externalname-service'));
  await sleep(500);
  const ip = cip();
  const s = svc('externalname-service', ip, [http()]);
  apply('en2cip', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  remove('en2cip');
});

test('should be able to change the type from ExternalName to NodePort', async () => {
  apply('en2np', externalName('externalname-np'));
  await sleep(500);
  const s = svc('externalname-np', cip(), [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30612 }] });
  apply('en2np', s, sliceFor(s, [{ pod: env.pod(2) }]));
  await converges(env, 'client', `http://${env.node1}:30612/`, [env.pod(2)]);
  remove('en2np');
});

test('should be able to change the type from ClusterIP to ExternalName', async () => {
  const ip = cip();
  const s = svc('cip-to-en', ip, [http()]);
  apply('cip2en', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  apply('cip2en', externalName('cip-to-en'), sliceFor(s, [{ pod: env.pod(1) }]));
  await unanswered(env, 'app1-3', `http://${ip}/`);
  remove('cip2en');
});

test('should be able to change the type from NodePort to ExternalName', async () => {
  const ip = cip();
  const s = svc('np-to-en', ip, [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30613 }] });
  apply('np2en', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'client', `http://${env.node1}:30613/`, [env.pod(1)]);
  apply('np2en', externalName('np-to-en'));
  await unanswered(env, 'client', `http://${env.node1}:30613/`);
  await unanswered(env, 'app1-3', `http://${ip}/`);
  remove('np2en');
});

test('should be able to update service type to NodePort listening on same port number but different protocols', async () => {
  const ip = cip();
  const tcpOnly = svc('nodeport-update-service', ip, [http('tcp-port', 80)]);
  const eps: Ep[] = [{ pod: env.pod(1) }];
  apply('np-protos', tcpOnly, sliceFor(tcpOnly, eps));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  const both = svc('nodeport-update-service', ip, [], {
    type: 'NodePort',
    ports: [{ name: 'tcp-port', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30614 }, { name: 'udp-port', port: 80, targetPort: 9000, protocol: 'UDP', nodePort: 30614 }],
  });
  apply('np-protos', both, sliceFor(both, eps));
  await converges(env, 'client', `http://${env.node1}:30614/`, [env.pod(1)]);
  await udpConverges(env, 'client', env.node1, 30614, [env.pod(1)]);
  await udpConverges(env, 'app1-3', ip, 80, [env.pod(1)]);
  remove('np-protos');
});

test('should release NodePorts on delete', async () => {
  const a = svc('nodeport-reuse', cip(), [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30615 }] });
  apply('np-reuse-a', a, sliceFor(a, [{ pod: env.pod(1) }]));
  await converges(env, 'client', `http://${env.node1}:30615/`, [env.pod(1)]);
  remove('np-reuse-a');
  await unanswered(env, 'client', `http://${env.node1}:30615/`);
  const b = svc('nodeport-reuse-2', cip(), [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30615 }] });
  apply('np-reuse-b', b, sliceFor(b, [{ pod: env.pod(2) }]));
  await converges(env, 'client', `http://${env.node1}:30615/`, [env.pod(2)]);
  remove('np-reuse-b');
});

test('should create endpoints for unready pods (publishNotReadyAddresses)', async () => {
  const ip = cip();
  const s = svc('tolerate-unready', ip, [http()], { publishNotReadyAddresses: true });
  apply('unready', s, sliceFor(s, [{ pod: env.pod(1), ready: false, serving: false }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  remove('unready');
});

test('should be able to connect to terminating and unready endpoints if PublishNotReadyAddresses is true', async () => {
  const ip = cip();
  const s = svc('tolerate-terminating', ip, [http()], { publishNotReadyAddresses: true });
  apply('pnra-true', s, sliceFor(s, [{ pod: env.pod(2), ready: false, serving: false, terminating: true }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(2)]);
  remove('pnra-true');
});

test('should not be able to connect to terminating and unready endpoints if PublishNotReadyAddresses is false', async () => {
  const ip = cip();
  const s = svc('no-terminating', ip, [http()], { publishNotReadyAddresses: false });
  apply('pnra-false', s, sliceFor(s, [{ pod: env.pod(2), ready: false, serving: false, terminating: true }]));
  await refused('tcp', 'app1-3', ip, 80);
  remove('pnra-false');
});

test('should be rejected when no endpoints exist (TCP and UDP)', async () => {
  const ip = cip();
  const s = svc('no-pods', ip, [http('tcp', 80), { name: 'udp', port: 80, protocol: 'UDP' }], { type: 'NodePort', ports: [
    { name: 'tcp', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30616 }, { name: 'udp', port: 80, targetPort: 9000, protocol: 'UDP', nodePort: 30616 }] });
  apply('no-eps', s, sliceFor(s, []));
  await refused('tcp', 'app1-3', ip, 80);
  await refused('udp', 'app1-3', ip, 80);
  await refused('tcp', 'client', env.node1, 30616);
  await refused('udp', 'client', env.node1, 30616);
  remove('no-eps');
});

test('should be rejected for evicted pods (no endpoints, and no running pods)', async () => {
  const ip = cip();
  const s = svc('evicted-pods', ip, [http()]);
  // Evicted pods are neither ready nor serving.
  apply('evicted', s, sliceFor(s, [{ pod: env.pod(1), ready: false, serving: false }, { pod: env.pod(2), ready: false, serving: false }]));
  await refused('tcp', 'app1-3', ip, 80);
  remove('evicted');
});

async function affinitySticks(from: string, url: string, pods: number): Promise<void> {
  await eventually(`${url} from ${from}: every answer from one pod`, async () => {
    const r = await converges(env, from, url, env.pods.slice(0, pods), { n: 10 });
    return r.names.size === 1;
  });
}

async function spreads(from: string, url: string, pods: number): Promise<void> {
  await eventually(`${url} from ${from}: answers from more than one pod`, async () => {
    const r = await converges(env, from, url, env.pods.slice(0, pods), { n: 12 });
    return r.names.size > 1;
  });
}

const fourEps = (): Ep[] => [1, 2, 3, 4].map((i) => ({ pod: env.pod(i) }));
const affinity = (timeoutSeconds = 10800) => ({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds } } });

for (const type of ['ClusterIP', 'NodePort'] as const) {
  const np = type === 'NodePort' ? 30620 : 0;
  const target = (ip: string, port: number) => (type === 'NodePort' ? { from: 'client', url: `http://${env.node1}:${port}/` } : { from: 'app1-5', url: `http://${ip}/` });
  const mk = (name: string, ip: string, port: number, spec: object) =>
    svc(name, ip, [], { type, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', ...(np ? { nodePort: port } : {}) }], ...spec });

  test(`should have session affinity work for service with type ${type}`, async () => {
    const ip = cip();
    const s = mk('affinity-' + type.toLowerCase(), ip, np + 1, affinity());
    apply('aff', s, sliceFor(s, fourEps()));
    const t = target(ip, np + 1);
    await affinitySticks(t.from, t.url, 4);
    remove('aff');
  });

  test(`should be able to switch session affinity for service with type ${type}`, async () => {
    const ip = cip();
    const t = target(ip, np + 2);
    const off = mk('affinity-switch-' + type.toLowerCase(), ip, np + 2, {});
    apply('aff-switch', off, sliceFor(off, fourEps()));
    await spreads(t.from, t.url, 4);
    const on = mk('affinity-switch-' + type.toLowerCase(), ip, np + 2, affinity());
    apply('aff-switch', on, sliceFor(on, fourEps()));
    await affinitySticks(t.from, t.url, 4);
    apply('aff-switch', off, sliceFor(off, fourEps()));
    await spreads(t.from, t.url, 4);
    remove('aff-switch');
  });

  test(`should have session affinity timeout work for service with type ${type}`, async () => {
    const ip = cip();
    const t = target(ip, np + 3);
    const s = mk('affinity-timeout-' + type.toLowerCase(), ip, np + 3, affinity(2));
    apply('aff-timeout', s, sliceFor(s, fourEps()));
    await affinitySticks(t.from, t.url, 4);
    // After the timeout without traffic a new pick is made: some wait-then-request lands elsewhere.
    const first = (await env.topo.curl(t.from, t.url)).body;
    await eventually('a request after the affinity timeout goes to another pod', async () => {
      await sleep(2600);
      return (await env.topo.curl(t.from, t.url)).body !== first;
    }, 40_000);
    remove('aff-timeout');
  });
}

test('should implement service.kubernetes.io/service-proxy-name', async () => {
  const ip = cip();
  const other = svc('service-proxy-disabled', ip, [http()], {}, { labels: { 'service.kubernetes.io/service-proxy-name': 'foo-bar' } });
  apply('proxy-name', other, sliceFor(other, [{ pod: env.pod(1) }]));
  const mine = svc('service-proxy-toggled', cip(), [http()]);
  apply('proxy-name-2', mine, sliceFor(mine, [{ pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${mine.spec.clusterIP}/`, [env.pod(2)]);
  await unanswered(env, 'app1-3', `http://${ip}/`);
  const plain = svc('service-proxy-disabled', ip, [http()]);
  apply('proxy-name', plain, sliceFor(plain, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  remove('proxy-name');
  remove('proxy-name-2');
});

test('should implement service.kubernetes.io/headless', async () => {
  const ip = cip();
  const headless = svc('service-headless', ip, [http()], {}, { labels: { 'service.kubernetes.io/headless': '' } });
  apply('headless', headless, sliceFor(headless, [{ pod: env.pod(1) }]));
  await sleep(800);
  await unanswered(env, 'app1-3', `http://${ip}/`);
  const plain = svc('service-headless', ip, [http()]);
  apply('headless', plain, sliceFor(plain, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  remove('headless');
});

test('should respect internalTrafficPolicy=Local Pod to Pod', async () => {
  const ip = cip();
  const s = svc('itp-local', ip, [http()], { internalTrafficPolicy: 'Local' });
  apply('itp', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]); // same node
  await unanswered(env, 'app1-2', `http://${ip}/`); // node2 has no local endpoint: dropped
  remove('itp');
});

test('should fallback to terminating endpoints when there are no ready endpoints with internalTrafficPolicy=Cluster', async () => {
  const ip = cip();
  const s = svc('itp-cluster-term', ip, [http()]);
  apply('term-itp-c', s, sliceFor(s, [{ pod: env.pod(1), ready: false, serving: true, terminating: true }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  await converges(env, 'app1-2', `http://${ip}/`, [env.pod(1)]);
  remove('term-itp-c');
});

test('should fallback to terminating endpoints when there are no ready endpoints with externalTrafficPolicy=Cluster', async () => {
  const s = svc('etp-cluster-term', cip(), [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30630 }] });
  apply('term-etp-c', s, sliceFor(s, [{ pod: env.pod(2), ready: false, serving: true, terminating: true }]));
  await converges(env, 'client', `http://${env.node1}:30630/`, [env.pod(2)]);
  remove('term-etp-c');
});

test('should fallback to local terminating endpoints when there are no ready endpoints with internalTrafficPolicy=Local', async () => {
  const ip = cip();
  const s = svc('itp-local-term', ip, [http()], { internalTrafficPolicy: 'Local' });
  apply('term-itp-l', s, sliceFor(s, [{ pod: env.pod(1), ready: false, serving: true, terminating: true }, { pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]); // node1: only its local, terminating endpoint
  await converges(env, 'app1-4', `http://${ip}/`, [env.pod(2)]); // node2: its local ready one
  remove('term-itp-l');
});

test('should fallback to local terminating endpoints when there are no ready endpoints with externalTrafficPolicy=Local', async () => {
  const s = svc('etp-local-term', cip(), [], { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30631 }] });
  apply('term-etp-l', s, sliceFor(s, [{ pod: env.pod(1), ready: false, serving: true, terminating: true }]));
  await converges(env, 'client', `http://${env.node1}:30631/`, [env.pod(1)]);
  await unanswered(env, 'client', `http://${env.node2}:30631/`);
  remove('term-etp-l');
});

test('should fail health check node port if there are only terminating endpoints', async () => {
  const hc = 32111;
  const lb = (eps: Ep[]) => {
    const s = svc('hc-terminating', cip(), [], {
      type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: hc,
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30632 }],
    });
    apply('hc-term', s, sliceFor(s, eps));
  };
  const status = async () => (await env.topo.curl('node1', `http://127.0.0.1:${hc}/`, { timeoutMs: 1000 })).status;
  lb([{ pod: env.pod(1) }]);
  await eventually('health check node port 200 with a local ready endpoint', async () => (await status()) === 200);
  lb([{ pod: env.pod(1), ready: false, serving: true, terminating: true }]);
  await eventually('health check node port 503 with only a terminating local endpoint', async () => (await status()) === 503);
  remove('hc-term');
});

test('should serve endpoints on same port and different protocols', async () => {
  const ip = cip();
  const s = svc('multiprotocol-test', ip, [http('tcp-port', 53), { name: 'udp-port', port: 53, protocol: 'UDP' }]);
  apply('protos', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-3', `http://${ip}:53/`, [env.pod(1)]);
  await udpConverges(env, 'app1-3', ip, 53, [env.pod(1)]);
  remove('protos');
});

test('should serve endpoints on same port and different protocol for internal traffic on Type LoadBalancer', async () => {
  const ip = cip();
  const s = svc('lb-protos', ip, [], {
    type: 'LoadBalancer',
    ports: [{ name: 'tcp', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30633 }, { name: 'udp', port: 80, targetPort: 9000, protocol: 'UDP', nodePort: 30633 }],
  });
  apply('lb-protos', s, sliceFor(s, [{ pod: env.pod(2) }]));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(2)]);
  await udpConverges(env, 'app1-3', ip, 80, [env.pod(2)]);
  remove('lb-protos');
});

test('should be possible to connect to a service via ExternalIP when the external IP is not assigned to a node', async () => {
  const s = svc('externalip-test', cip(), [http()], { externalIPs: ['198.18.100.61'] });
  apply('extip', s, sliceFor(s, [{ pod: env.pod(1) }, { pod: env.pod(2) }]));
  await converges(env, 'client', 'http://198.18.100.61/', [env.pod(1), env.pod(2)]);
  remove('extip');
});

test('should support externalTrafficPolicy=Local for type=NodePort (client address kept)', async () => {
  const s = svc('external-local-nodeport', cip(), [], { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30634 }] });
  apply('etp-local', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'client', `http://${env.node1}:30634/`, [env.pod(1)]);
  const r = await env.topo.curl('client', `http://${env.node1}:30634/ip`);
  assert.equal(r.body.trim(), CLIENT_IP, 'the endpoint sees the client address');
  await unanswered(env, 'client', `http://${env.node2}:30634/`);
  remove('etp-local');
});
