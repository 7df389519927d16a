// Kubernetes' "[sig-network] Networking" tests (test/e2e/network/networking.go) that exercise
// the node proxy: the Granular Checks for Services from pods and from endpoints, endpoint and
// nodePort updates, UDP NodePorts, client IP affinity, large requests, and kube-proxy's URLs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers/e2e.js';
import { converges, setup, sliceFor, sleep, svc, udpConverges, unanswered, type Env, type Ep } from './lib.js';

let env: Env;
before(async () => { env = await setup('conf-net'); });
after(async () => { await env?.teardown(); });

const apply = (file: string, ...objs: Record<string, any>[]) => env.c.write(`${file}.yaml`, objs);
const remove = (file: string) => env.c.remove(`${file}.yaml`);
const ports = (np: number) => [
  { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: np },
  { name: 'udp', port: 90, targetPort: 9000, protocol: 'UDP', nodePort: np + 1 },
];
const all = (): Ep[] => env.pods.map((pod) => ({ pod }));

test('should check kube-proxy urls (/healthz on the healthz port, /proxyMode on the metrics port)', async () => {
  const hz = await env.topo.curl('node1', 'http://127.0.0.1:10256/healthz', { timeoutMs: 1000 });
  assert.equal(hz.status, 200, hz.body);
  const mode = await env.topo.curl('node1', 'http://127.0.0.1:10249/proxyMode', { timeoutMs: 1000 });
  assert.equal(mode.status, 200);
  assert.equal(mode.body.trim(), 'xlb');
});

test('Granular Checks: Services should function for pod-Service: http and udp (ClusterIP and NodePort)', async () => {
  const s = svc('node-port-service', '10.96.62.1', [], { type: 'NodePort', ports: ports(30660) });
  apply('pod-svc', s, sliceFor(s, all()));
  await converges(env, 'app1-1', 'http://10.96.62.1/', env.pods, { all: true, n: 30 });
  await converges(env, 'app1-1', `http://${env.node2}:30660/`, env.pods);
  await udpConverges(env, 'app1-1', '10.96.62.1', 90, env.pods);
  await udpConverges(env, 'app1-1', env.node2, 30661, env.pods);
  remove('pod-svc');
});

test('Granular Checks: Services should function for endpoint-Service: http and udp', async () => {
  const s = svc('endpoint-service', '10.96.62.2', [], { type: 'NodePort', ports: ports(30662) });
  apply('ep-svc', s, sliceFor(s, all()));
  // From one of the Service's own endpoints: ClusterIP (itself included) and both NodePorts.
  await converges(env, 'app1-2', 'http://10.96.62.2/', env.pods, { all: true, n: 30 });
  await converges(env, 'app1-2', `http://${env.node1}:30662/`, env.pods);
  await udpConverges(env, 'app1-2', '10.96.62.2', 90, env.pods);
  await udpConverges(env, 'app1-2', env.node1, 30663, env.pods);
  remove('ep-svc');
});

test('Granular Checks: Services should update endpoints: http and udp', async () => {
  const s = svc('update-eps', '10.96.62.3', [], { type: 'NodePort', ports: ports(30664) });
  apply('upd-eps', s, sliceFor(s, all()));
  await converges(env, 'app1-1', 'http://10.96.62.3/', env.pods);
  const rest = env.pods.filter((p) => p.name !== 'app1-2');
  apply('upd-eps', s, sliceFor(s, rest.map((pod) => ({ pod }))));
  await converges(env, 'app1-1', 'http://10.96.62.3/', rest, { n: 20 });
  await udpConverges(env, 'app1-1', '10.96.62.3', 90, rest);
  remove('upd-eps');
});

test('Granular Checks: Services should update nodePort: http and udp', async () => {
  const before = svc('update-np', '10.96.62.4', [], { type: 'NodePort', ports: ports(30666) });
  apply('upd-np', before, sliceFor(before, all()));
  await converges(env, 'client', `http://${env.node1}:30666/`, env.pods);
  await udpConverges(env, 'client', env.node1, 30667, env.pods);
  const after2 = svc('update-np', '10.96.62.4', [], { type: 'NodePort', ports: ports(30668) });
  apply('upd-np', after2, sliceFor(after2, all()));
  await converges(env, 'client', `http://${env.node1}:30668/`, env.pods);
  await udpConverges(env, 'client', env.node1, 30669, env.pods);
  await unanswered(env, 'client', `http://${env.node1}:30666/`);
  assert.equal(await env.topo.udpEcho('client', env.node1, 30667, 'x', 700), null, 'the old UDP nodePort is not served');
  remove('upd-np');
});

test('Granular Checks: Services should support basic nodePort: udp functionality', async () => {
  const s = svc('udp-np', '10.96.62.5', [], { type: 'NodePort', ports: ports(30670) });
  apply('udp-np', s, sliceFor(s, [{ pod: env.pod(2) }]));
  for (const node of [env.node1, env.node2]) await udpConverges(env, 'client', node, 30671, [env.pod(2)]);
  remove('udp-np');
});

test('Granular Checks: Services should function for client IP based session affinity: http and udp', async () => {
  const s = svc('affinity-net', '10.96.62.6', [], { type: 'NodePort', ports: ports(30672), sessionAffinity: 'ClientIP' });
  apply('aff-net', s, sliceFor(s, all()));
  const a = await converges(env, 'app1-1', 'http://10.96.62.6/', env.pods, { n: 12 });
  assert.equal(a.names.size, 1, `one pod answers every HTTP request: ${[...a.names.keys()]}`);
  const who = new Set<string>();
  const replies = await env.topo.udpEchoEach('app1-1', '10.96.62.6', 90, Array.from({ length: 10 }, (_, i) => String(i)), 1000);
  for (const r of replies) {
    assert.ok(r, 'every datagram answered');
    who.add(r.split(':')[0]);
  }
  assert.equal(who.size, 1, `one pod answers every datagram (new source port each): ${[...who]}`);
  remove('aff-net');
});

test('Granular Checks: Services should be able to handle large requests: http and udp', async () => {
  const s = svc('large', '10.96.62.7', [], { ports: ports(0).map(({ nodePort, ...p }) => p) });
  apply('large', s, sliceFor(s, [{ pod: env.pod(2) }, { pod: env.pod(4) }]));
  await converges(env, 'app1-1', 'http://10.96.62.7/', [env.pod(2), env.pod(4)]);
  // HTTP: a 1 MB request body through the ClusterIP.
  const big = await env.topo.nsFor('app1-1').exec('sh', ['-c', 'head -c 1048576 /dev/zero | curl -s -m 10 -o /dev/null -w "%{http_code}" --data-binary @- http://10.96.62.7/'], { timeoutMs: 15_000 });
  assert.equal(big.stdout.trim(), '200');
  // UDP: a 2000-byte datagram, fragmented both ways (the echo is longer than the request).
  const payload = 'u'.repeat(2000);
  await eventually('a 2000-byte datagram is echoed whole through the ClusterIP', async () => {
    const r = await env.topo.udpEcho('app1-1', '10.96.62.7', 90, payload, 1500);
    return !!r && r.endsWith(`:${payload}`);
  });
  remove('large');
});

test('Granular Checks: Services should function after the Service changes type and back (stale frontends removed)', async () => {
  // service.go's type-change tests for ClusterIP <-> NodePort <-> LoadBalancer, on the wire.
  const ip = '10.96.62.8';
  const eps = [{ pod: env.pod(1) }];
  const cipSvc = svc('type-flip', ip, [{ name: 'http', port: 80 }]);
  const npSvc = svc('type-flip', ip, [], { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30674 }] });
  const lbSvc = { ...svc('type-flip', ip, [], { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30674 }] }), status: { loadBalancer: { ingress: [{ ip: '198.18.100.66' }] } } };
  apply('flip', cipSvc, sliceFor(cipSvc, eps));
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  apply('flip', npSvc, sliceFor(npSvc, eps));
  await converges(env, 'client', `http://${env.node1}:30674/`, [env.pod(1)]);
  apply('flip', lbSvc, sliceFor(lbSvc, eps));
  await converges(env, 'client', 'http://198.18.100.66/', [env.pod(1)]);
  apply('flip', npSvc, sliceFor(npSvc, eps));
  await unanswered(env, 'client', 'http://198.18.100.66/');
  await converges(env, 'client', `http://${env.node1}:30674/`, [env.pod(1)]);
  apply('flip', cipSvc, sliceFor(cipSvc, eps));
  await unanswered(env, 'client', `http://${env.node1}:30674/`);
  await converges(env, 'app1-3', `http://${ip}/`, [env.pod(1)]);
  await sleep(100);
  remove('flip');
});
