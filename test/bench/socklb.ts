// Socket-level load balancing against the per-packet path and against no Service at all, on
// one topology with xlb on node1, side by side in one run (repetitions alternate the order;
// figures are medians). Every client runs inside a child cgroup the run creates, where the
// agent attaches its socket hooks (never the machine's root cgroup).
//   pod-direct   pod (node1) -> the backend pod's address, no Service
//   pod-packet   pod -> ClusterIP, --socket-lb host: the pod keeps the per-packet (tc) path
//   pod-sock     pod -> ClusterIP, --socket-lb all: translated at connect()
//   node-direct  node1's namespace -> the backend pod's address
//   node-sock    node1's namespace -> ClusterIP, --socket-lb host
// Rows: new connections/s (wrk, Connection: close) for all five; TCP bulk (iperf3) for the pod
// cases. kube-proxy-style iptables/nftables are in run.ts's table, not here.
//   node dist/test/bench/socklb.js [--quick] [--json FILE]
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRoot, sweepStale, type Netns } from '../helpers/netns.js';
import { buildTopology } from '../helpers/topology.js';
import { startIperfServer, startNginx, NGINX_PORT } from '../helpers/podserver.js';
import { iperfTcp, wrkConnRate } from '../helpers/load.js';
import { XlbCluster, type SvcDef } from '../helpers/cluster.js';
import { TestCgroup } from '../helpers/cgroup.js';

const IPERF_PORT = 5201;
const WEB_VIP = '10.96.17.10';
const IPERF_VIP = '10.96.17.11';

export type SockCase = 'pod-direct' | 'pod-packet' | 'pod-sock' | 'node-direct' | 'node-sock';
const CASES: SockCase[] = ['pod-direct', 'pod-packet', 'pod-sock', 'node-direct', 'node-sock'];
const BULK_CASES: SockCase[] = ['pod-direct', 'pod-packet', 'pod-sock'];

export interface SockBenchResult {
  durationS: number; reps: number;
  connrate: Record<SockCase, number | null>;
  bulkGbps: Partial<Record<SockCase, number | null>>;
  /** the issue's targets as ratios: pod-sock / pod-direct (conn/s, bulk), node-sock / node-direct (conn/s) */
  ratio: { podConnrate: number | null; podBulk: number | null; nodeConnrate: number | null; sockVsPacketConnrate: number | null };
  errors: string[];
}

const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ratio = (a: number | null, b: number | null): number | null => (a !== null && b ? a / b : null);

const SERVICES: SvcDef[] = [
  { name: 'web', clusterIP: WEB_VIP, ports: [{ name: 'http', port: 80, targetPort: NGINX_PORT }] },
  { name: 'iperf', clusterIP: IPERF_VIP, ports: [{ name: 'iperf', port: IPERF_PORT, targetPort: IPERF_PORT }] },
];

export async function benchSockLb(o: { quick?: boolean; reps?: number; durationS?: number } = {}): Promise<SockBenchResult> {
  const reps = o.reps ?? (o.quick ? 1 : 3);
  const d = o.durationS ?? (o.quick ? 2 : 5);
  const t0 = performance.now();
  const conn: Record<string, number[]> = {};
  const bulk: Record<string, number[]> = {};
  const errors: string[] = [];
  await sweepStale('sbench');
  const topo = await buildTopology({ tag: 'sbench', podsPerNode: 2 });
  const cg = await TestCgroup.create(topo.set.prefix);
  const c = new XlbCluster(topo, 'sbench');
  try {
    const backend = topo.pods[0]!; // app1-1, node1
    const clientPod = topo.pods.find((p) => p.node === 'node1' && p !== backend)!;
    for (const ns of [clientPod.ns, topo.nodes[0].ns]) {
      await ns.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000', 'net.ipv4.tcp_tw_reuse=1']);
    }
    await startNginx(topo, backend.name);
    for (const s of SERVICES) c.apply(s, [{ pod: backend }]);
    const pod = cg.netns(clientPod.ns);
    const node = cg.netns(topo.nodes[0].ns);
    const target: Record<SockCase, [Netns, string]> = {
      'pod-direct': [pod, backend.ip], 'pod-packet': [pod, WEB_VIP], 'pod-sock': [pod, WEB_VIP],
      'node-direct': [node, backend.ip], 'node-sock': [node, WEB_VIP],
    };
    const iperfHost = (k: SockCase) => (k === 'pod-direct' ? backend.ip : IPERF_VIP);
    // A load tool can time out on a busy machine: each measurement gets a second attempt.
    const twice = async (k: SockCase, fn: () => Promise<void>) => {
      for (let attempt = 1; attempt <= 2; attempt++) {
        try { return await fn(); } catch (e) {
          errors.push(`${k} (attempt ${attempt}): ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`);
        }
      }
    };
    const measure = async (k: SockCase) => {
      const [ns, host] = target[k];
      const url = host === WEB_VIP ? `http://${WEB_VIP}/` : `http://${host}:${NGINX_PORT}/`;
      await twice(k, async () => {
        const w = await wrkConnRate(ns, url, d);
        if (w.requests === 0) throw new Error('wrk: no request completed');
        (conn[k] ??= []).push(w.requestsPerSec);
      });
      if (!BULK_CASES.includes(k)) return;
      await twice(k, async () => {
        const srv = await startIperfServer(topo, backend.name, { oneOff: true });
        try { (bulk[k] ??= []).push((await iperfTcp(ns, iperfHost(k), IPERF_PORT, d)).gbps); } finally { srv.stop(); }
      });
    };
    for (let r = 0; r < reps; r++) {
      const phases: Array<['host' | 'all', SockCase[]]> = [['host', ['pod-direct', 'pod-packet', 'node-direct', 'node-sock']], ['all', ['pod-sock']]];
      if (r % 2) phases.reverse();
      for (const [mode, cases] of phases) {
        await c.startAgent('node1', ['--socket-lb', mode, '--cgroup', cg.path]);
        for (const k of r % 2 ? [...cases].reverse() : cases) await measure(k);
        await c.stopAgent('node1');
      }
    }
  } finally {
    await c.teardown();
    await cg.remove();
    await topo.teardown();
  }
  const connrate = Object.fromEntries(CASES.map((k) => [k, median(conn[k] ?? [])])) as Record<SockCase, number | null>;
  const bulkGbps = Object.fromEntries(BULK_CASES.map((k) => [k, median(bulk[k] ?? [])]));
  return {
    durationS: (performance.now() - t0) / 1000, reps, connrate, bulkGbps, errors,
    ratio: {
      podConnrate: ratio(connrate['pod-sock'], connrate['pod-direct']),
      podBulk: ratio(bulkGbps['pod-sock'] ?? null, bulkGbps['pod-direct'] ?? null),
      nodeConnrate: ratio(connrate['node-sock'], connrate['node-direct']),
      sockVsPacketConnrate: ratio(connrate['pod-sock'], connrate['pod-packet']),
    },
  };
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));

export function renderSockLb(r: SockBenchResult): string {
  const rows = CASES.map((k) => `${k.padEnd(12)} ${fmt(r.connrate[k]).padStart(9)} conn/s ${BULK_CASES.includes(k) ? `${fmt(r.bulkGbps[k]).padStart(7)} Gbit/s` : ''}`);
  return [
    `socket LB bench (${r.reps} rep(s), ${r.durationS.toFixed(0)} s)`, ...rows,
    `pod-sock / pod-direct: conn/s ${fmt(r.ratio.podConnrate)} (target >= 0.95), bulk ${fmt(r.ratio.podBulk)} (target >= 0.98)`,
    `node-sock / node-direct: conn/s ${fmt(r.ratio.nodeConnrate)} (target >= 0.95)`,
    `pod-sock / pod-packet: conn/s ${fmt(r.ratio.sockVsPacketConnrate)}`,
    ...r.errors.map((e) => `error: ${e}`),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json') ? resolve(argv[argv.indexOf('--json') + 1]!) : undefined;
  if (!isRoot()) { console.error('socklb bench: needs root'); process.exitCode = 1; } else {
    benchSockLb({ quick: argv.includes('--quick') }).then(async (r) => {
      console.log(renderSockLb(r));
      if (json) { await mkdir(dirname(json), { recursive: true }); await writeFile(json, JSON.stringify(r, null, 2) + '\n'); }
    }, (e: Error) => { console.error(`socklb bench: ${e.message}`); process.exitCode = 1; });
  }
}
