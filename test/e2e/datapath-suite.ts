// The datapath end to end (issue 3 §8), in one IP family (issue 15 item 4: datapath.test.ts
// runs it in IPv4, datapath6.test.ts in IPv6 on a dual-stack topology): one two-node topology
// with three pods per node and one agent per node; every Service feature checked with real
// traffic (curl, UDP datagrams, keep-alive connections) from the client outside the cluster
// or from pods. Services are added and changed between subtests; each subtest uses its own
// addresses and ports. An IPv6 run uses single-stack IPv6 Services and IPv6 EndpointSlices.
//
// Pods: app1-1, -3, -5 live on node1; app1-2, -4, -6 on node2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, CLIENT_IP, CLIENT_IP6, httpUrl, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, UDP_PORT, type SvcDef, type EpDef } from '../helpers/cluster.js';
import { steadyIn } from '../helpers/steady.js';
import { run, sweepStale, type Netns } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { answerNames, answersFrom, assertOnly, probe, servingFrom, type Answers } from '../helpers/wire.js';

/** The addresses a run uses, in its family. */
interface Plan {
  tag: string;
  /** ClusterIP number n */
  cip(n: number): string;
  /** LoadBalancer IP / externalIP number n, inside the client's route to node1 */
  vip(n: number): string;
  /** the lower half of the VIP range: --external-ip-cidrs */
  externalIPCidr: string;
  client: string;
  /** a range that holds the client, and two that do not */
  clientRange: string;
  otherRanges: string[];
}

const PLANS: Record<4 | 6, Plan> = {
  4: {
    tag: 'dp', cip: (n) => `10.96.2.${n}`, vip: (n) => `198.18.100.${n}`, externalIPCidr: '198.18.100.0/25',
    client: CLIENT_IP, clientRange: '198.18.0.0/28', otherRanges: ['198.18.0.64/26', '203.0.113.0/24'],
  },
  // the same numbers as hex groups: fd00:18:100::200 lies outside the /121 as .200 outside the /25
  6: {
    tag: 'dp6', cip: (n) => `fd00:96::2:${n}`, vip: (n) => `fd00:18:100::${n}`, externalIPCidr: 'fd00:18:100::/121',
    client: CLIENT_IP6, clientRange: 'fd00:18::/124', otherRanges: ['fd00:18::40/122', '2001:db8::/32'],
  },
};

/** Register the datapath suite for one family (one topology and two agents for the file). */
export function datapathSuite(family: 4 | 6): void {
const P = PLANS[family];
const TAG = P.tag;
const EXTERNAL_IP_CIDR = P.externalIPCidr;
const cip = P.cip;
const vip = P.vip;
const url = httpUrl;
let topo: Topology;
let c: XlbCluster;
let pods: TopoPod[];
let node1: string;
let node2: string;

const pod = (n: number): TopoPod => pods[n - 1];
const onNode = (node: string): TopoPod[] => pods.filter((p) => p.node === node);
const eps = (list: TopoPod[], cond: Omit<EpDef, 'pod'> = {}): EpDef[] => list.map((p) => ({ pod: p, ...cond }));
const http = (name: string, port: number, nodePort?: number) => ({ name, port, targetPort: HTTP_PORT, ...(nodePort ? { nodePort } : {}) });
const udp = (name: string, port: number, nodePort?: number) => ({ name, port, targetPort: UDP_PORT, protocol: 'UDP' as const, ...(nodePort ? { nodePort } : {}) });

const answers = (from: string, url: string, n: number, timeoutMs = 1500): Promise<Answers> => answersFrom(topo, from, url, n, timeoutMs);
const names = answerNames;
/** Wait until a freshly applied Service answers `url` from `from` (both agents programmed it). */
const serving = (from: string, url: string): Promise<void> => servingFrom(topo, from, url);

/**
 * Packets the node's stack forwarded from eth0 back out of eth0 (an nftables counter in the
 * forward hook, added on first use). The device hook forwards remote flows itself (FIB +
 * redirect, in XDP or at tc), so they never reach this hook; through the stack they would.
 */
async function stackHairpins(ns: Netns): Promise<number> {
  const list = () => ns.exec('nft', ['-j', 'list', 'chain', 'inet', 'xlbt', 'hairpins']);
  let r = await list().catch(() => null);
  if (!r) {
    await ns.exec('nft', ['add', 'table', 'inet', 'xlbt']);
    await ns.exec('nft', ['add', 'chain', 'inet', 'xlbt', 'hairpins', '{ type filter hook forward priority 0; policy accept; }']);
    await ns.exec('nft', ['add', 'rule', 'inet', 'xlbt', 'hairpins', 'iifname', 'eth0', 'oifname', 'eth0', 'counter']);
    r = await list();
  }
  const rule = (JSON.parse(r.stdout) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> })
    .nftables.find((x) => x.rule)?.rule;
  return rule?.expr.find((e) => e.counter)?.counter?.packets ?? 0;
}

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 3, dualStack: family === 6 });
  pods = topo.pods;
  [node1, node2] = topo.nodes.map((n) => (family === 6 ? n.ip6! : n.ip));
  await startPodServers(topo);
  c = new XlbCluster(topo, TAG);
  // externalIPs are served only inside --external-ip-cidrs: the lower half of the VIP range.
  await c.startAgents(['node1', 'node2'], ['--external-ip-cidrs', EXTERNAL_IP_CIDR]);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

test('device mode auto: the nodes\' eth0 (a veth) runs the datapath at tc ingress', async () => {
  for (const n of ['node1', 'node2']) {
    const st = JSON.parse(await c.cli(n, ['status', '-o', 'json'])) as { devices: Array<{ name: string; xdpMode: string; progId: number }> };
    const eth0 = st.devices.find((d) => d.name === 'eth0');
    assert.equal(eth0?.xdpMode, 'tc', `${n}: ${JSON.stringify(st.devices)}`);
    assert.ok(eth0.progId > 0, `${n}: a program on eth0`);
    const link = JSON.parse((await run('ip', ['-n', topo.nsFor(n).name, '-j', 'link', 'show', 'eth0'])).stdout) as Array<{ xdp?: unknown }>;
    assert.equal(link[0].xdp, undefined, `${n}: no XDP program on eth0`);
  }
});

test('ClusterIP from a pod: every request answered, answers rotate across pods', async () => {
  const svc: SvcDef = { name: 'cip', clusterIP: cip(1), ports: [http('http', 80)] };
  c.apply(svc, eps(pods));
  await serving('app1-1', url(cip(1)));
  const a = await answers('app1-1', url(cip(1)), 16);
  assertOnly(a, pods, 'ClusterIP');
  assert.ok(a.names.size >= 3, `answers rotate: ${names(a)}`);
});

test('NodePort on both node addresses from the client', async () => {
  const svc: SvcDef = { name: 'np', type: 'NodePort', clusterIP: cip(2), ports: [http('http', 80, 30201)] };
  c.apply(svc, eps(pods));
  for (const ip of [node1, node2]) {
    await serving('client', url(ip, 30201));
    const a = await answers('client', url(ip, 30201), 12);
    assertOnly(a, pods, `NodePort on ${ip}`);
    assert.ok(a.names.size >= 2, `NodePort on ${ip} rotates: ${names(a)}`);
  }
});

test('local and remote backends are both reached through one node', async () => {
  // the Service from the previous subtest: all six pods, three per node
  for (const [i, ip] of [node1, node2].entries()) {
    const before = await stackHairpins(topo.nodes[i].ns);
    const a = await answers('client', url(ip, 30201), 24);
    assertOnly(a, pods, `NodePort on ${ip}`);
    const nodes = new Set(names(a).map((n) => pods.find((p) => p.name === n)!.node));
    assert.deepEqual([...nodes].sort(), ['node1', 'node2'], `answers through ${ip} come from pods of both nodes: ${names(a)}`);
    // which path the remote flows took: the device hook forwarded them (FIB + redirect), not the stack
    assert.equal((await stackHairpins(topo.nodes[i].ns)) - before, 0, `${ip}: remote flows forwarded by the device hook, none by the stack`);
  }
});

test('LoadBalancer IP from the client', async () => {
  const svc: SvcDef = { name: 'lb', type: 'LoadBalancer', clusterIP: cip(3), lbIP: vip(3), ports: [http('http', 80, 30203)] };
  c.apply(svc, eps(pods));
  await serving('client', url(vip(3)));
  const a = await answers('client', url(vip(3)), 12);
  assertOnly(a, pods, 'LoadBalancer IP');
  assert.ok(a.names.size >= 2, `LoadBalancer IP rotates: ${names(a)}`);
});

test('externalIP from the client', async () => {
  const svc: SvcDef = { name: 'extip', clusterIP: cip(4), externalIPs: [vip(4)], ports: [http('http', 8000)] };
  c.apply(svc, eps(pods));
  await serving('client', url(vip(4), 8000));
  const a = await answers('client', url(vip(4), 8000), 12);
  assertOnly(a, pods, 'externalIP');
  // an externalIP is a Service address only on the Service's port
  const other = await topo.curl('client', url(vip(4), 8001), { timeoutMs: 500 });
  assert.equal(other.status, 0, 'another port of the externalIP is not served');
});

test('externalIPs guard: an address outside --external-ip-cidrs is not served and is named in xlb services; the rest of the Service is', async () => {
  const svc: SvcDef = { name: 'extguard', clusterIP: cip(40), externalIPs: [vip(5), vip(200)], ports: [http('http', 8000)] };
  c.apply(svc, eps(pods));
  await serving('client', url(vip(5), 8000));
  assertOnly(await answers('client', url(vip(5), 8000), 6), pods, 'allowed externalIP');
  assertOnly(await answers('app1-2', url(cip(40), 8000), 6), pods, 'ClusterIP of the guarded Service');
  const refused = await topo.curl('client', url(vip(200), 8000), { timeoutMs: 700 });
  assert.equal(refused.status, 0, 'the refused externalIP is not served');
  const listed = await c.cli('node1', ['services']);
  assert.ok(listed.includes(`default/extguard: externalIP ${vip(200)} refused: not inside --external-ip-cidrs (${EXTERNAL_IP_CIDR})`), listed);
  c.remove('extguard.yaml');
});

test('sessionAffinity ClientIP: every connection from one client lands on one pod', async () => {
  const svc: SvcDef = { name: 'aff', type: 'NodePort', clusterIP: cip(5), affinitySec: 60, ports: [http('http', 80, 30205)] };
  c.apply(svc, eps(pods));
  await serving('client', url(node1, 30205));
  const ext = await answers('client', url(node1, 30205), 15);
  assertOnly(ext, pods, 'affinity via NodePort');
  assert.equal(ext.names.size, 1, `one pod for the client via NodePort: ${names(ext)}`);
  const int = await answers('app1-2', url(cip(5)), 15);
  assertOnly(int, pods, 'affinity via ClusterIP');
  assert.equal(int.names.size, 1, `one pod for a pod via ClusterIP: ${names(int)}`);
});

test('externalTrafficPolicy Local: client address kept, only the node\'s own pods answer', async () => {
  const svc: SvcDef = { name: 'etp', type: 'NodePort', clusterIP: cip(6), eTP: 'Local', ports: [http('http', 80, 30206)] };
  c.apply(svc, eps(pods));
  for (const [ip, node] of [[node1, 'node1'], [node2, 'node2']] as const) {
    await serving('client', url(ip, 30206));
    const a = await answers('client', url(ip, 30206), 12);
    assertOnly(a, onNode(node), `eTP Local via ${node}`);
    assert.ok(a.names.size >= 2, `eTP Local via ${node} still balances over its pods: ${names(a)}`);
    for (let i = 0; i < 4; i++) {
      const r = await topo.curl('client', url(ip, 30206, '/ip'));
      assert.equal(r.status, 200, r.error);
      assert.equal(r.body.trim(), P.client, `the pod sees the client's own address via ${node}`);
    }
  }
  // Cluster policy on the same Service: a remote pod sees the node's address (SNAT)
  c.apply({ ...svc, eTP: 'Cluster' }, eps([pod(2)]));
  await eventually('eTP Cluster: remote pod answers through node1', async () =>
    (await topo.curl('client', url(node1, 30206, '/ip'), { timeoutMs: 500 })).body.trim() === node1);
});

test('internalTrafficPolicy Local: a pod only reaches pods on its own node', async () => {
  const svc: SvcDef = { name: 'itp', clusterIP: cip(7), iTP: 'Local', ports: [http('http', 80)] };
  c.apply(svc, eps(pods));
  await serving('app1-1', url(cip(7)));
  await serving('app1-2', url(cip(7)));
  const from1 = await answers('app1-1', url(cip(7)), 12);
  assertOnly(from1, onNode('node1'), 'iTP Local from a node1 pod');
  const from2 = await answers('app1-2', url(cip(7)), 12);
  assertOnly(from2, onNode('node2'), 'iTP Local from a node2 pod');
  assert.ok(from1.names.size >= 2 && from2.names.size >= 2, `balanced within the node: ${names(from1)} / ${names(from2)}`);
});

test('terminating fallback: serving+terminating endpoints answer when none is ready; a ready one takes new flows', async () => {
  const svc: SvcDef = { name: 'term', type: 'NodePort', clusterIP: cip(8), ports: [http('http', 80, 30208)] };
  const draining = [pod(1), pod(2)];
  c.apply(svc, [
    ...eps(draining, { ready: false, serving: true, terminating: true }),
    { pod: pod(3), ready: false, serving: false, terminating: true },   // shutting down: never used
  ]);
  await serving('app1-4', url(cip(8)));
  await serving('client', url(node1, 30208));
  const int = await answers('app1-4', url(cip(8)), 12);
  assertOnly(int, draining, 'fallback via ClusterIP');
  const ext = await answers('client', url(node1, 30208), 12);
  assertOnly(ext, draining, 'fallback via NodePort');
  assert.equal(new Set([...names(int), ...names(ext)]).size, 2, 'both serving+terminating pods are used');

  c.apply(svc, [...eps(draining, { ready: false, serving: true, terminating: true }), { pod: pod(6) }]);
  await eventually('only the ready pod answers new flows', async () => {
    const a = await answers('client', url(node1, 30208), 6, 800);
    return a.failed === 0 && names(a).join() === pod(6).name;
  });
  const after = await answers('app1-4', url(cip(8)), 10);
  assertOnly(after, [pod(6)], 'after a ready endpoint returned, via ClusterIP');
});

test('no endpoints: TCP refused and UDP port unreachable at once, from outside and from a pod', async () => {
  const svc: SvcDef = { name: 'empty', type: 'LoadBalancer', clusterIP: cip(9), lbIP: vip(9), ports: [http('http', 80, 30209), udp('dns', 53, 30209)] };
  // programmed with an endpoint first, so "refused" below is the datapath's answer
  c.apply(svc, eps([pod(1)]));
  await serving('client', url(vip(9)));
  c.apply(svc, []);
  await eventually('the empty Service refuses', async () => (await probe('tcp', topo.client.ns, vip(9), 80, 500)).code === 'ECONNREFUSED');
  const targets: Array<[Netns, string, number, number]> = [
    [topo.client.ns, vip(9), 80, 53], [topo.client.ns, node1, 30209, 30209],
    [topo.client.ns, node2, 30209, 30209], [pod(4).ns, cip(9), 80, 53],
  ];
  for (const [ns, addr, tcpPort, udpPort] of targets) {
    for (const [kind, port] of [['tcp', tcpPort], ['udp', udpPort]] as const) {
      const r = await probe(kind, ns, addr, port, 2000);
      assert.deepEqual([r.result, r.code], ['error', 'ECONNREFUSED'], `${kind} ${addr}:${port} from ${ns.name}: refused (${JSON.stringify(r)})`);
      assert.ok(r.ms < 1000, `${kind} ${addr}:${port}: refused at once, not after a timeout (${r.ms} ms)`);
    }
  }
  // with an endpoint back, the same probes are answered
  c.apply(svc, eps([pod(2)]));
  await eventually('answered again', async () => (await probe('udp', topo.client.ns, vip(9), 53, 500)).result === 'reply');
  assert.equal((await probe('tcp', topo.client.ns, node1, 30209)).result, 'connected');
});

test('loadBalancerSourceRanges: allowed clients reach the LB IP and NodePort, others do not', async () => {
  const svc: SvcDef = { name: 'ranges', type: 'LoadBalancer', clusterIP: cip(10), lbIP: vip(10), sourceRanges: [P.clientRange], ports: [http('http', 80, 30210)] };
  c.apply(svc, eps(pods));
  const urls = [url(vip(10)), url(node1, 30210), url(node2, 30210)];
  for (const u of urls) await serving('client', u);
  for (const u of urls) assertOnly(await answers('client', u, 4), pods, `allowed client via ${u}`);

  c.apply({ ...svc, sourceRanges: P.otherRanges }, eps(pods));
  await eventually('the client is no longer allowed', async () => (await topo.curl('client', urls[0], { timeoutMs: 400 })).status === 0);
  for (const u of urls) {
    const a = await answers('client', u, 3, 600);
    assert.equal(a.failed, 3, `denied client via ${u}: answered by ${names(a)}`);
  }
  // the ranges guard external entry points only: pods still use the ClusterIP
  assertOnly(await answers('app1-1', url(cip(10)), 4), pods, 'ClusterIP from a pod');
});

test('hairpin: a pod reaching itself through its ClusterIP gets its own answer', async () => {
  const svc: SvcDef = { name: 'self', clusterIP: cip(11), ports: [http('http', 80), udp('echo', 9000)] };
  c.apply(svc, eps([pod(3)]));
  await serving('app1-3', url(cip(11)));
  const a = await answers('app1-3', url(cip(11)), 6);
  assertOnly(a, [pod(3)], 'hairpin');
  assert.equal(await topo.udpEcho('app1-3', cip(11), 9000, 'me'), `${pod(3).name}:me`, 'hairpin UDP');
});

test('backend removal: established keep-alive connections keep working, new ones avoid the removed pods', async () => {
  const svc: SvcDef = { name: 'rm', type: 'NodePort', clusterIP: cip(12), ports: [http('http', 80, 30212)] };
  const keep = pod(1);
  const removed = [pod(2), pod(3)];       // one remote (SNAT), one local to node1
  c.apply(svc, eps([keep, ...removed]));
  const np = url(node1, 30212);
  await serving('client', np);
  // The removal lands once the 8 keep-alive connections are up (spread over the three pods),
  // early in the load; loadEnd is a lower bound of the load's end (it starts after the spawn).
  const LOAD_MS = 3000;
  const loadEnd = Date.now() + LOAD_MS;
  let connected = (): void => undefined;
  const up = new Promise<void>((r) => { connected = r; });
  const load = steadyIn(topo.client.ns, node1, 30212, LOAD_MS, 8, () => connected());
  await Promise.race([up, load]);
  c.apply(svc, eps([keep]));
  // when the removal showed: the start of the first of 6 answers in a row from the kept pod
  // (not the end of the sixth: each curl takes ~100 ms on a loaded machine)
  let streak = 0;
  let programmedAt = 0;
  while (streak < 6 && Date.now() < loadEnd + 3000) {
    const t0 = Date.now();
    const r = await topo.curl('client', np, { timeoutMs: 800 });
    streak = r.status === 200 && r.body.trim() === `Hello, ${keep.name}` ? streak + 1 : 0;
    if (streak === 1) programmedAt = t0;
  }
  const r = await load;
  assert.equal(streak, 6, 'new connections reach only the kept pod');
  assert.ok(programmedAt < loadEnd, `the removal took effect while the keep-alive load ran (${programmedAt - loadEnd} ms after its end)`);
  assert.equal(r.established.failed, 0, `established connections failed: ${r.established.errors.join('; ')}`);
  assert.ok(removed.some((p) => (r.established.answers[p.name] ?? 0) > 0),
    `some keep-alive connection was on a removed pod: ${JSON.stringify(r.established.answers)}`);
  assert.ok(r.established.ok >= 8 * 15, `keep-alive requests went on for the whole load: ${r.established.ok}`);
  assertOnly(await answers('client', np, 10), [keep], 'new connections after the removal');
});

test('UDP through ClusterIP and NodePort', async () => {
  const svc: SvcDef = { name: 'echo', type: 'NodePort', clusterIP: cip(13), ports: [udp('echo', 9000, 30213)] };
  c.apply(svc, eps(pods));
  const podNames = new Set(pods.map((p) => p.name));
  const targets: Array<[string, string, number]> = [['app1-5', cip(13), 9000], ['client', node1, 30213], ['client', node2, 30213]];
  for (const [from, addr, port] of targets) {
    await eventually(`UDP ${addr}:${port} from ${from}`, async () => (await topo.udpEcho(from, addr, port, 'warm', 500)) !== null);
    const seen = new Set<string>();
    // eight datagrams, each from a new socket, one after the other (in one process)
    const replies = await topo.udpEchoEach(from, addr, port, Array.from({ length: 8 }, (_, i) => `m${i}`), 1500);
    for (let i = 0; i < 8; i++) {
      const reply = replies[i];
      assert.ok(reply, `UDP ${addr}:${port} from ${from}: datagram ${i} answered`);
      const [name, payload] = reply.split(':');
      assert.equal(payload, `m${i}`, 'the echo carries our payload');
      assert.ok(podNames.has(name), `answered by a pod of the Service: ${name}`);
      seen.add(name);
    }
    assert.ok(seen.size >= 2, `UDP ${addr}:${port} from ${from} rotates across pods: ${[...seen]}`);
  }
});
}
