// Socket-level load balancing end to end (--socket-lb, --cgroup), in one IP family (issue 15:
// socklb.test.ts runs it in IPv4, socklb6.test.ts in IPv6 on a dual-stack topology): processes
// in a node's own network namespace (where the agent runs, so its netns cookie is that node's)
// reach ClusterIPs, NodePorts on the node address (and, IPv4 only, 127.0.0.1) and LB IPs; UDP
// replies and getpeername show the Service address; no endpoints fails connect() at once. The
// hooks go on a child cgroup this file creates (never the machine's root cgroup); clients run
// inside it, except the one that checks a process outside is untouched. The IPv6 run makes
// `web` dual-stack and also reaches it over IPv4 and as a v4-mapped address (::ffff:a.b.c.d)
// from a dual-stack socket, which connect6 sees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, helperScript, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, UDP_PORT, type SvcDef } from '../helpers/cluster.js';
import { sweepStale, type Netns } from '../helpers/netns.js';
import { TestCgroup } from '../helpers/cgroup.js';
import { eventually } from '../helpers/e2e.js';
import type { SockResult } from '../helpers/nsclient.js';
import type { SteadyResult } from '../helpers/steady.js';

/** The addresses a run uses, in its family. */
interface Plan {
  tag: string;
  /** ClusterIP number n */
  cip(n: number): string;
  lbIP: string;
  /** IPv4 loopback serves NodePorts (kube-proxy's route_localnet); IPv6 ::1 does not */
  loopback: string;
  loopbackNodePort: boolean;
}

const PLANS: Record<4 | 6, Plan> = {
  4: { tag: 'sock', cip: (n) => `10.96.16.${n}`, lbIP: '198.18.100.16', loopback: '127.0.0.1', loopbackNodePort: true },
  6: { tag: 'sock6', cip: (n) => `fd00:96::16:${n}`, lbIP: 'fd00:18:100::16', loopback: '::1', loopbackNodePort: false },
};

/** Register the socket LB suite for one family (one topology and one agent for the file). */
export function sockLbSuite(family: 4 | 6): void {
const P = PLANS[family];
let topo: Topology;
let c: XlbCluster;
let cg: TestCgroup;
let node1: Netns;
let node1Ip: string;
let local: TopoPod[];

const CIP = P.cip(10);
const CIP4 = '10.96.16.10';
const ports = [
  { name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30616 },
  { name: 'dns', port: 53, targetPort: UDP_PORT, protocol: 'UDP' as const, nodePort: 30617 },
];
// IPv6: dual-stack, so one Service is reached over both families (and v4-mapped) at once
const web: SvcDef = family === 4
  ? { name: 'web', type: 'LoadBalancer', clusterIP: CIP, lbIP: P.lbIP, ports }
  : { name: 'web', type: 'LoadBalancer', clusterIP: CIP4, clusterIP6: CIP, lbIP6: P.lbIP, ports };
const sticky: SvcDef = { name: 'sticky', clusterIP: P.cip(20), affinitySec: 60, ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
const dns: SvcDef = { name: 'dns', clusterIP: P.cip(40), ports: [{ name: 'dns', port: 53, targetPort: UDP_PORT, protocol: 'UDP' }] };
const empty: SvcDef = { name: 'empty', clusterIP: P.cip(30), ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };

type Kind = 'tcp' | 'udp-from' | 'udp-connected';

/** One socket from `ns`, inside the test cgroup unless outside is set. */
async function sock(kind: Kind, addr: string, port: number, o: { ns?: Netns; outside?: boolean; timeoutMs?: number } = {}): Promise<SockResult> {
  const ns = o.ns ?? node1;
  const args = [helperScript('nsclient.js'), kind, addr, String(port), 'p', String(o.timeoutMs ?? 2000)];
  const r = o.outside ? await ns.exec(process.execPath, args, { timeoutMs: 10_000 }) : await cg.exec(ns, process.execPath, args, { timeoutMs: 10_000 });
  return JSON.parse(r.stdout.trim()) as SockResult;
}

/** Not translated: an error (a timeout, or no route for an IPv6 Service address), no reply. */
function untranslated(r: SockResult, what: string): void {
  assert.ok(r.reply === undefined && r.error !== undefined && r.error !== 'ECONNREFUSED', `${what}: ${JSON.stringify(r)}`);
}

const podOf = (reply: string | undefined): string => (reply ?? '').replace(/^Hello, /, '').split(':')[0]!;
const podNames = (): Set<string> => new Set(topo.pods.map((p) => p.name));
const podIp = (p: TopoPod): string => (family === 6 ? p.ip6! : p.ip);

async function agent(mode: 'host' | 'all'): Promise<void> {
  await c.startAgent('node1', ['--socket-lb', mode, '--cgroup', cg.path]);
}

async function status(): Promise<{ checks: Array<{ name: string; ok: boolean; detail: string }> }> {
  const s = JSON.parse(await c.cli('node1', ['status', '-o', 'json'])) as { kernel: { checks: Array<{ name: string; ok: boolean; detail: string }> } };
  return { checks: s.kernel.checks };
}

/** CT entries the per-packet path made for flows from saddr to daddr. */
async function ctFlows(saddr: string, daddr: string): Promise<number> {
  const maps = JSON.parse(await c.cli('node1', ['maps', '-o', 'json'])) as Array<{ name: string; entries: Array<{ key: Record<string, unknown> }> }>;
  const ct = maps.find((m) => m.name === 'ct')?.entries ?? [];
  return ct.filter((e) => e.key.saddr === saddr && e.key.daddr === daddr).length;
}

before(async () => {
  await sweepStale(P.tag);
  topo = await buildTopology({ tag: P.tag, apps: ['app1'], podsPerNode: 2, dualStack: family === 6 });
  await startPodServers(topo);
  node1 = topo.nodes[0].ns;
  node1Ip = family === 6 ? topo.nodes[0].ip6! : topo.nodes[0].ip;
  local = topo.pods.filter((p) => p.node === 'node1');
  cg = await TestCgroup.create(topo.set.prefix);
  c = new XlbCluster(topo, 'sock');
  const all = topo.pods.map((pod) => ({ pod }));
  c.apply(web, all);
  c.apply(sticky, all);
  c.apply(empty, []);
});

after(async () => {
  await c?.teardown();
  await cg?.remove();
  await topo?.teardown();
});

test('without socket LB a process in the node namespace cannot reach a ClusterIP (the gap #16 closes)', async () => {
  await c.startAgent('node1'); // the helper's default: --socket-lb off
  untranslated(await sock('tcp', CIP, 80, { timeoutMs: 1000 }), 'ClusterIP without socket LB');
  await c.stopAgent('node1');
});

test(`host: TCP to ClusterIP, NodePort on the node address${P.loopbackNodePort ? ' and 127.0.0.1' : ''}, LB IP; getpeername shows the address dialled`, async () => {
  await agent('host');
  await eventually('ClusterIP answers from the node', async () => (await sock('tcp', CIP, 80, { timeoutMs: 1000 })).reply !== undefined, 10_000);
  const loop = P.loopbackNodePort ? [[P.loopback, 30616] as const] : [];
  for (const [addr, port] of [[CIP, 80], ...loop, [node1Ip, 30616], [P.lbIP, 80]] as const) {
    const r = await sock('tcp', addr, port);
    assert.ok(podNames().has(podOf(r.reply)), `${addr}:${port}: ${JSON.stringify(r)}`);
    assert.equal(r.peer, `${addr}:${port}`, `getpeername for ${addr}:${port}`);
  }
});

test('host: UDP (unconnected and connected) to ClusterIP and NodePort; the reply comes from the Service address', async () => {
  const loop = P.loopbackNodePort ? [[P.loopback, 30617] as const] : [];
  for (const [addr, port] of [[CIP, 53], ...loop, [node1Ip, 30617]] as const) {
    const u = await sock('udp-from', addr, port);
    assert.ok(podNames().has(podOf(u.reply)), `${addr}:${port}: ${JSON.stringify(u)}`);
    assert.equal(u.from, `${addr}:${port}`, `recvfrom source for ${addr}:${port}`);
  }
  const cu = await sock('udp-connected', CIP, 53);
  assert.ok(podNames().has(podOf(cu.reply)), JSON.stringify(cu));
  assert.equal(cu.peer, `${CIP}:53`, 'getpeername of a connected UDP socket');
  assert.equal(cu.from, `${CIP}:53`, 'recvfrom of a connected UDP socket');
});

test(`host: ${P.loopbackNodePort ? '' : 'no '}NodePort on ${P.loopback}, as kube-proxy`, async () => {
  const r = await sock('tcp', P.loopback, 30616, { timeoutMs: 1000 });
  if (P.loopbackNodePort) assert.ok(podNames().has(podOf(r.reply)), JSON.stringify(r));
  else assert.equal(r.reply, undefined, `::1 is no NodePort address (ip6tables has no route_localnet): ${JSON.stringify(r)}`);
});

if (family === 6) {
  test('host, dual stack: web over IPv4 and IPv6 at once; a dual-stack socket to ::ffff:a.b.c.d reaches the IPv4 Service', async () => {
    const v4 = topo.nodes[0].ip;
    const targets = [[CIP4, 80], [CIP, 80], [v4, 30616], [node1Ip, 30616], [`::ffff:${CIP4}`, 80], [`::ffff:${v4}`, 30616], ['::ffff:127.0.0.1', 30616]] as const;
    const rs = await Promise.all(targets.map(([addr, port]) => sock('tcp', addr, port)));
    rs.forEach((r, i) => {
      const [addr, port] = targets[i]!;
      assert.ok(podNames().has(podOf(r.reply)), `${addr}:${port}: ${JSON.stringify(r)}`);
      assert.equal(r.peer, `${addr}:${port}`, `getpeername for ${addr}:${port}`);
    });
    const u = await sock('udp-from', `::ffff:${CIP4}`, 53);
    assert.ok(podNames().has(podOf(u.reply)), JSON.stringify(u));
    assert.equal(u.from, `::ffff:${CIP4}:53`, 'recvfrom source of a v4-mapped datagram');
    const cu = await sock('udp-connected', `::ffff:${CIP4}`, 53);
    assert.ok(podNames().has(podOf(cu.reply)), JSON.stringify(cu));
    assert.equal(cu.peer, `::ffff:${CIP4}:53`, 'getpeername of a v4-mapped connected UDP socket');
  });
}

test('host: no endpoints: connect() fails with ECONNREFUSED at once', async () => {
  const r = await sock('tcp', empty.clusterIP, 80);
  assert.equal(r.error, 'ECONNREFUSED', JSON.stringify(r));
  assert.ok(r.ms < 500, `refused after ${r.ms} ms`);
});

test('host: loadBalancerSourceRanges meet the node\'s address: inside a range connects, outside fails with EPERM', async () => {
  const bits = family === 6 ? 128 : 32;
  const vip = (n: number) => (family === 6 ? `fd00:18:100::${n}` : `198.18.100.${n}`);
  const ranged = (n: number, ranges: string[]): SvcDef => ({
    name: `ranged${n}`, type: 'LoadBalancer', clusterIP: P.cip(50 + n), lbIP: vip(50 + n), sourceRanges: ranges,
    ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }],
  });
  const other = family === 6 ? '2001:db8::/32' : '203.0.113.0/24';
  c.apply(ranged(1, [`${node1Ip}/${bits}`]), topo.pods.map((pod) => ({ pod })));
  c.apply(ranged(2, [other]), topo.pods.map((pod) => ({ pod })));
  await eventually('the allowed LB IP answers', async () => (await sock('tcp', vip(51), 80, { timeoutMs: 1000 })).reply !== undefined, 10_000);
  const denied = await sock('tcp', vip(52), 80);
  assert.equal(denied.error, 'EPERM', `outside the ranges: ${JSON.stringify(denied)}`);
});

test('host: sessionAffinity ClientIP keeps the node on one backend; without it the choice spreads', async () => {
  const stickyPods = new Set<string>();
  for (let i = 0; i < 8; i++) stickyPods.add(podOf((await sock('tcp', sticky.clusterIP, 80)).reply));
  assert.equal(stickyPods.size, 1, `affinity answered by ${[...stickyPods].join(', ')}`);
  const spread = new Set<string>();
  for (let i = 0; i < 12 && spread.size < 2; i++) spread.add(podOf((await sock('tcp', CIP, 80)).reply));
  assert.ok(spread.size >= 2, `no affinity, 12 connections all to ${[...spread].join(', ')}`);
});

test('a process outside the cgroup is untouched', async () => {
  untranslated(await sock('tcp', CIP, 80, { outside: true, timeoutMs: 1000 }), 'outside the cgroup');
});

test('host: a pod socket in the cgroup keeps the per-packet path (conntrack entries made)', async () => {
  const pod = local[0]!;
  const before = await ctFlows(podIp(pod), CIP);
  const r = await sock('tcp', CIP, 80, { ns: pod.ns });
  assert.ok(podNames().has(podOf(r.reply)), JSON.stringify(r));
  assert.ok(await ctFlows(podIp(pod), CIP) > before, 'pod -> ClusterIP went through xlb_tc');
});

test('status shows the mode, the cgroup and the kernel check', async () => {
  const { checks } = await status();
  const kernel = checks.find((x) => x.name === 'socket LB hooks (kernel)');
  assert.ok(kernel?.ok, JSON.stringify(kernel));
  const mode = checks.find((x) => x.name === 'socket LB host');
  assert.ok(mode?.ok, JSON.stringify(mode));
  assert.ok(mode.detail.includes(cg.path), mode.detail);
  assert.match(mode.detail, /connect4 link \d+, sendmsg4 link \d+, recvmsg4 link \d+, getpeername4 link \d+, connect6 link \d+, sendmsg6 link \d+, recvmsg6 link \d+, getpeername6 link \d+$/);
});

test('toggle off detaches the socket hooks, on attaches them again', async () => {
  await c.cli('node1', ['toggle', 'off']);
  untranslated(await sock('tcp', CIP, 80, { timeoutMs: 1000 }), 'toggled off');
  await c.cli('node1', ['toggle', 'on']);
  const on = await sock('tcp', CIP, 80);
  assert.ok(podNames().has(podOf(on.reply)), `toggled on: ${JSON.stringify(on)}`);
});

test('agent kill -9 and restart under load with socket LB on: 0 failed requests, links updated in place', async () => {
  const links = async () => (await status()).checks.find((x) => x.name === 'socket LB host')!.detail.match(/link \d+/g)!.join(',');
  const before = await links();
  const script = new URL('../helpers/steady.js', import.meta.url).pathname;
  const load = cg.exec(node1, process.execPath, [script, CIP, '80', '9000', '4'], { timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 1500));
  await c.stopAgent('node1', 'SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  await agent('host');
  const res = JSON.parse((await load).stdout.trim().split('\n').pop()!) as SteadyResult;
  assert.equal(res.fresh.failed, 0, `new connections failed: ${res.fresh.errors.join('; ')}`);
  assert.equal(res.established.failed, 0, `requests on open connections failed: ${res.established.errors.join('; ')}`);
  assert.ok(res.fresh.ok > 20 && res.established.ok > 20, JSON.stringify(res));
  assert.equal(await links(), before, 'the pinned links were updated, not re-created');
});

test('a connected UDP socket whose backend is removed is destroyed (bpf_sock_destroy); a new one reaches a live backend', async () => {
  const [a, b] = [topo.pods[0]!, topo.pods[1]!];
  c.apply(dns, [{ pod: a }]);
  await eventually('dns answers from a', async () => podOf((await sock('udp-connected', dns.clusterIP, 53, { timeoutMs: 500 })).reply) === a.name, 10_000);
  const args = [helperScript('nsclient.js'), 'udp-hold', dns.clusterIP, '53', 'q', '2000', '6000'];
  const held = cg.exec(node1, process.execPath, args, { timeoutMs: 20_000 });
  await new Promise((r) => setTimeout(r, 1000));
  c.apply(dns, [{ pod: b }]); // a is removed (its pod still answers: only xlb can stop the socket)
  const [first, second] = JSON.parse((await held).stdout.trim()) as SockResult[];
  assert.equal(podOf(first!.reply), a.name, `first exchange: ${JSON.stringify(first)}`);
  assert.equal(second!.reply, undefined, `the socket still reached the removed backend: ${JSON.stringify(second)}`);
  assert.ok(second!.error, JSON.stringify(second));
  const fresh = await sock('udp-connected', dns.clusterIP, 53);
  assert.equal(podOf(fresh.reply), b.name, `a new socket: ${JSON.stringify(fresh)}`);
  const check = (await status()).checks.find((x) => x.name === 'socket LB: connected UDP, backend removed');
  assert.match(check?.detail ?? '', /^destroyed within/, JSON.stringify(check));
});

test('all: a pod socket is translated at connect() (no per-packet NAT: no conntrack entry)', async () => {
  await c.stopAgent('node1');
  await agent('all');
  const pod = local[1]!;
  const before = await ctFlows(podIp(pod), CIP);
  for (let i = 0; i < 3; i++) {
    const r = await sock('tcp', CIP, 80, { ns: pod.ns });
    assert.ok(podNames().has(podOf(r.reply)), JSON.stringify(r));
    assert.equal(r.peer, `${CIP}:80`, 'getpeername in the pod');
    const u = await sock('udp-from', CIP, 53, { ns: pod.ns });
    assert.equal(u.from, `${CIP}:53`, `UDP reply source in the pod: ${JSON.stringify(u)}`);
  }
  assert.equal(await ctFlows(podIp(pod), CIP), before, 'the pod\'s Service traffic made no conntrack entry');
  const mode = (await status()).checks.find((x) => x.name === 'socket LB all');
  assert.ok(mode?.ok && /every socket/.test(mode.detail), JSON.stringify(mode));
});
}
