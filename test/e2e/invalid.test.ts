// Replies of xlb flows and netfilter's INVALID drop (issue 19 item 3). kube-proxy, unless it runs
// with conntrackTCPBeLiberal, drops in its forward path what netfilter conntrack classifies
// INVALID (iptables: KUBE-FORWARD '-m conntrack --ctstate INVALID -j DROP'; nftables:
// 'ct state invalid drop' in filter-forward). With those rules on both nodes and
// nf_conntrack_tcp_be_liberal 0 (the default), xlb switched on serves TCP connections with data
// both ways (a long-lived keep-alive connection asking every 100 ms, and new connections all
// the time) through every path: pod -> ClusterIP with a local and with a remote backend,
// client -> NodePort and LoadBalancer IP with a local backend and with a remote one (SNAT);
// in tc and xdp device modes, --local-delivery stack and peer. A path where netfilter meets one
// direction of a flow without the other stalls at the client's next segment (INVALID, dropped):
// netfilter must see both directions of every xlb flow or neither (a flow to a local backend that
// goes up the stack keeps its reply in backend form up the stack, reverse-translated at egress;
// on XDP devices tc sends a remote backend's reply into the pod), so no path may lose data.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, NODE_IPS, SERVICE_VIP_RANGE, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, type DeviceMode } from '../helpers/cluster.js';
import { run, sweepStale } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { flowsIn, type FlowsResult, type FlowTarget } from '../helpers/flows.js';
import { applyBaseline, flushBaseline, type Baseline } from '../bench/kubeproxy.js';
import { podEndpoints, specsFor, toManifests, type SimpleService } from '../bench/services.js';

const N1 = NODE_IPS[0];
const NEAR = { cip: '10.96.0.20', lb: '198.18.100.20', nodePort: 30090 };
const FAR = { cip: '10.96.0.21', lb: '198.18.100.21', nodePort: 30091 };
const DURATION_MS = 3000;

const tcp = (name: string, host: string, port: number): FlowTarget => ({ name, proto: 'TCP', host, port });

/** near: endpoints on node1 (but not the pod that is the client there); far: on node2 only. */
function services(topo: Topology, clientPod: string): SimpleService[] {
  const svc = (name: string, a: typeof NEAR, node: string): SimpleService => ({
    namespace: 'default', name, clusterIP: a.cip, lbIPs: [a.lb],
    endpoints: podEndpoints(topo.pods, (p) => p.node === node && p.name !== clientPod),
    ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP', nodePort: a.nodePort }],
  });
  return [svc('near', NEAR, 'node1'), svc('far', FAR, 'node2')];
}

/** Each path: where its connections start (the client, through node1, or a pod on node1) and to what. */
const PATHS: Array<[string, FlowTarget]> = [
  ['client', tcp('NodePort, local backend', N1, NEAR.nodePort)], ['client', tcp('NodePort, remote backend (SNAT)', N1, FAR.nodePort)],
  ['client', tcp('LoadBalancer IP, local backend', NEAR.lb, 80)], ['client', tcp('LoadBalancer IP, remote backend (SNAT)', FAR.lb, 80)],
  ['pod', tcp('ClusterIP, local backend', NEAR.cip, 80)], ['pod', tcp('ClusterIP, remote backend', FAR.cip, 80)],
];

/** Why a path's connections lost data, or null when none did. */
function broken(r: FlowsResult): string | null {
  const out = r.long.filter((l) => !l.alive || l.failed || l.requests < 5)
    .map((l) => `long-lived connection: ${l.requests} requests, ${l.failed} failed${l.error ? ` (${l.error})` : ''}`);
  if (r.fresh.failed) out.push(`${r.fresh.failed} of ${r.fresh.failed + r.fresh.ok} new connections failed: ${r.fresh.errors.slice(0, 2).join('; ')}`);
  return out.length ? out.join(', ') : null;
}

for (const mode of ['tc', 'xdp'] as DeviceMode[]) {
  describe(`INVALID drop, --device-mode ${mode}`, () => {
    const TAG = `inv${mode}`;
    let topo: Topology;
    let c: XlbCluster;
    let clientPod: string;
    let svcs: SimpleService[];

    before(async () => {
      await sweepStale(TAG);
      topo = await buildTopology({ tag: TAG, apps: ['app1'], podsPerNode: 2 });
      await startPodServers(topo);
      await topo.setClientRoute(SERVICE_VIP_RANGE, 0);
      clientPod = topo.pods.find((p) => p.node === 'node1')!.name;
      svcs = services(topo, clientPod);
      c = new XlbCluster(topo, TAG, { deviceMode: mode });
      c.writeText('services.yaml', toManifests(svcs, []));
    });

    after(async () => {
      await c?.teardown();
      await topo?.teardown();
    });

    for (const kind of ['iptables', 'nftables'] as Baseline[]) {
      for (const delivery of ['stack', 'peer']) {
        test(`${kind} INVALID drop, --local-delivery ${delivery}: every path carries data both ways`, { timeout: 90_000 }, async (t) => {
          for (const n of topo.nodes) {
            await flushBaseline(n.ns);
            await applyBaseline(kind, n.ns, specsFor(svcs, n.name), { invalidDrop: true });
            const liberal = await run('ip', ['netns', 'exec', n.ns.name, 'sysctl', '-n', 'net.netfilter.nf_conntrack_tcp_be_liberal']);
            assert.equal(liberal.stdout.trim(), '0', `${n.name}: conntrack not liberal`);
          }
          await c.startAgents(topo.nodes.map((n) => n.name), ['--local-delivery', delivery]);
          t.after(async () => { await Promise.all(topo.nodes.map((n) => c.stopAgent(n.name))); });
          await eventually('NodePort answers', async () => (await topo.curl('client', `http://${N1}:${FAR.nodePort}/`, { timeoutMs: 500 })).status === 200, 10_000);
          const results = await Promise.all(PATHS.map(async ([from, target]) => {
            const ns = topo.nsFor(from === 'pod' ? clientPod : from);
            return [target.name, broken(await flowsIn(ns, { durationMs: DURATION_MS, everyMs: 100, newEveryMs: 100, long: [target], fresh: [target] }))] as const;
          }));
          for (const [path, why] of results) t.diagnostic(`${path}: ${why ?? 'ok'}`);
          assert.deepEqual(results.filter(([, why]) => why).map(([path]) => path), [], 'paths that lost data');
        });
      }
    }
  });
}
