// Kubernetes' "[sig-network] Conntrack" tests (test/e2e/network/conntrack.go), and the
// LoadBalancer variants of them in loadbalancer.go: a UDP client with one fixed source port
// keeps talking while the Service's endpoint changes; the datagrams after the change must
// reach the endpoint that is there now.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, sliceFor, sleep, svc, udpSteady, type Env, type Ep } from './lib.js';

let env: Env;
before(async () => { env = await setup('conf-ct'); });
after(async () => { await env?.teardown(); });

const apply = (file: string, ...objs: Record<string, any>[]) => env.c.write(`${file}.yaml`, objs);

/**
 * Datagrams every 100 ms from `from` (fixed source port) to addr:port for 9 s; at 3 s the
 * endpoints become `after`. Before: answered by `before` (when given); from 2 s after the
 * change on: every datagram answered, by `afterPod` only.
 */
async function cycle(o: { from: string; addr: string; port: number; sport: number; file: string; svc: Record<string, any>; before: Ep[]; after: Ep[]; beforePod?: string; afterPod: string }): Promise<void> {
  apply(o.file, o.svc, sliceFor(o.svc, o.before));
  await sleep(1500);
  const run = udpSteady(env, o.from, o.addr, o.port, o.sport, 9000);
  await sleep(3000);
  apply(o.file, o.svc, sliceFor(o.svc, o.after));
  const got = await run.proc;
  const early = got.filter(([t]) => t < 2800).map(([, who]) => who);
  const late = got.filter(([t]) => t > 5500);
  if (o.beforePod) assert.ok(early.includes(o.beforePod), `before the change ${o.beforePod} answers: ${JSON.stringify(early)}`);
  assert.ok(late.length >= 20, `datagrams sent late: ${late.length}`);
  assert.deepEqual([...new Set(late.map(([, who]) => who))], [o.afterPod],
    `every datagram from 2.5 s after the change on is answered by ${o.afterPod}: ${JSON.stringify(late)}`);
  env.c.remove(`${o.file}.yaml`);
}

const udpPort = (port: number, nodePort?: number) => ({ name: 'udp', port, targetPort: 9000, protocol: 'UDP', ...(nodePort ? { nodePort } : {}) });

test('should be able to preserve UDP traffic when server pod cycles for a NodePort service', async () => {
  const s = svc('svc-udp', '10.96.61.1', [], { type: 'NodePort', ports: [udpPort(80, 30650)] });
  await cycle({ from: 'client', addr: env.node1, port: 30650, sport: 12345, file: 'ct-np', svc: s,
    before: [{ pod: env.pod(2) }], after: [{ pod: env.pod(4) }], beforePod: 'app1-2', afterPod: 'app1-4' });
});

test('should be able to preserve UDP traffic when server pod cycles for a ClusterIP service', async () => {
  const s = svc('svc-udp-cip', '10.96.61.2', [], { ports: [udpPort(80)] });
  await cycle({ from: 'app1-1', addr: '10.96.61.2', port: 80, sport: 12346, file: 'ct-cip', svc: s,
    before: [{ pod: env.pod(2) }], after: [{ pod: env.pod(4) }], beforePod: 'app1-2', afterPod: 'app1-4' });
});

test('should be able to preserve UDP traffic when initial unready endpoints get ready', async () => {
  const s = svc('svc-udp-unready', '10.96.61.3', [], { ports: [udpPort(80)] });
  await cycle({ from: 'app1-1', addr: '10.96.61.3', port: 80, sport: 12347, file: 'ct-unready', svc: s,
    before: [{ pod: env.pod(2), ready: false, serving: false }], after: [{ pod: env.pod(2) }], afterPod: 'app1-2' });
});

test('LoadBalancers: should be able to preserve UDP traffic when server pod cycles for a LoadBalancer service on different nodes', async () => {
  const s = svc('lb-udp-diff', '10.96.61.4', [], { type: 'LoadBalancer', ports: [udpPort(80, 30651)] });
  s.status = { loadBalancer: { ingress: [{ ip: '198.18.100.64' }] } };
  await cycle({ from: 'client', addr: '198.18.100.64', port: 80, sport: 12348, file: 'ct-lb-diff', svc: s,
    before: [{ pod: env.pod(2) }], after: [{ pod: env.pod(4) }], beforePod: 'app1-2', afterPod: 'app1-4' });
});

test('LoadBalancers: should be able to preserve UDP traffic when server pod cycles for a LoadBalancer service on the same nodes', async () => {
  const s = svc('lb-udp-same', '10.96.61.5', [], { type: 'LoadBalancer', ports: [udpPort(80, 30652)] });
  s.status = { loadBalancer: { ingress: [{ ip: '198.18.100.65' }] } };
  await cycle({ from: 'client', addr: '198.18.100.65', port: 80, sport: 12349, file: 'ct-lb-same', svc: s,
    before: [{ pod: env.pod(1) }], after: [{ pod: env.pod(3) }], beforePod: 'app1-1', afterPod: 'app1-3' });
});
