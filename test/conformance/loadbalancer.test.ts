// Kubernetes' "[sig-network] LoadBalancers" and "LoadBalancers ESIPP" tests
// (test/e2e/network/loadbalancer.go) that exercise the node proxy. A cloud writes the
// Service's status.loadBalancer.ingress; here the manifest carries it, and the client reaches
// 198.18.100.0/24 through node1 (a /32 through node2 where a test says so).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_IP } from '../helpers/topology.js';
import { eventually } from '../helpers/e2e.js';
import { steadyIn } from '../helpers/steady.js';
import { converges, setup, sleep, sliceFor, svc, udpConverges, unanswered, type Env, type Ep } from './lib.js';

let env: Env;
before(async () => { env = await setup('conf-lb'); });
after(async () => { await env?.teardown(); });

const apply = (file: string, ...objs: Record<string, any>[]) => env.c.write(`${file}.yaml`, objs);
const remove = (file: string) => env.c.remove(`${file}.yaml`);

function lb(name: string, ip: string, vip: string, spec: Record<string, any> = {}, nodePort = 0, proto: 'TCP' | 'UDP' = 'TCP', port = 80): Record<string, any> {
  const s = svc(name, ip, [], {
    type: 'LoadBalancer',
    ports: [{ name: 'p', port, protocol: proto, targetPort: proto === 'UDP' ? 9000 : 8080, ...(nodePort ? { nodePort } : {}) }],
    ...spec,
  });
  s.status = { loadBalancer: { ingress: [{ ip: vip }] } };
  return s;
}

const hcStatus = async (node: string, port: number) => (await env.topo.curl(node, `http://127.0.0.1:${port}/`, { timeoutMs: 1000 })).status;

test('should be able to change the type and ports of a TCP service', async () => {
  const ip = '10.96.64.1';
  const eps: Ep[] = [{ pod: env.pod(1) }, { pod: env.pod(2) }];
  const c = svc('mutability-test', ip, [{ name: 'p', port: 80 }]);
  apply('mut-tcp', c, sliceFor(c, eps));
  await converges(env, 'app1-3', `http://${ip}/`, eps.map((e) => e.pod));
  const np = svc('mutability-test', ip, [], { type: 'NodePort', ports: [{ name: 'p', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30680 }] });
  apply('mut-tcp', np, sliceFor(np, eps));
  await converges(env, 'client', `http://${env.node1}:30680/`, eps.map((e) => e.pod));
  const l = lb('mutability-test', ip, '198.18.100.70', {}, 30680);
  apply('mut-tcp', l, sliceFor(l, eps));
  await converges(env, 'client', 'http://198.18.100.70/', eps.map((e) => e.pod));
  // change the nodePort, then the service port
  const l2 = lb('mutability-test', ip, '198.18.100.70', {}, 30681);
  apply('mut-tcp', l2, sliceFor(l2, eps));
  await converges(env, 'client', `http://${env.node1}:30681/`, eps.map((e) => e.pod));
  await unanswered(env, 'client', `http://${env.node1}:30680/`);
  const l3 = lb('mutability-test', ip, '198.18.100.70', {}, 30681, 'TCP', 81);
  apply('mut-tcp', l3, sliceFor(l3, eps));
  await converges(env, 'client', 'http://198.18.100.70:81/', eps.map((e) => e.pod));
  await unanswered(env, 'client', 'http://198.18.100.70:80/');
  // back to ClusterIP: the LB address and the nodePort stop answering
  apply('mut-tcp', c, sliceFor(c, eps));
  await unanswered(env, 'client', 'http://198.18.100.70:81/');
  await unanswered(env, 'client', `http://${env.node1}:30681/`);
  await converges(env, 'app1-3', `http://${ip}/`, eps.map((e) => e.pod));
  remove('mut-tcp');
});

test('should be able to change the type and ports of a UDP service', async () => {
  const ip = '10.96.64.2';
  const eps: Ep[] = [{ pod: env.pod(2) }];
  const np = svc('mutability-udp', ip, [], { type: 'NodePort', ports: [{ name: 'p', port: 80, targetPort: 9000, protocol: 'UDP', nodePort: 30682 }] });
  apply('mut-udp', np, sliceFor(np, eps));
  await udpConverges(env, 'client', env.node1, 30682, [env.pod(2)]);
  const l = lb('mutability-udp', ip, '198.18.100.71', {}, 30683, 'UDP');
  apply('mut-udp', l, sliceFor(l, eps));
  await udpConverges(env, 'client', '198.18.100.71', 80, [env.pod(2)]);
  await udpConverges(env, 'client', env.node1, 30683, [env.pod(2)]);
  await eventually('the old UDP nodePort is no longer served', async () => (await env.topo.udpEcho('client', env.node1, 30682, 'x', 700)) === null);
  remove('mut-udp');
});

test('should only allow access from service loadbalancer source ranges', async () => {
  const allowOther = lb('lb-sourcerange', '10.96.64.3', '198.18.100.72', { loadBalancerSourceRanges: ['192.0.2.0/24'] });
  apply('src-ranges', allowOther, sliceFor(allowOther, [{ pod: env.pod(1) }]));
  await sleep(800);
  await unanswered(env, 'client', 'http://198.18.100.72/');
  const allowClient = lb('lb-sourcerange', '10.96.64.3', '198.18.100.72', { loadBalancerSourceRanges: [`${CLIENT_IP}/32`] });
  apply('src-ranges', allowClient, sliceFor(allowClient, [{ pod: env.pod(1) }]));
  await converges(env, 'client', 'http://198.18.100.72/', [env.pod(1)]);
  remove('src-ranges');
});

test('should be able to create LoadBalancer Service without NodePort and change it', async () => {
  const eps: Ep[] = [{ pod: env.pod(1) }];
  const none = lb('lb-no-np', '10.96.64.4', '198.18.100.73', { allocateLoadBalancerNodePorts: false });
  apply('no-np', none, sliceFor(none, eps));
  await converges(env, 'client', 'http://198.18.100.73/', [env.pod(1)]);
  await unanswered(env, 'client', `http://${env.node1}:30684/`);
  const withNp = lb('lb-no-np', '10.96.64.4', '198.18.100.73', { allocateLoadBalancerNodePorts: true }, 30684);
  apply('no-np', withNp, sliceFor(withNp, eps));
  await converges(env, 'client', `http://${env.node1}:30684/`, [env.pod(1)]);
  await converges(env, 'client', 'http://198.18.100.73/', [env.pod(1)]);
  remove('no-np');
});

for (const esipp of [false, true]) {
  const etp = esipp ? { externalTrafficPolicy: 'Local' } : {};
  const label = esipp ? 'on' : 'off';
  // node1 pods only: with ESIPP on, the node the client reaches (node1) has local endpoints.
  const eps = (): Ep[] => [1, 3, 5].map((i) => ({ pod: env.pod(i) }));

  test(`should have session affinity work for LoadBalancer service with ESIPP ${label}`, async () => {
    const vip = esipp ? '198.18.100.74' : '198.18.100.75';
    const s = lb(`affinity-lb-${label}`, esipp ? '10.96.64.5' : '10.96.64.6', vip, { ...etp, sessionAffinity: 'ClientIP' }, esipp ? 30685 : 30686);
    apply(`aff-lb-${label}`, s, sliceFor(s, eps()));
    const a = await converges(env, 'client', `http://${vip}/`, eps().map((e) => e.pod), { n: 12 });
    assert.equal(a.names.size, 1, `one pod: ${[...a.names.keys()]}`);
    remove(`aff-lb-${label}`);
  });

  test(`should be able to switch session affinity for LoadBalancer service with ESIPP ${label}`, async () => {
    const vip = esipp ? '198.18.100.76' : '198.18.100.77';
    const mk = (aff: boolean) => lb(`affinity-switch-lb-${label}`, esipp ? '10.96.64.7' : '10.96.64.8', vip, { ...etp, ...(aff ? { sessionAffinity: 'ClientIP' } : {}) }, esipp ? 30687 : 30688);
    const spread = async () => eventually('answers from several pods', async () => (await converges(env, 'client', `http://${vip}/`, eps().map((e) => e.pod), { n: 12 })).names.size > 1);
    apply(`aff-sw-${label}`, mk(false), sliceFor(mk(false), eps()));
    await spread();
    apply(`aff-sw-${label}`, mk(true), sliceFor(mk(true), eps()));
    await eventually('one pod', async () => (await converges(env, 'client', `http://${vip}/`, eps().map((e) => e.pod), { n: 12 })).names.size === 1);
    apply(`aff-sw-${label}`, mk(false), sliceFor(mk(false), eps()));
    await spread();
    remove(`aff-sw-${label}`);
  });
}

test('ESIPP: should work for type=LoadBalancer (client address kept, health check node port per node)', async () => {
  const s = lb('external-local-lb', '10.96.64.9', '198.18.100.78', { externalTrafficPolicy: 'Local', healthCheckNodePort: 32120 }, 30689);
  apply('esipp-lb', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'client', 'http://198.18.100.78/', [env.pod(1)]);
  assert.equal((await env.topo.curl('client', 'http://198.18.100.78/ip')).body.trim(), CLIENT_IP);
  await eventually('node1 health check 200 (a local endpoint)', async () => (await hcStatus('node1', 32120)) === 200);
  await eventually('node2 health check 503 (no local endpoint)', async () => (await hcStatus('node2', 32120)) === 503);
  remove('esipp-lb');
});

test('ESIPP: should only target nodes with endpoints', async () => {
  const s = lb('external-local-update', '10.96.64.10', '198.18.100.79', { externalTrafficPolicy: 'Local' }, 30690);
  apply('esipp-target', s, sliceFor(s, [{ pod: env.pod(2) }])); // node2 only
  await env.topo.setClientRoute('198.18.100.79/32', 1);
  await converges(env, 'client', 'http://198.18.100.79/', [env.pod(2)]);
  await env.topo.setClientRoute('198.18.100.79/32', 0);
  await unanswered(env, 'client', 'http://198.18.100.79/');
  remove('esipp-target');
});

test('ESIPP: should work from pods', async () => {
  // Pods reach a Local LoadBalancer's address on any node, as kube-proxy short-circuits it.
  const s = lb('external-local-pods', '10.96.64.11', '198.18.100.80', { externalTrafficPolicy: 'Local' }, 30691);
  apply('esipp-pods', s, sliceFor(s, [{ pod: env.pod(1) }]));
  await converges(env, 'app1-2', 'http://198.18.100.80/', [env.pod(1)]);
  await converges(env, 'app1-3', 'http://198.18.100.80/', [env.pod(1)]);
  remove('esipp-pods');
});

test('ESIPP: should handle updates to ExternalTrafficPolicy field', async () => {
  await env.topo.setClientRoute('198.18.100.81/32', 1); // via node2, which has no endpoint
  const local = lb('external-local-flip', '10.96.64.12', '198.18.100.81', { externalTrafficPolicy: 'Local' }, 30692);
  apply('esipp-flip', local, sliceFor(local, [{ pod: env.pod(1) }]));
  await sleep(800);
  await unanswered(env, 'client', 'http://198.18.100.81/');
  const cluster = lb('external-local-flip', '10.96.64.12', '198.18.100.81', { externalTrafficPolicy: 'Cluster' }, 30692);
  apply('esipp-flip', cluster, sliceFor(cluster, [{ pod: env.pod(1) }]));
  await converges(env, 'client', 'http://198.18.100.81/', [env.pod(1)]);
  apply('esipp-flip', local, sliceFor(local, [{ pod: env.pod(1) }]));
  await unanswered(env, 'client', 'http://198.18.100.81/');
  await env.topo.setClientRoute('198.18.100.81/32', 0);
  await converges(env, 'client', 'http://198.18.100.81/', [env.pod(1)]);
  assert.equal((await env.topo.curl('client', 'http://198.18.100.81/ip')).body.trim(), CLIENT_IP);
  remove('esipp-flip');
});

for (const etp of ['Cluster', 'Local'] as const) {
  test(`should not have connectivity disruption during rolling update with externalTrafficPolicy=${etp}`, async () => {
    const vip = etp === 'Cluster' ? '198.18.100.82' : '198.18.100.83';
    const s = lb(`rolling-${etp.toLowerCase()}`, etp === 'Cluster' ? '10.96.64.13' : '10.96.64.14', vip, { externalTrafficPolicy: etp }, etp === 'Cluster' ? 30693 : 30694);
    // A rollout on node1's pods: a new pod becomes ready, an old one terminates (still
    // serving), then leaves the slice; connections keep flowing from the client throughout.
    const steps: Ep[][] = [
      [{ pod: env.pod(1) }, { pod: env.pod(3) }],
      [{ pod: env.pod(1), ready: false, serving: true, terminating: true }, { pod: env.pod(3) }, { pod: env.pod(5) }],
      [{ pod: env.pod(3) }, { pod: env.pod(5) }],
      [{ pod: env.pod(3), ready: false, serving: true, terminating: true }, { pod: env.pod(5) }, { pod: env.pod(1) }],
      [{ pod: env.pod(5) }, { pod: env.pod(1) }],
    ];
    apply(`rolling-${etp}`, s, sliceFor(s, steps[0]));
    await converges(env, 'client', `http://${vip}/`, [env.pod(1), env.pod(3)]);
    const load = steadyIn(env.topo.client.ns, vip, 80, 9000);
    for (const eps of steps.slice(1)) {
      await sleep(1500);
      apply(`rolling-${etp}`, s, sliceFor(s, eps));
    }
    const r = await load;
    assert.equal(r.fresh.failed, 0, `new connections failed: ${r.fresh.errors.join('; ')}`);
    assert.equal(r.established.failed, 0, `requests on established connections failed: ${r.established.errors.join('; ')}`);
    assert.ok(r.fresh.ok > 50, `new connections made: ${r.fresh.ok}`);
    remove(`rolling-${etp}`);
  });
}
