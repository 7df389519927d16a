// The hitless switch between kube-proxy and xlb (issue 19): kube-proxy-style iptables rules,
// and separately nftables rules, on both nodes; long-lived TCP connections and UDP flows (a
// request every 100 ms each) through a ClusterIP from pods, NodePorts from the client (one
// Service whose endpoints are all on the other node: SNAT to a remote backend) and a
// LoadBalancer IP, opened before the switch and again while xlb is on; xlb switched on, off
// (a drain) and on again on both nodes while new short connections flow all the time. Every
// request answered, no reset, every long-lived flow alive at the end on the backend it began
// with, and netfilter never met a reply of an xlb flow in its Service-address form (which it
// classifies INVALID, or picks up as a connection that later misroutes a reused port). Then a drain across `kill -9` of the agent, resumed by the restarted one, ending in
// the programs' detach.
// Both families (issue 15): the topology and the Services are dual-stack, kube-proxy-style rules
// are installed per family (ip6tables / nft ip6 beside the IPv4 ones) and every set of flows
// holds IPv6 flows beside the IPv4 ones (one long-lived flow per kind), in the same run.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, NODE_IPS, NODE_IPS6, SERVICE_VIP_RANGE, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { cliPath, XlbCluster } from '../helpers/cluster.js';
import { run, sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { flowsIn, type FlowsResult, type FlowsSpec, type FlowTarget } from '../helpers/flows.js';
import { applyBaseline, type Baseline } from '../bench/kubeproxy.js';
import { podEndpoints, specsFor, toManifests, type SimpleService } from '../bench/services.js';

const N1 = NODE_IPS[0];
const N2 = NODE_IPS[1];
const LB = '198.18.100.10';
const CIP = '10.96.0.10';
/** The same addresses in IPv6 (the client routes SERVICE_VIP_RANGE6 to node1 as well). */
const V6 = { N1: NODE_IPS6[0], N2: NODE_IPS6[1], LB: 'fd00:18:100::10', CIP: 'fd00:96::10', FAR: 'fd00:96::11' };
const EVERY_MS = 100;
/** the endpoints' ports (services() below) */
const TARGET_PORTS = [8080, 9000];

interface Status { enabled: boolean; drain?: { flows: number; secondsLeft: number } | null; devices: Array<{ xdpMode: string }>; kernel: { checks: Array<{ name: string; ok: boolean; detail: string }> } }

function services(topo: Topology): SimpleService[] {
  return [
    { namespace: 'default', name: 'web', clusterIP: CIP, clusterIP6: V6.CIP, lbIPs: [LB, V6.LB], endpoints: podEndpoints(topo.pods, () => true),
      ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP', nodePort: 30080 }, { name: 'dns', port: 53, targetPort: 9000, proto: 'UDP', nodePort: 30053 }] },
    // every endpoint on node2: the client's flows through node1 are SNATed to a remote backend
    { namespace: 'default', name: 'far', clusterIP: '10.96.0.11', clusterIP6: V6.FAR, endpoints: podEndpoints(topo.pods, (p) => p.node === 'node2'),
      ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP', nodePort: 30081 }, { name: 'dns', port: 53, targetPort: 9000, proto: 'UDP', nodePort: 30054 }] },
  ];
}

const tcp = (name: string, host: string, port: number): FlowTarget => ({ name, proto: 'TCP', host, port });
const udp = (name: string, host: string, port: number): FlowTarget => ({ name, proto: 'UDP', host, port });
const times = (n: number, t: FlowTarget): FlowTarget[] => Array.from({ length: n }, (_, i) => ({ ...t, name: `${t.name}#${i + 1}` }));

/** What the client and two pods (one per node) keep open and open anew, for `durationMs`: IPv4 and IPv6. */
function traffic(durationMs: number): Array<[string, FlowsSpec]> {
  const v6 = (t: FlowTarget): FlowTarget => ({ ...t, name: `IPv6 ${t.name}` });
  const fromClient: FlowsSpec = {
    durationMs, everyMs: EVERY_MS, newEveryMs: 60,
    long: [...times(2, tcp('NodePort', N1, 30080)), ...times(2, tcp('NodePort SNAT remote', N1, 30081)), ...times(2, tcp('LoadBalancer', LB, 80)),
      udp('NodePort UDP', N1, 30053), udp('NodePort SNAT remote UDP', N1, 30054), udp('LoadBalancer UDP', LB, 53),
      ...[tcp('NodePort', V6.N1, 30080), tcp('NodePort SNAT remote', V6.N1, 30081), tcp('LoadBalancer', V6.LB, 80),
        udp('NodePort UDP', V6.N1, 30053), udp('NodePort SNAT remote UDP', V6.N1, 30054), udp('LoadBalancer UDP', V6.LB, 53)].map(v6)],
    fresh: [tcp('new NodePort', N1, 30080), tcp('new NodePort SNAT remote', N1, 30081), tcp('new LoadBalancer', LB, 80), tcp('new NodePort node2', N2, 30080),
      ...[tcp('new NodePort', V6.N1, 30080), tcp('new NodePort SNAT remote', V6.N1, 30081), tcp('new LoadBalancer', V6.LB, 80), tcp('new NodePort node2', V6.N2, 30080)].map(v6)],
  };
  const fromPod = (): FlowsSpec => ({
    durationMs, everyMs: EVERY_MS, newEveryMs: 120,
    long: [...times(2, tcp('ClusterIP', CIP, 80)), udp('ClusterIP UDP', CIP, 53), ...[tcp('ClusterIP', V6.CIP, 80), udp('ClusterIP UDP', V6.CIP, 53)].map(v6)],
    fresh: [tcp('new ClusterIP', CIP, 80), v6(tcp('new ClusterIP', V6.CIP, 80))],
  });
  return [['client', fromClient], ['app1-1', fromPod()], ['app1-2', fromPod()]];
}

/** Start a set of generators now; each resolves with its source's name and result. */
function open(topo: Topology, durationMs: number): Promise<Array<[string, FlowsResult]>> {
  return Promise.all(traffic(durationMs).map(async ([from, spec]) => [from, await flowsIn(topo.nsFor(from), spec)] as [string, FlowsResult]));
}

/** Every flow answered to the end from one backend, every new connection answered; the totals. */
function check(sets: Array<Array<[string, FlowsResult]>>, minRequests: number): { long: number; alive: number; requests: number; fresh: number; failed: number } {
  const sum = { long: 0, alive: 0, requests: 0, fresh: 0, failed: 0 };
  const bad: string[] = [];
  for (const set of sets) {
    for (const [from, r] of set) {
      for (const l of r.long) {
        sum.long++;
        sum.requests += l.requests;
        sum.failed += l.failed;
        if (l.alive && !l.failed && l.backends.length === 1 && l.requests >= minRequests) sum.alive++;
        else bad.push(`${from} ${l.name}: ${l.requests} requests, ${l.failed} failed, backends ${l.backends.join(',')}${l.error ? `, ${l.error}` : ''}`);
      }
      sum.fresh += r.fresh.ok + r.fresh.failed;
      sum.failed += r.fresh.failed;
      if (r.fresh.failed) bad.push(`${from} new connections: ${r.fresh.failed} failed: ${r.fresh.errors.join('; ')}`);
    }
  }
  assert.deepEqual(bad, [], `broken flows:\n${bad.join('\n')}`);
  return sum;
}

/** The xlb CLI against a node's agent, with room for a loaded machine. */
async function cli(c: XlbCluster, node: string, args: string[]): Promise<string> {
  return (await run(process.execPath, [cliPath(), ...args, '--socket', c.socket(node)], { timeoutMs: 40_000 })).stdout;
}

async function status(c: XlbCluster, node: string): Promise<Status> {
  return JSON.parse(await cli(c, node, ['status', '-o', 'json'])) as Status;
}

/** Netfilter entries whose original direction starts at a Service address and port: replies
 *  xlb had reverse-translated that netfilter met (and classified INVALID or picked up). A reply
 *  goes to a client, never to an endpoint's target port: an entry that does is the request of
 *  a flow xlb SNATed to a node address whose SNAT port happens to be a NodePort's number (the
 *  SNAT range spans 1024-65535), met on the backend's node as netfilter should meet it. */
async function repliesSeenByNetfilter(topo: Topology): Promise<string[]> {
  const service = new Set([N1, N2, LB, CIP, '10.96.0.11', ...Object.values(V6)].flatMap((a) => [80, 53, 30080, 30081, 30053, 30054].map((p) => `${a}:${p}`)));
  // nf_conntrack prints IPv6 addresses in full (fd00:0018:0000:...); compare them compressed
  const canon = (a: string): string => (a.includes(':') ? new URL(`http://[${a}]/`).hostname.slice(1, -1) : a);
  const out: string[] = [];
  for (const n of topo.nodes) {
    const text = (await run('ip', ['netns', 'exec', n.ns.name, 'cat', '/proc/net/nf_conntrack'])).stdout;
    for (const line of text.split('\n')) {
      const src = /\bsrc=(\S+) dst=\S+ sport=(\d+) dport=(\d+)/.exec(line);
      if (src && service.has(`${canon(src[1])}:${src[2]}`) && !TARGET_PORTS.includes(Number(src[3]))) out.push(`${n.name}: ${line}`);
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two nodes with kube-proxy-style rules and an agent each, switched off (kube-proxy serves). */
async function setup(t: TestContext, tag: string, kind: Baseline, agentArgs: string[]): Promise<{ topo: Topology; c: XlbCluster }> {
  await sweepStale(tag);
  const topo = await buildTopology({ tag, apps: ['app1'], podsPerNode: 2, dualStack: true });
  let c: XlbCluster | undefined;
  t.after(async () => {
    await c?.teardown();
    await topo.teardown();
  });
  await startPodServers(topo);
  await topo.setClientRoute(SERVICE_VIP_RANGE, 0);
  const svcs = services(topo);
  for (const n of topo.nodes) await applyBaseline(kind, n.ns, specsFor(svcs, n.name));
  c = new XlbCluster(topo, tag);
  c.writeText('services.yaml', toManifests(svcs, []));
  await c.startAgents(topo.nodes.map((n) => n.name), ['--enabled-by-default', 'false', ...agentArgs]);
  return { topo, c };
}

async function toggleAll(c: XlbCluster, topo: Topology, on: boolean): Promise<void> {
  for (const n of topo.nodes) {
    await cli(c, n.name, ['toggle', on ? 'on' : 'off']).catch((e: Error) => {
      throw new Error(`${e.message}\n${n.name} agent:\n${c.agents.get(n.name)?.log.slice(-15).join('\n')}`);
    });
  }
}

for (const kind of ['iptables', 'nftables'] as Baseline[]) {
  test(`hitless ${kind}: on, off (drain), on again under load: no failed request, no reset, every flow alive`, { timeout: 180_000 }, async (t) => {
    const { topo, c } = await setup(t, `hl${kind[0]}`, kind, []);
    const nfct = (await status(c, 'node1')).kernel.checks.find((x) => x.name === 'netfilter conntrack lookup');
    assert.equal(nfct?.ok, true, `this kernel does the lookup: ${nfct?.detail}`);

    const DUR = 44_000;
    const t0 = Date.now();
    const before = open(topo, DUR);                       // kube-proxy NATs these
    await sleep(4000);
    const mark = (what: string) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await toggleAll(c, topo, true);
    mark('on');
    assert.equal((await status(c, 'node1')).devices[0].xdpMode, 'tc', 'attached');
    await sleep(5000);
    const during = open(topo, DUR - (Date.now() - t0) - 2000); // xlb NATs these
    await sleep(5000);
    mark('second set opened');
    // the second set's flows of both families are xlb's: both in its conntrack table
    const ct = JSON.parse(await cli(c, 'node1', ['maps', 'ct', '-o', 'json'])) as Array<{ name: string; entries: Array<{ key: { saddr: string } }> }>;
    const fams = new Set(ct.find((m) => m.name === 'ct')?.entries.map((e) => (e.key.saddr.includes(':') ? 6 : 4)));
    assert.deepEqual([...fams].sort(), [4, 6], 'xlb tracks flows of both families');
    await toggleAll(c, topo, false);
    mark('off (draining)');
    const s = await status(c, 'node1');
    assert.equal(s.enabled, false);
    assert.ok(s.drain && s.drain.flows > 0 && s.drain.secondsLeft > 540 && s.drain.secondsLeft <= 600, `draining: ${JSON.stringify(s.drain)}`);
    assert.match(await cli(c, 'node1', ['status']), /^Enabled:\s+no \(toggle\), draining: \d+ flows, \d+ s left$/m);
    assert.equal(s.devices[0].xdpMode, 'tc', 'still attached while draining');
    await sleep(8000);
    await toggleAll(c, topo, true);                       // back on mid-drain
    mark('on again');
    const on = await status(c, 'node1');
    assert.ok(on.enabled && !on.drain, `on again: ${JSON.stringify(on.drain)}`);
    const results = [await before, await during];
    const sum = check(results, 50);
    assert.deepEqual(await repliesSeenByNetfilter(topo), [], 'no xlb reply reached netfilter in its Service-address form');
    t.diagnostic(`${kind}: ${sum.alive}/${sum.long} long-lived flows alive, ${sum.requests} requests on them, ${sum.fresh} new connections, ${sum.failed} failed`);
  });
}

test('hitless iptables: kill -9 of the agent mid-drain; the restarted agent resumes the drain and detaches at its deadline', { timeout: 180_000 }, async (t) => {
  const DRAIN_S = 30;
  const args = ['--drain-timeout', `${DRAIN_S}s`];
  const { topo, c } = await setup(t, 'hlk', 'iptables', args);
  const DUR = 62_000;
  const t0 = Date.now();
  const before = open(topo, DUR);
  await sleep(3000);
  await toggleAll(c, topo, true);
  await sleep(3000);
  const during = open(topo, 14_000);                      // xlb's flows, closed before the deadline
  await sleep(4000);
  await toggleAll(c, topo, false);
  const offAt = Date.now();
  const s0 = await status(c, 'node1');
  assert.ok(s0.drain && s0.drain.flows > 0, `draining: ${JSON.stringify(s0.drain)}`);
  await c.stopAgent('node1', 'SIGKILL');
  await sleep(2000);                                      // the pinned programs drain alone
  await c.startAgent('node1', ['--enabled-by-default', 'false', ...args]);
  const s1 = await status(c, 'node1');
  const left = DRAIN_S - (Date.now() - offAt) / 1000;
  assert.ok(s1.drain && s1.drain.secondsLeft <= Math.ceil(left) + 1 && s1.drain.secondsLeft >= left - 8, `resumed with the old deadline (~${left.toFixed(1)} s left): ${JSON.stringify(s1.drain)}`);
  assert.equal(s1.devices[0].xdpMode, 'tc', 'still attached after the restart');
  const sum = check([await during], 20);                 // 14 s, across the drain and the kill
  await eventually('node1 detached once its drain is over', async () => {
    const s = await status(c, 'node1');
    return !s.drain && s.devices[0].xdpMode === 'detached';
  }, (DRAIN_S + 10) * 1000);
  const drained = (Date.now() - offAt) / 1000;
  const all = check([await before], 50);
  t.diagnostic(`kill -9 mid-drain: ${sum.alive + all.alive}/${sum.long + all.long} long-lived flows alive, ${sum.requests + all.requests} requests on them, ${sum.fresh + all.fresh} new connections, ${sum.failed + all.failed} failed; drain over within ${drained.toFixed(0)} s (deadline ${DRAIN_S} s), run ${((Date.now() - t0) / 1000).toFixed(0)} s`);
});
