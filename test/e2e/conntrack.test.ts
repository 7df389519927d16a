// What Kubernetes' own conntrack tests (test/e2e/network/conntrack.go) and large-datagram
// checks assert, on the two-node topology with one agent per node: a UDP client that keeps
// its source port follows its endpoint out of the Service at once (kube-proxy deletes such
// conntrack entries), while an established TCP connection to a removed endpoint goes on; a
// UDP datagram too large for the MTU is translated in every fragment, both ways; a Service
// whose endpoint is the node's own address answers pods on that node.
//
// Both families (issue 15): the topology is dual-stack and the Services are dual-stack, each
// family fed by its own EndpointSlice of the same pods; every check runs in IPv4 and IPv6 at
// once (the flows of the two families side by side), so the file takes about as long as in
// IPv4 alone.
//
// Pods: app1-1, app1-3 on node1; app1-2, app1-4 on node2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addrOf, buildTopology, FAMILIES, httpUrl, type IpFamily, type Topology, type TopoPod } from '../helpers/topology.js';
import { helperScript } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { cliPath, XlbCluster, HTTP_PORT, UDP_PORT, type SvcDef, type EpDef } from '../helpers/cluster.js';
import { steadyIn } from '../helpers/steady.js';
import { run, sweepStale, waitForOutput, type Netns } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';

const TAG = 'ct';
let topo: Topology;
let c: XlbCluster;

const pod = (n: number): TopoPod => topo.pods[n - 1];
const node1 = (f: IpFamily): string => addrOf(topo.nodes[0], f);
/** Run `fn` for both families at once. */
const both = <T>(fn: (f: IpFamily) => Promise<T>): Promise<T[]> => Promise.all(FAMILIES.map(fn));

before(async () => {
  await sweepStale(TAG);
  topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 2, dualStack: true });
  await startPodServers(topo);
  c = new XlbCluster(topo, TAG);
  await c.startAgents(['node1', 'node2']);
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

interface Datagram { sentMs: number; reply: string | null; from?: string }

/** nsclient.js udp-steady: datagram i every everyMs from one fixed source port; onAnswered once the first reply came. */
function udpSteady(ns: Netns, addr: string, port: number, sport: number, durationMs: number, everyMs = 100, pad = 0, onAnswered?: () => void): Promise<Datagram[]> {
  const proc = ns.spawn(process.execPath, [helperScript('nsclient.js'), 'udp-steady', addr, String(port), String(sport), String(everyMs), String(durationMs), String(pad)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (onAnswered && /^answered$/m.test(out)) { onAnswered(); onAnswered = undefined; }
  });
  const kill = setTimeout(() => proc.kill('SIGKILL'), durationMs + 10_000);
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => {
      clearTimeout(kill);
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('[')) resolve(JSON.parse(last) as Datagram[]);
      else reject(new Error(`udp-steady ${addr}:${port} from ${ns.name} exited ${code}: ${out.trim()}`));
    });
  });
}

const who = (d: Datagram): string | undefined => d.reply?.split(':')[0];

/** Fresh flows (a new source port each) are answered only by `p`: the change is programmed. */
async function onlyNewFlowsTo(ns: Netns, addr: string, port: number, p: TopoPod): Promise<void> {
  await eventually(`new flows to ${addr}:${port} reach only ${p.name}`, async () => {
    // four new flows at once; a client that did not even start in time (a loaded machine) is a miss, not an error
    const replies = await Promise.all([0, 1, 2, 3].map(() => topo.udpEcho(ns, addr, port, 'probe', 500).catch(() => null)));
    return replies.every((r) => r?.split(':')[0] === p.name);
  }, 10_000);
}

const udpSvc: SvcDef = {
  name: 'dns', type: 'LoadBalancer', clusterIP: '10.96.3.1', clusterIP6: 'fd00:96::3:1', lbIP: '198.18.100.31', lbIP6: 'fd00:18:100::31',
  ports: [{ name: 'dns', port: 53, targetPort: UDP_PORT, protocol: 'UDP', nodePort: 30301 }],
};

type Frontend = [kind: string, from: Netns, addr: string, port: number];
const cipOf = (d: SvcDef, f: IpFamily): string => (f === 6 ? d.clusterIP6! : d.clusterIP);
const lbOf = (d: SvcDef, f: IpFamily): string => (f === 6 ? d.lbIP6! : d.lbIP!);

/** Each frontend kind of `d` in family f: ClusterIP from a pod, NodePort and LB IP from the client. */
const frontendsOf = (d: SvcDef, f: IpFamily): Frontend[] => [
  [`IPv${f} ClusterIP`, pod(3).ns, cipOf(d, f), d.ports[0].port],
  [`IPv${f} NodePort`, topo.client.ns, node1(f), d.ports[0].nodePort!],
  [`IPv${f} LoadBalancer IP`, topo.client.ns, lbOf(d, f), d.ports[0].port],
];

/**
 * A steady UDP flow (fixed source port, a datagram every 100 ms) starts on `gone`, one per
 * family side by side; `steps` then take `gone` out of the Service in favour of `stays`. Once
 * new flows reach only `stays`, the steady flows' following datagrams must too, answered from
 * the address they sent to.
 */
async function followsEndpoint(what: string, steps: EpDef[][], gone: TopoPod, stays: TopoPod, sport: number): Promise<void> {
  for (let k = 0; k < 3; k++) {
    const fes = FAMILIES.map((f) => frontendsOf(udpSvc, f)[k]);
    c.apply(udpSvc, [{ pod: gone }]);
    await Promise.all(fes.map(([, ns, addr, port]) => onlyNewFlowsTo(ns, addr, port, gone)));
    const DURATION = 9000;
    const t0 = Date.now();
    let answered = 0;
    let allAnswered = (): void => undefined;
    const started = new Promise<void>((r) => { allAnswered = r; });
    const flows = fes.map(([, ns, addr, port]) => udpSteady(ns, addr, port, sport, DURATION, 100, 0, () => { if (++answered === fes.length) allAnswered(); }));
    for (const f of flows) f.catch(() => undefined); // awaited below; an earlier failure must not leave them unhandled
    // the change comes once every flow has its first answer (a client process can take a second to start on a loaded machine)
    await Promise.race([started, Promise.all(flows)]);
    await new Promise((r) => setTimeout(r, 300));
    for (const s of steps) {
      c.apply(udpSvc, s);
      await c.settle(300);
    }
    // when each family's change showed in new flows
    const programmed = await Promise.all(fes.map(async ([, ns, addr, port]) => {
      await onlyNewFlowsTo(ns, addr, port, stays);
      return Date.now() - t0;
    }));
    for (const [i, [kind, , addr, port]] of fes.entries()) {
      const programmedMs = programmed[i];
      const sent = await flows[i];
      assert.ok(programmedMs < DURATION - 2000, `${kind}: the change took effect early enough to check the flow (${programmedMs} ms)`);
      assert.ok(sent.slice(0, 5).some((d) => who(d) === gone.name), `${kind} (${what}): the flow started on ${gone.name}: ${JSON.stringify(sent.slice(0, 5))}`);
      const tail = sent.filter((d) => d.sentMs > programmedMs + 300);
      assert.ok(tail.length >= 10, `${kind}: ${tail.length} datagrams after the change`);
      for (const d of tail) {
        assert.equal(who(d), stays.name, `${kind} (${what}): datagram sent at ${d.sentMs} ms (change in effect at ${programmedMs} ms) answered by ${who(d) ?? 'nobody'}`);
        assert.equal(d.from, `${addr}:${port}`, `${kind}: answered from the Service address`);
      }
    }
  }
}

test('UDP flow with a fixed source port: the next datagrams after its endpoint leaves the slice reach the remaining one', async () => {
  // pod 2 (node2: remote for node1, SNAT for NodePort/LB) leaves while it keeps running; pod 1 stays
  await followsEndpoint('endpoint removed', [[{ pod: pod(2) }, { pod: pod(1) }], [{ pod: pod(1) }]], pod(2), pod(1), 41001);
});

test('UDP flow with a fixed source port: its pod replaced (terminating, not serving, then gone), the flow moves to the new pod', async () => {
  await followsEndpoint('pod replaced', [
    [{ pod: pod(1), ready: false, serving: false, terminating: true }, { pod: pod(4) }],
    [{ pod: pod(4) }],
  ], pod(1), pod(4), 41002);
});

test('TCP: established connections to a removed (then terminating) endpoint go on', async () => {
  const svc: SvcDef = { name: 'web', type: 'LoadBalancer', clusterIP: '10.96.3.2', clusterIP6: 'fd00:96::3:2', lbIP: '198.18.100.32', lbIP6: 'fd00:18:100::32',
    ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30302 }] };
  c.apply(svc, [{ pod: pod(2) }]);
  for (const f of FAMILIES) {
    await eventually(`IPv${f} LB IP answers`, async () => (await topo.curl('client', httpUrl(lbOf(svc, f)), { timeoutMs: 500 })).status === 200);
  }
  // the connections open while pod 2 is the only endpoint (the helper starts a process first)
  const loads = FAMILIES.map((f) => steadyIn(topo.client.ns, lbOf(svc, f), 80, 4000, 3));
  await new Promise((r) => setTimeout(r, 1500));
  c.apply(svc, [{ pod: pod(2), ready: false, serving: false, terminating: true }, { pod: pod(1) }]);
  await c.settle(300);
  c.apply(svc, [{ pod: pod(1) }]);
  for (const [i, f] of FAMILIES.entries()) {
    const r = await loads[i];
    assert.equal(r.established.failed, 0, `IPv${f}: established connections failed: ${r.established.errors.join('; ')}`);
    assert.ok((r.established.answers[pod(2).name] ?? 0) >= 3 * 15, `IPv${f}: keep-alive requests stayed on the removed pod: ${JSON.stringify(r.established.answers)}`);
    assert.equal(Object.keys(r.established.answers).join(), pod(2).name, `IPv${f}: no keep-alive request moved`);
    assert.ok((r.fresh.answers[pod(1).name] ?? 0) > 0, `IPv${f}: the removal took effect while the connections ran: ${JSON.stringify(r.fresh.answers)}`);
  }
});

test('a 2000-byte UDP request and its reply are fragmented and translated whole, both ways: ClusterIP, NodePort, LB IP; local and remote endpoint', async () => {
  const svc: SvcDef = { ...udpSvc, name: 'big', clusterIP: '10.96.3.3', clusterIP6: 'fd00:96::3:3', lbIP: '198.18.100.33', lbIP6: 'fd00:18:100::33',
    ports: [{ ...udpSvc.ports[0], nodePort: 30303 }] };
  // pod 1 runs on node1 (its reply passes its veth), pod 2 on node2 (its reply enters node1's device)
  for (const backend of [pod(1), pod(2)]) {
    c.apply(svc, [{ pod: backend }]);
    await both(async (f) => {
      for (const [kind, ns, addr, port] of frontendsOf(svc, f)) {
        await onlyNewFlowsTo(ns, addr, port, backend);
        // one flow that starts fragmented, and one that exists before any fragment appears
        const fresh = 42000 + port % 1000 + (backend === pod(1) ? 0 : 500) + (f === 6 ? 200 : 0);
        await udpSteady(ns, addr, port, fresh + 100, 300, 150);
        // 650 ms: three or four datagrams each, at least two when a loaded machine fires the timer late
        const sent = [...await udpSteady(ns, addr, port, fresh, 650, 150, 2000), ...await udpSteady(ns, addr, port, fresh + 100, 650, 150, 2000)];
        for (const d of sent) {
          assert.equal(d.from, `${addr}:${port}`, `${kind} via ${backend.name}: datagram sent at ${d.sentMs} ms answered whole from the Service address (${d.reply === null ? 'no reply' : d.reply.length + ' bytes'})`);
          assert.ok(d.reply?.startsWith(`${backend.name}:${'x'.repeat(2000)}:`), `${kind}: the full 2000-byte payload came back`);
        }
        assert.ok(sent.length >= 4, `${kind}: ${sent.length} datagrams`);
      }
    });
  }
});

test('a Service whose endpoint is the node\'s own address (hostNetwork): pods on that node get TCP and UDP answers, iTP Local too', async () => {
  // a "hostNetwork pod": the pod server in node1's own namespace, on ports no pod uses
  const node = topo.nodes[0];
  const srv = topo.set.track(node.ns.spawn(process.execPath, [helperScript('podserver.js'), '--name', 'node1-host',
    '--http', '18080', '--udp', '19000', '--max-lifetime', '600'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  await waitForOutput(srv, /^ready$/m, 'podserver in node1');
  const host = { ...pod(1), name: 'node1-host', ip: node.ip, ip6: node.ip6 };
  for (const iTP of ['Cluster', 'Local'] as const) {
    const svc: SvcDef = { name: 'apiserver', clusterIP: '10.96.3.4', clusterIP6: 'fd00:96::3:4', iTP, ports: [
      { name: 'https', port: 443, targetPort: 18080 }, { name: 'dns', port: 53, targetPort: 19000, protocol: 'UDP' }] };
    c.apply(svc, [{ pod: host }]);
    await both(async (f) => {
      const cip = cipOf(svc, f);
      for (const from of [pod(1), pod(3), ...(iTP === 'Cluster' ? [pod(2)] : [])]) {
        await eventually(`${from.name} (${from.node}) reaches the host endpoint over TCP, IPv${f}, iTP ${iTP}`, async () =>
          (await topo.curl(from.name, httpUrl(cip, 443), { timeoutMs: 800 })).body.trim() === 'Hello, node1-host', 10_000);
        const sport = 43000 + topo.pods.indexOf(from) + (iTP === 'Local' ? 10 : 0) + (f === 6 ? 20 : 0);
        const sent = await udpSteady(from.ns, cip, 53, sport, 450, 150);
        for (const d of sent) assert.equal(d.from, `${cip}:53`, `${from.name}: IPv${f} UDP datagram answered from the ClusterIP (${d.reply ?? 'no reply'})`);
        assert.ok(sent.every((d) => who(d) === 'node1-host') && sent.length >= 2, `${from.name} IPv${f}: ${JSON.stringify(sent)}`);
      }
    });
  }
});

test('the conntrack sweep runs in the kernel (bpf/ct_sweep.c) where the kernel loads it, and xlb status says where and how long it took', async () => {
  let detail = '';
  await eventually('a sweep reported', async () => {
    for (const node of ['node1', 'node2']) {
      const out = (await run(process.execPath, [cliPath(), 'status', '-o', 'json', '--socket', c.socket(node)], { timeoutMs: 40_000 })).stdout;
      const st = JSON.parse(out) as { kernel: { checks: Array<{ name: string; ok: boolean; detail: string }> } };
      detail = st.kernel.checks.find((x) => x.name === 'conntrack sweep')?.detail ?? '';
      if (!/last [\d.]+ ms/.test(detail)) return false;
    }
    return true;
  }, 15_000);
  assert.match(detail, /in the kernel \(bpf\/ct_sweep\.c\)/);
});
