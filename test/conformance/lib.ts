// Shared by the conformance suites: one two-node topology (three pods per node, one agent per
// node, manifests source) per file, Service and EndpointSlice objects as the API server and the
// EndpointSlice controller would write them, and convergence checks on the wire.
//
// Pods: app1-1, -3, -5 live on node1; app1-2, -4, -6 on node2. Each serves HTTP on 8080
// ("Hello, <pod>", GET /ip answers the peer address) and UDP echo on 9000 ("<pod>:<payload>").
import { buildTopology, SERVICE_VIP_RANGE, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, UDP_PORT, type KObj } from '../helpers/cluster.js';
import { sweepStale, run } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { answersFrom, type Answers } from '../helpers/wire.js';

export { HTTP_PORT, UDP_PORT };

export interface Env {
  topo: Topology;
  c: XlbCluster;
  pods: TopoPod[];
  /** pod by its number (1-based: app1-1 is pod(1)) */
  pod(n: number): TopoPod;
  node1: string;
  node2: string;
  teardown(): Promise<void>;
}

export async function setup(tag: string, agentArgs: string[] = []): Promise<Env> {
  await sweepStale(tag);
  const topo = await buildTopology({ tag, apps: ['app1'], podsPerNode: 3 });
  try {
    await startPodServers(topo);
    const c = new XlbCluster(topo, tag);
    const args = ['--external-ip-cidrs', SERVICE_VIP_RANGE, ...agentArgs];
    await c.startAgents(['node1', 'node2'], args);
    return {
      topo, c, pods: topo.pods, pod: (n) => topo.pods[n - 1], node1: topo.nodes[0].ip, node2: topo.nodes[1].ip,
      teardown: async () => { await c.teardown(); await topo.teardown(); },
    };
  } catch (e) {
    await topo.teardown();
    throw e;
  }
}

export interface Port { name: string; port: number; protocol?: 'TCP' | 'UDP'; targetPort?: number | string; nodePort?: number }
export interface Ep { pod: TopoPod; ready?: boolean; serving?: boolean; terminating?: boolean; zone?: string; forZones?: string[]; forNodes?: string[] }

/** A Service object; `spec` is merged over the defaults (ClusterIP, the ports given). */
export function svc(name: string, clusterIP: string | null, ports: Port[], spec: KObj = {}, meta: KObj = {}): KObj {
  const base: KObj = {
    type: 'ClusterIP',
    ports: ports.map((p) => ({
      name: p.name, port: p.port, protocol: p.protocol ?? 'TCP',
      targetPort: p.targetPort ?? (p.protocol === 'UDP' ? UDP_PORT : HTTP_PORT), ...(p.nodePort ? { nodePort: p.nodePort } : {}),
    })),
  };
  if (clusterIP) Object.assign(base, { clusterIP, clusterIPs: [clusterIP] });
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', ...meta }, spec: { ...base, ...spec } };
}

/** An EndpointSlice of `service` for the given ports (slice port = the pods' port). */
export function slice(service: string, suffix: string, ports: Array<{ name: string; port?: number; protocol?: 'TCP' | 'UDP' }>, eps: Ep[]): KObj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `${service}-${suffix}`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: eps.map((e) => {
      const ep: KObj = {
        addresses: [e.pod.ip], nodeName: e.pod.node,
        targetRef: { kind: 'Pod', name: e.pod.name, namespace: 'default' },
        conditions: { ready: e.ready ?? true, serving: e.serving ?? (e.ready ?? true), terminating: e.terminating ?? false },
      };
      if (e.zone) ep.zone = e.zone;
      if (e.forZones || e.forNodes) {
        ep.hints = {
          ...(e.forZones ? { forZones: e.forZones.map((name) => ({ name })) } : {}),
          ...(e.forNodes ? { forNodes: e.forNodes.map((name) => ({ name })) } : {}),
        };
      }
      return ep;
    }),
    ports: ports.map((p) => ({ name: p.name, protocol: p.protocol ?? 'TCP', port: p.port ?? (p.protocol === 'UDP' ? UDP_PORT : HTTP_PORT) })),
  };
}

/** The slice for every port of a Service object, the usual case. */
export function sliceFor(service: KObj, eps: Ep[]): KObj {
  const ports = (service.spec.ports as KObj[]).map((p) => ({ name: p.name as string, protocol: p.protocol as 'TCP' | 'UDP', port: typeof p.targetPort === 'number' ? p.targetPort : undefined }));
  return slice(service.metadata.name, 'abc12', ports, eps);
}

/** Until a run of requests is answered only by `allowed` (and, with `all`, by each of them). */
export async function converges(env: Env, from: string, url: string, allowed: TopoPod[], o: { all?: boolean; n?: number; timeoutMs?: number } = {}): Promise<Answers> {
  let last: Answers | undefined;
  const ok = new Set(allowed.map((p) => p.name));
  await eventually(`${url} from ${from} answered only by ${[...ok].join(', ')}${o.all ? ' (each of them)' : ''}`, async () => {
    last = await answersFrom(env.topo, from, url, o.n ?? 8, 1000);
    if (last.failed || [...last.names.keys()].some((n) => !ok.has(n))) return false;
    return !o.all || ok.size === last.names.size;
  }, o.timeoutMs ?? 10_000);
  return last!;
}

/** Until `url` from `from` gets no HTTP answer at all on `n` connections (made at once: each
 *  unanswered one waits out its whole timeout, and one after the other they took n times as long). */
export async function unanswered(env: Env, from: string, url: string, n = 3, timeoutMs = 10_000): Promise<void> {
  await eventually(`${url} from ${from} not answered`, async () => {
    const r = await Promise.all(Array.from({ length: n }, () => env.topo.curl(from, url, { timeoutMs: 700 })));
    return r.every((x) => x.status === 0);
  }, timeoutMs);
}

/** Until UDP datagrams to addr:port from `from` are echoed only by `allowed`. */
export async function udpConverges(env: Env, from: string, addr: string, port: number, allowed: TopoPod[], timeoutMs = 10_000): Promise<void> {
  const ok = new Set(allowed.map((p) => p.name));
  await eventually(`UDP ${addr}:${port} from ${from} echoed by ${[...ok].join(', ')}`, async () => {
    // four datagrams, each from its own socket (source port), in one process
    const r = await env.topo.udpEchoEach(from, addr, port, ['x', 'x', 'x', 'x'], 700);
    return r.every((x) => x !== null && ok.has(x.split(':')[0]));
  }, timeoutMs);
}

// A UDP client with one fixed source port (as `nc -p` in Kubernetes' conntrack tests, or a DNS
// resolver reusing its socket): sends a datagram every intervalMs for durationMs and prints
// [[msSinceStart, replyOrNull], ...] as JSON, one entry per datagram sent.
const UDP_STEADY = `
import dgram from 'node:dgram';
const [addr, port, sport, durationMs, intervalMs] = process.argv.slice(1).map((x, i) => i ? Number(x) : x);
const s = dgram.createSocket('udp4');
const t0 = performance.now();
const out = [];
let seq = 0;
s.on('message', (m) => { const [, n] = m.toString().split(':'); const e = out[Number(n)]; if (e && e[1] === null) e[1] = m.toString().split(':')[0]; });
s.bind(sport, () => {
  const tick = setInterval(() => {
    if (performance.now() - t0 > durationMs) { clearInterval(tick); setTimeout(() => { console.log(JSON.stringify(out)); s.close(); }, 300); return; }
    out.push([Math.round(performance.now() - t0), null]);
    s.send(String(seq++), port, addr);
  }, intervalMs);
});
`;

export interface UdpRun { proc: Promise<Array<[number, string | null]>> }

/** Start a fixed-source-port UDP client in `from`; resolves with who answered each datagram. */
export function udpSteady(env: Env, from: string, addr: string, port: number, sport: number, durationMs: number, intervalMs = 100): UdpRun {
  const ns = env.topo.nsFor(from);
  const proc = run('ip', ['netns', 'exec', ns.name, process.execPath, '--input-type=module', '-e', UDP_STEADY, addr, String(port), String(sport), String(durationMs), String(intervalMs)],
    { timeoutMs: durationMs + 10_000 }).then((r) => JSON.parse(r.stdout.trim()) as Array<[number, string | null]>);
  return { proc };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
