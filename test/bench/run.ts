// The benchmark harness: one topology, the same Service set served by each mode (direct to
// pod, kube-proxy-style iptables, kube-proxy-style nftables, xlb), measured side by side in
// ONE run. Repetitions alternate the modes (rotating the order each round) so drift on a shared
// machine spreads over all of them; each figure is the median of its repetitions.
// Between two windows (one mode's setup to teardown) every mode starts from the same state:
// nf_conntrack flushed in the run's namespaces and a bounded wait for the CPU to be as quiet as
// before the previous window (settle.ts); each step is in the results' extra.betweenModes.
//   npm run bench [-- --quick] [--json FILE] [--modes direct,iptables,...] [--rows ID,ID,...]
// The topology is dual stack and every Service set too: the *6 rows are the IPv4 rows' twins in
// IPv6 (the baselines load their IPv6 rules with ip6tables-restore / nft's ip6 table).
// --rows measures only the rows named (and skips the datapath, maps and control-plane benches).
// Every load is bounded by its duration and a timeout; the full run stays under ~15 minutes on
// 2 cores, --quick under ~2.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isRoot, sweepStale } from '../helpers/netns.js';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { wireLike } from '../helpers/cluster.js';
import { startIperfServer, startNginx, NGINX_PORT, type IperfServer } from '../helpers/podserver.js';
import { iperfTcp, iperfUdp, latencyIn, wrkConnRate } from '../helpers/load.js';
import { allModes, type Mode } from './modes.js';
import { Progress, type Stage } from './progress.js';
import { betweenModes, sampleBusy, summarize, SETTLE_DEFAULTS, type BetweenModes } from './settle.js';
import { fillerIP, fillerIP6, fillerServices, podEndpoints, type SimpleService } from './services.js';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');

export interface BenchConfig {
  quick: boolean; durationS: number; reps: number; bigReps: number; bigServices: number;
  /** the many-Services conn/s rows: per mode and round, connReps samples of connRepS seconds
   *  per family, the families alternating (familyOrder), after a discarded warm-up run each */
  connReps: number; connRepS: number;
  /** the TCP bulk rows: per mode, round and path (ClusterIP, NodePort), a discarded warm-up of
   *  bulkWarmS seconds per family (none when 0), then bulkReps samples of bulkRepS seconds per
   *  family in familyOrder (see bulkSteps) */
  bulkReps: number; bulkRepS: number; bulkWarmS: number;
  latencyRate: number; latencyMs: number; budgetS: number;
  /** how long a mode may take to start serving before it counts as failed */
  readyTimeoutS: number;
  /** between two windows, the longest wait for the host's CPU to be quiet again, and the interval
   *  its busy share is measured over (settle.ts) */
  settleMaxS: number; settleSampleMs: number;
}

export function config(quick: boolean): BenchConfig {
  return quick
    // --quick proves every row runs and gives a figure (test/bench/bench.test.ts), not its value:
    // one second per workload is enough for iperf3 TCP, wrk and 200 timed requests to report.
    ? { quick, durationS: 1, reps: 1, bigReps: 1, bigServices: 100, connReps: 1, connRepS: 1, bulkReps: 1, bulkRepS: 1, bulkWarmS: 0, latencyRate: 200, latencyMs: 1000, budgetS: 110, readyTimeoutS: 20, settleMaxS: 2, settleSampleMs: 250 }
    : { quick, durationS: 5, reps: 3, bigReps: 2, bigServices: 10_000, connReps: 4, connRepS: 2, bulkReps: 4, bulkRepS: 1, bulkWarmS: 1, latencyRate: 500, latencyMs: 5000, budgetS: 840, readyTimeoutS: 120, settleMaxS: SETTLE_DEFAULTS.maxS, settleSampleMs: SETTLE_DEFAULTS.sampleMs };
}

type Better = 'higher' | 'lower';
/** windows: per mode, the window (one mode's setup-to-teardown in one round) each sample was
 *  taken in, parallel to samples; kept for the family twins, whose samples pair up by window. */
export interface Row { id: string; label: string; unit: string; better: Better; samples: Record<string, number[]>; errors: Record<string, string>; windows?: Record<string, number[]> }

export interface BenchResult {
  config: BenchConfig;
  startedAt: string;
  durationS: number;
  modes: Record<string, { available: boolean; reason?: string }>;
  rows: Array<Omit<Row, 'samples'> & { samples: Record<string, number[]>; median: Record<string, number | null> }>;
  extra: Record<string, unknown>;
  /** the family twins' judgment (familyTwins), per window included; absent in older results */
  twins?: FamilyTwin[];
  notes: string[];
}

const ROWS: Array<[string, string, string, Better]> = [
  ['tcp_clusterip', 'TCP bulk, pod -> ClusterIP', 'Gbit/s', 'higher'],
  ['tcp_nodeport', 'TCP bulk, client -> NodePort', 'Gbit/s', 'higher'],
  ['tcp_clusterip6', 'TCP bulk, pod -> ClusterIP, IPv6', 'Gbit/s', 'higher'],
  ['tcp_nodeport6', 'TCP bulk, client -> NodePort, IPv6', 'Gbit/s', 'higher'],
  ['udp_nodeport_pps', 'UDP 64 B, client -> NodePort, received', 'kpps', 'higher'],
  ['udp_nodeport_loss', 'UDP 64 B, loss', '%', 'lower'],
  // What the sender managed: when a mode keeps up (little loss), received is bounded by this.
  ['udp_nodeport_sent', 'UDP 64 B, client -> NodePort, sent', 'kpps', 'higher'],
  ['connrate_small', 'new conns/s, pod -> ClusterIP (2 Services)', 'conn/s', 'higher'],
  ['latency_p50', 'latency p50 at fixed rate, new conn each', 'ms', 'lower'],
  ['latency_p99', 'latency p99 at fixed rate, new conn each', 'ms', 'lower'],
  ['softirq_tcp_nodeport', 'softirq CPU during TCP NodePort', '%', 'lower'],
  ['softirq_connrate', 'softirq CPU during conn/s', '%', 'lower'],
  ['connrate_big', 'new conns/s, pod -> ClusterIP (many Services)', 'conn/s', 'higher'],
  ['connrate_big6', 'new conns/s, pod -> ClusterIP (many Services), IPv6', 'conn/s', 'higher'],
  ['program_big', 'time to program the many Services (both nodes)', 's', 'lower'],
];

/** The rows of the many-Services round; every other row is measured in the small round. */
const BIG_ROWS = ['program_big', 'connrate_big', 'connrate_big6'];

/** Each IPv6 row and its IPv4 twin: their ratios to direct should be within 5% of each other. */
export const FAMILY_TWINS: Array<[string, string]> = [['tcp_clusterip', 'tcp_clusterip6'], ['tcp_nodeport', 'tcp_nodeport6'], ['connrate_big', 'connrate_big6']];
const TWIN_TOLERANCE = 0.05;

// ---------- the Service set and where each mode sends traffic ----------

const WEB_VIP = '10.96.0.10';
const IPERF_VIP = '10.96.0.11';
const WEB_VIP6 = 'fd00:96::a';
const IPERF_VIP6 = 'fd00:96::b';
const WEB_NODEPORT = 30080;
const IPERF_PORT = 5201;
const IPERF_NODEPORT = 30201;

function benchServices(topo: Topology, fillers: number): SimpleService[] {
  const node1Pods = podEndpoints(topo.pods, (p) => p.node === 'node1');
  const iperfPod = podEndpoints(topo.pods, (p) => p.name === 'app1-1');
  return [
    // iperf3 opens a control and a data connection that must reach the same server: one endpoint.
    { namespace: 'bench', name: 'iperf', clusterIP: IPERF_VIP, clusterIP6: IPERF_VIP6, endpoints: iperfPod, ports: [
      { name: 'tcp', port: IPERF_PORT, targetPort: IPERF_PORT, proto: 'TCP', nodePort: IPERF_NODEPORT },
      { name: 'udp', port: IPERF_PORT, targetPort: IPERF_PORT, proto: 'UDP', nodePort: IPERF_NODEPORT }] },
    ...fillerServices(fillers, node1Pods.slice(1), NGINX_PORT, { dualStack: true }),
    // Last, so that once it answers every filler before it has been programmed too.
    { namespace: 'bench', name: 'web', clusterIP: WEB_VIP, clusterIP6: WEB_VIP6, endpoints: node1Pods,
      ports: [{ name: 'http', port: 80, targetPort: NGINX_PORT, proto: 'TCP', nodePort: WEB_NODEPORT }] },
  ];
}

interface Targets { web: string; iperfCluster: [string, number]; iperfNode: [string, number] }

/** Where a mode's traffic goes in one family (direct: straight to the pod's address of that family). */
function targets(topo: Topology, mode: Mode, family: 4 | 6 = 4): Targets {
  const pod = topo.pods.find((p) => p.name === 'app1-1')!;
  const [podIP, webVIP, iperfVIP, nodeIP] = family === 6 ? [pod.ip6!, WEB_VIP6, IPERF_VIP6, topo.nodes[0].ip6!] : [pod.ip, WEB_VIP, IPERF_VIP, topo.nodes[0].ip];
  if (mode.name === 'direct') return { web: `http://${urlHost(podIP)}:${NGINX_PORT}/`, iperfCluster: [podIP, IPERF_PORT], iperfNode: [podIP, IPERF_PORT] };
  return { web: `http://${urlHost(webVIP)}/`, iperfCluster: [iperfVIP, IPERF_PORT], iperfNode: [nodeIP, IPERF_NODEPORT] };
}

const urlHost = (addr: string): string => (addr.includes(':') ? `[${addr}]` : addr);

/**
 * The pod that opens the short connections (conn/s, latency). direct gets its own, on the
 * same node: a server keeps each closed connection in TIME_WAIT for 60 s, and a client's SYN
 * that reuses such a tuple is accepted only with a newer TCP timestamp, whose offset the
 * client derives from the (source, destination) pair. Through a Service the destination is
 * the ClusterIP, direct it is the pod: when direct ran within a minute of a Service mode, or
 * the other way round, half the reused ports met PAWS at the server (a 1 s SYN retransmit
 * each), which is what made one direct repetition 4,734 conn/s beside 11,636.
 */
export function connClient(mode: string): string {
  return mode === 'direct' ? 'app1-4' : 'app1-2';
}

/**
 * The order of a window's conn/s samples: the families alternate as ABBA (4 6 6 4 4 6 ...),
 * so neither always runs first after setup or after the other, whose flows the datapath and
 * the agent (conntrack sweep) are still retiring.
 */
export function familyOrder(reps: number): Array<4 | 6> {
  return Array.from({ length: 2 * reps }, (_, i) => ((i % 4 === 0 || i % 4 === 3) ? 4 : 6));
}

/** One iperf3 run of the TCP bulk rows: its path and family, the rows it gives figures to,
 *  whether it is a discarded warm-up, and the CPUs its client and server run on (unpinned when
 *  undefined). */
export interface BulkStep {
  path: 'clusterip' | 'nodeport'; family: 4 | 6; warmup: boolean; seconds: number; rows: string[];
  clientCpu?: number; serverCpu?: number;
}

/**
 * The TCP bulk runs of one mode's window, in order: per path, a warm-up per family (discarded:
 * the first flow after setup or after the other family meets cold caches, fresh neighbour and
 * conntrack state, the agent's first sweep), then the families' samples alternating ABBA as
 * the conn/s rows do, so drift within the window falls on both families alike. `wanted`: the
 * rows measured (--rows); a family none of whose rows is wanted is not run. `cpus`: [client
 * CPU, server CPU] (see bulkFamilies), this machine's when not given, none when undefined.
 */
export function bulkSteps(cfg: BenchConfig, o: { wanted?: (id: string) => boolean; cpus?: [number, number] } = {}): BulkStep[] {
  const wanted = o.wanted ?? (() => true);
  const cpus = 'cpus' in o ? o.cpus : BULK_CPUS;
  const rows = {
    clusterip: { 4: ['tcp_clusterip'], 6: ['tcp_clusterip6'] },
    nodeport: { 4: ['tcp_nodeport', 'softirq_tcp_nodeport'], 6: ['tcp_nodeport6'] },
  } as const;
  const out: BulkStep[] = [];
  const pin = cpus ? { clientCpu: cpus[0], serverCpu: cpus[1] } : {};
  for (const path of ['clusterip', 'nodeport'] as const) {
    const want = (f: 4 | 6) => rows[path][f].some(wanted);
    if (cfg.bulkWarmS > 0) for (const family of [4, 6] as const) if (want(family)) out.push({ path, family, warmup: true, seconds: cfg.bulkWarmS, rows: [...rows[path][family]], ...pin });
    for (const family of familyOrder(cfg.bulkReps)) if (want(family)) out.push({ path, family, warmup: false, seconds: cfg.bulkRepS, rows: [...rows[path][family]], ...pin });
  }
  return out;
}

// ---------- measurement helpers ----------

function cpuTimes(): { softirq: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { softirq: f[6] ?? 0, total: f.slice(0, 8).reduce((a, b) => a + b, 0) };
}

async function withSoftirq<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const a = cpuTimes();
  const r = await fn();
  const b = cpuTimes();
  return [r, b.total > a.total ? (100 * (b.softirq - a.softirq)) / (b.total - a.total) : 0];
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

class Recorder {
  readonly rows: Map<string, Row>;
  /** only: the rows to measure (all when absent); a workload whose rows are all left out is not run */
  constructor(only?: string[]) {
    const unknown = only?.filter((id) => !ROWS.some((r) => r[0] === id)) ?? [];
    if (unknown.length) throw new Error(`bench: unknown row '${unknown[0]}' (rows: ${ROWS.map((r) => r[0]).join(', ')})`);
    this.rows = new Map(ROWS.filter(([id]) => !only || only.includes(id)).map(([id, label, unit, better]) => [id, { id, label, unit, better, samples: {}, errors: {} }]));
  }
  wants(ids: string[]): boolean { return ids.some((id) => this.rows.has(id)); }
  add(id: string, mode: string, v: number, window?: number): void {
    const r = this.rows.get(id);
    if (!r) return;
    (r.samples[mode] ??= []).push(v);
    if (window !== undefined) ((r.windows ??= {})[mode] ??= []).push(window);
  }
  fail(ids: string[], mode: string, e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    for (const id of ids) { const r = this.rows.get(id); if (r) r.errors[mode] = msg.split('\n')[0].slice(0, 200); }
  }
  /** Run one workload; a failure is recorded against its rows and does not stop the run. */
  async measure(ids: string[], mode: string, fn: () => Promise<void>): Promise<void> {
    if (!this.wants(ids)) return;
    progress(`${mode}: ${ids[0]}`);
    try { await fn(); } catch (e) { this.fail(ids, mode, e); }
  }
}

async function waitServing(topo: Topology, mode: Mode, urls: Array<[string, string]>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const [from, url] of urls) {
    for (;;) {
      mode.check?.();
      if ((await topo.curl(from, url, { timeoutMs: 1000 })).status === 200) break;
      if (Date.now() > deadline) throw new Error(`${mode.name}: ${url} from ${from} not answering after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const T0 = performance.now();
/** Progress on stderr, so a long run shows where it is; the table goes to stdout. */
function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
}

// ---------- the phases ----------

async function smallRound(topo: Topology, mode: Mode, cfg: BenchConfig, rec: Recorder, window: number): Promise<void> {
  const t = targets(topo, mode);
  const connPod = topo.nsFor(connClient(mode.name));
  const client = topo.client.ns;
  const d = cfg.durationS;
  const iperfOnce = async <T>(fn: () => Promise<T>): Promise<T> => {
    const srv = await startIperfServer(topo, 'app1-1', { oneOff: true });
    try { return await fn(); } finally { srv.stop(); }
  };
  await bulkFamilies(topo, mode, cfg, rec, window);
  await rec.measure(['udp_nodeport_pps', 'udp_nodeport_loss', 'udp_nodeport_sent'], mode.name, async () => {
    // Never under 2 s: 1 s runs through the NAT modes hung until iperf3's timeout (21 s) on a
    // loaded 2-core machine, where 2 s runs end in time.
    const r = await iperfOnce(() => asSeparateHosts(topo, () => iperfUdp(client, t.iperfNode[0], t.iperfNode[1], Math.max(d, 2), 64, SENDER_RECEIVER_CPUS)));
    rec.add('udp_nodeport_pps', mode.name, r.receivedPps / 1000);
    rec.add('udp_nodeport_loss', mode.name, r.lossPercent);
    rec.add('udp_nodeport_sent', mode.name, r.sentPps / 1000);
  });
  await rec.measure(['connrate_small', 'softirq_connrate'], mode.name, async () => {
    const [r, si] = await withSoftirq(() => wrkConnRate(connPod, t.web, d, undefined, SENDER_RECEIVER_CPUS?.[0]));
    if (r.requests === 0) throw new Error('wrk: no request completed');
    rec.add('connrate_small', mode.name, r.requestsPerSec);
    rec.add('softirq_connrate', mode.name, si);
  });
  await rec.measure(['latency_p50', 'latency_p99'], mode.name, async () => {
    const u = new URL(t.web);
    const r = await latencyIn(connPod, u.hostname, Number(u.port || 80), cfg.latencyRate, cfg.latencyMs);
    if (r.ok === 0) throw new Error(`latency: no request answered (${r.errors} errors)`);
    rec.add('latency_p50', mode.name, r.p50);
    rec.add('latency_p99', mode.name, r.p99);
  });
}

/**
 * Small-packet rates are CPU-bound, and on one machine the client's sender shares the CPUs
 * with the node's receive path: the sender's cost, the same in every mode, would hide what
 * the modes do differently. So the UDP run keeps them apart as two hosts would: the iperf3
 * client on CPU 0, the nodes' receive processing steered to CPU 1 (RPS on their eth0), the
 * iperf3 server on CPU 1. Needs 2 CPUs; with one, nothing is pinned.
 * The conn/s rows do the same: wrk on CPU 0, every nginx on CPU 1. A veth hands a packet to
 * the backlog of the CPU that sent it, so a request's path (Service translation included)
 * runs on the client's CPU and a reply's on the server's. Unpinned, where the scheduler put
 * wrk and a lone nginx (direct) decided the figure: the same CPU or two.
 */
export function senderReceiverCpus(cpus: number): [number, number] | undefined {
  return cpus >= 2 ? [0, 1] : undefined;
}
const SENDER_RECEIVER_CPUS = senderReceiverCpus(os.availableParallelism());
/** The TCP bulk rows' [iperf3 client CPU, iperf3 server CPU] (bulkFamilies). */
const BULK_CPUS = SENDER_RECEIVER_CPUS;

async function asSeparateHosts<T>(topo: Topology, fn: () => Promise<T>): Promise<T> {
  const rps = (mask: string) => Promise.all(topo.nodes.map((n) =>
    n.ns.exec('sh', ['-c', `echo ${mask} > /sys/class/net/${n.device}/queues/rx-0/rps_cpus`])));
  if (!SENDER_RECEIVER_CPUS) return fn();
  await rps((1 << SENDER_RECEIVER_CPUS[1]).toString(16));
  try { return await fn(); } finally { await rps('0'); }
}

async function setupMode(topo: Topology, mode: Mode, services: SimpleService[], probes: Array<[string, string]>, timeoutS: number): Promise<number> {
  const start = performance.now();
  await mode.setup(topo, services);
  await waitServing(topo, mode, probes, timeoutS * 1000);
  return (performance.now() - start) / 1000;
}

function smallProbes(topo: Topology, mode: Mode): Array<[string, string]> {
  if (mode.name === 'direct') return [];
  return [['app1-2', `http://${WEB_VIP}/`], ['client', `http://${topo.nodes[0].ip}:${WEB_NODEPORT}/`],
    ['app1-2', `http://${urlHost(WEB_VIP6)}/`], ['client', `http://${urlHost(topo.nodes[0].ip6!)}:${WEB_NODEPORT}/`]];
}

/** Relative stage costs for the time-left estimate (a small round of one mode = 1). */
const WEIGHT = { big: (cfg: BenchConfig) => (cfg.quick ? 1 : 3), datapath: 1, maps: 1, controlPlane: 3 };

/** Every stage runBench will go through, in order. */
function plan(modes: Mode[], cfg: BenchConfig, rec: Recorder, extras: boolean): Stage[] {
  const out: Stage[] = [];
  if (rec.wants(SMALL_ROWS)) for (let r = 0; r < cfg.reps; r++) for (const m of modes) out.push({ name: `small round ${r + 1}/${cfg.reps}: ${m.name}`, weight: 1 });
  const big = rec.wants(BIG_ROWS) ? modes.filter((m) => !m.smallOnly) : [];
  for (let r = 0; r < cfg.bigReps; r++) for (const m of big) out.push({ name: `${cfg.bigServices} Services round ${r + 1}/${cfg.bigReps}: ${m.name}`, weight: WEIGHT.big(cfg) });
  if (extras) {
    out.push({ name: 'datapath (BPF_PROG_TEST_RUN)', weight: WEIGHT.datapath }, { name: 'map update rates', weight: WEIGHT.maps },
      { name: 'control plane (agent bench)', weight: WEIGHT.controlPlane });
  }
  return out;
}

const SMALL_ROWS = ROWS.map((x) => x[0]).filter((id) => !BIG_ROWS.includes(id));

/** The namespaces of the run's topology (the only ones the step between windows touches). */
function topologyNamespaces(topo: Topology): string[] {
  return [topo.client.ns, topo.bridge, ...topo.nodes.map((n) => n.ns), ...topo.pods.map((p) => p.ns)].map((ns) => ns.name);
}

async function runModes(topo: Topology, modes: Mode[], cfg: BenchConfig, rec: Recorder, notes: string[], t0: number, progress: Progress, between: BetweenModes[]): Promise<void> {
  // Before every window but the first: the previous window's conntrack entries flushed and the
  // host quiet again (settle.ts); then the busy share this window's settle will wait for.
  const namespaces = topologyNamespaces(topo);
  let prev: { mode: string; ref: number } | null = null;
  const beginWindow = async (mode: Mode): Promise<void> => {
    if (prev) {
      const s = await betweenModes(prev.mode, mode.name, namespaces, prev.ref, { ...SETTLE_DEFAULTS, maxS: cfg.settleMaxS, sampleMs: cfg.settleSampleMs });
      between.push(s);
      process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(0).padStart(4)} s] between ${s.after} and ${s.before}: ${s.conntrackFlushed} conntrack entries flushed, `
        + `settled in ${s.settleS.toFixed(1)} s (CPU busy ${s.busy.map((b) => b.toFixed(2)).join(' ')} vs ${s.busyRef.toFixed(2)} before ${s.after}${s.quiet ? '' : ', not quiet in time'})${s.error ? `; ${s.error}` : ''}\n`);
    }
    prev = { mode: mode.name, ref: await sampleBusy(cfg.settleSampleMs) };
  };
  const small = benchServices(topo, 0);
  for (let r = 0; r < (rec.wants(SMALL_ROWS) ? cfg.reps : 0); r++) {
    if (r > 0 && (performance.now() - t0) / 1000 > cfg.budgetS * 0.6) {
      notes.push(`stopped after ${r} repetitions (time budget)`);
      progress.skip((cfg.reps - r) * modes.length);
      break;
    }
    for (let i = 0; i < modes.length; i++) {
      const mode = modes[(i + r) % modes.length];
      progress.begin(`small round ${r + 1}/${cfg.reps}: ${mode.name}`);
      await beginWindow(mode);
      try {
        await setupMode(topo, mode, small, smallProbes(topo, mode), cfg.readyTimeoutS);
        await smallRound(topo, mode, cfg, rec, r);
      } catch (e) {
        rec.fail(SMALL_ROWS, mode.name, e);
      } finally {
        await mode.teardown();
      }
    }
  }
  const big = benchServices(topo, cfg.bigServices - 2);
  const lastFiller = `http://${fillerIP(cfg.bigServices - 3)}/`;
  const lastFiller6 = `http://${urlHost(fillerIP6(cfg.bigServices - 3))}/`;
  const bigModes = rec.wants(BIG_ROWS) ? modes.filter((m) => !m.smallOnly) : [];
  for (let r = 0; r < cfg.bigReps; r++) {
    for (let i = 0; i < bigModes.length; i++) {
      const mode = bigModes[(i + r) % bigModes.length];
      const probes: Array<[string, string]> = mode.name === 'direct' ? [] : [['app1-2', lastFiller], ['app1-2', lastFiller6], ...smallProbes(topo, mode)];
      progress.begin(`${cfg.bigServices} Services round ${r + 1}/${cfg.bigReps}: ${mode.name}`);
      await beginWindow(mode);
      await rec.measure(BIG_ROWS, mode.name, async () => {
        try {
          const s = await setupMode(topo, mode, big, probes, cfg.readyTimeoutS);
          if (mode.name !== 'direct') rec.add('program_big', mode.name, s);
          await connRateFamilies(topo, mode, cfg, rec, r);
        } finally {
          await mode.teardown();
        }
      });
    }
  }
}

/**
 * The TCP bulk rows of one mode's window (bulkSteps): the iperf3 client on one CPU, the server
 * on the other (BULK_CPUS), as two hosts would be. A veth hands a packet to the backlog of the
 * CPU that sent it, so the data's whole path (the client pod's or the client's stack, the
 * nodes, the Service translation) runs on the client's CPU and the ACKs' on the server's.
 * Unpinned, where the scheduler put the two iperf3 processes (the same CPU or two, and which
 * one other load sat on) swung single samples by more than the modes differ.
 */
async function bulkFamilies(topo: Topology, mode: Mode, cfg: BenchConfig, rec: Recorder, window: number): Promise<void> {
  // One server for the window (both paths end at app1-1:5201), not one per run: a spawn per
  // run made a window's samples further apart in time (and the run longer) on a loaded host.
  // After a failed run it is started afresh, so a run cut short cannot leave it busy, and the
  // run is tried once more: iperf3 -s reopens its listening socket between tests, and on a
  // loaded host a client that came right after the previous test now and then met that gap.
  let srv: IperfServer | null = null;
  try {
    for (const st of bulkSteps(cfg, { wanted: (id) => rec.wants([id]) })) {
      const t = targets(topo, mode, st.family);
      const [from, [host, port]] = st.path === 'clusterip' ? [topo.nsFor('app1-2'), t.iperfCluster] : [topo.client.ns, t.iperfNode];
      // a warm-up's failure is its family's rows' error too; its figures are not kept
      await rec.measure(st.rows, mode.name, async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            srv ??= await startIperfServer(topo, 'app1-1', { cpu: st.serverCpu });
            const [r, si] = await withSoftirq(() => iperfTcp(from, host, port, st.seconds, st.clientCpu));
            if (st.warmup) return;
            for (const id of st.rows) rec.add(id, mode.name, id.startsWith('softirq') ? si : r.gbps, window);
            return;
          } catch (e) {
            srv?.stop();
            srv = null;
            if (attempt >= 2) throw e;
          }
        }
      });
    }
  } finally {
    (srv as IperfServer | null)?.stop();
  }
}

/** The many-Services conn/s rows of one mode's window: a warm-up run per family, then the
 *  families' samples in familyOrder. */
async function connRateFamilies(topo: Topology, mode: Mode, cfg: BenchConfig, rec: Recorder, window: number): Promise<void> {
  const row = { 4: 'connrate_big', 6: 'connrate_big6' } as const;
  const once = async (family: 4 | 6): Promise<number> => {
    const w = await wrkConnRate(topo.nsFor(connClient(mode.name)), targets(topo, mode, family).web, cfg.connRepS, undefined, SENDER_RECEIVER_CPUS?.[0]);
    if (w.requests === 0) throw new Error('wrk: no request completed');
    return w.requestsPerSec;
  };
  for (const family of [4, 6] as const) await rec.measure([row[family]], mode.name, async () => { await once(family); });
  for (const family of familyOrder(cfg.connReps)) {
    await rec.measure([row[family]], mode.name, async () => { rec.add(row[family], mode.name, await once(family), window); });
  }
}

/** Optional benches other engineers own: figures when built, a clear reason otherwise. */
async function optionalBench(file: string, fnNames: string[], arg: unknown): Promise<unknown> {
  const path = join(repoRoot, 'dist/test/bench', file);
  let mod: Record<string, unknown>;
  try { mod = await import(pathToFileURL(path).href) as Record<string, unknown>; } catch (e) {
    return { available: false, reason: `not built (${file}: ${(e as Error).message.split('\n')[0]})` };
  }
  const name = fnNames.find((n) => typeof mod[n] === 'function');
  if (!name) return { available: false, reason: `not built (${file} exports none of ${fnNames.join(', ')})` };
  try {
    return { available: true, figures: await (mod[name] as (a: unknown) => Promise<unknown>)(arg) };
  } catch (e) {
    return { available: false, reason: `failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

/**
 * The endpoints' sysctls (client and pods). Short-lived connections by the thousand: a wide
 * port range and TIME_WAIT ports reused. tcp_no_metrics_save (both families): a closed
 * connection's ssthresh, cwnd and RTT are otherwise kept per destination and seed the next
 * connection to it, so a bulk sample would start from whatever the previous one (another
 * mode's, to the same pod in direct) left behind.
 */
export const BENCH_SYSCTLS = ['net.ipv4.ip_local_port_range=1024 65000', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.tcp_no_metrics_save=1'];

async function preparePods(topo: Topology): Promise<void> {
  for (const p of topo.pods) {
    await p.ns.exec('sysctl', ['-q', '-w', ...BENCH_SYSCTLS]);
  }
  await topo.client.ns.exec('sysctl', ['-q', '-w', ...BENCH_SYSCTLS]);
  for (const p of topo.pods.filter((p) => p.node === 'node1')) await startNginx(topo, p.name, NGINX_PORT, SENDER_RECEIVER_CPUS?.[1]);
}

export async function runBench(cfg: BenchConfig, modeFilter?: string[], rowFilter?: string[]): Promise<BenchResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const notes: string[] = [];
  const rec = new Recorder(rowFilter);
  const modes = allModes().filter((m) => !modeFilter || modeFilter.includes(m.name));
  const status: BenchResult['modes'] = {};
  for (const m of modes) {
    const why = m.unavailable();
    status[m.name] = why ? { available: false, reason: why } : { available: true };
  }
  const available = modes.filter((m) => status[m.name].available);
  const extras = !rowFilter;
  const progress = new Progress(plan(available, cfg, rec, extras));
  await sweepStale('bench');
  const topo = await buildTopology({ tag: 'bench', podsPerNode: 3, dualStack: true });
  await wireLike(topo); // same link settings for every mode
  const between: BetweenModes[] = [];
  try {
    await preparePods(topo);
    await runModes(topo, available, cfg, rec, notes, t0, progress, between);
  } finally {
    await topo.teardown();
  }
  notes.push(summarize(between));
  const extra: Record<string, unknown> = { betweenModes: between };
  if (extras) {
    progress.begin();
    extra.datapath = await optionalBench('datapath.js', ['benchDatapath'], { quick: cfg.quick });
    progress.begin();
    extra.maps = await optionalBench('maps.js', ['quick'], cfg.quick ? { entries: 10_000, rounds: 1 } : {});
    progress.begin();
    // --quick: the smallest control-plane run that yields every figure; test/bench/agent.test.ts
    // runs and checks its own --quick variant.
    extra.controlPlane = await optionalBench('agent.js', ['run'], cfg.quick ? { quick: true, services: 100, changes: 20, lbServices: 20, lbChanges: 10 } : {});
  } else {
    notes.push(`rows measured: ${[...rec.rows.keys()].join(', ')} (--rows)`);
  }
  for (const [name, s] of Object.entries(status)) {
    const errs = [...rec.rows.values()].filter((r) => r.errors[name]);
    if (s.available && errs.length > 0 && errs.length === rec.rows.size - (name === 'direct' && rec.rows.has('program_big') ? 1 : 0)) {
      status[name] = { available: false, reason: `failed: ${errs[0].errors[name]}` };
    }
  }
  const rows = [...rec.rows.values()].map((r) => ({
    ...r, median: Object.fromEntries(modes.map((m) => [m.name, median(r.samples[m.name] ?? [])])),
  }));
  const res: BenchResult = { config: cfg, startedAt, durationS: (performance.now() - t0) / 1000, modes: status, rows, extra, notes };
  res.twins = familyTwins(res);
  return res;
}

// ---------- output ----------

function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function renderTable(res: BenchResult): string {
  const names = Object.keys(res.modes);
  const lines: string[] = [];
  const w = 52;
  const head = (title: string) => { lines.push('', title, `${''.padEnd(w)}${names.map((n) => n.padStart(11)).join('')}`); };
  head('absolute (median of repetitions)');
  for (const r of res.rows) {
    lines.push(`${`${r.label} [${r.unit}]`.padEnd(w)}${names.map((n) => (res.modes[n].available ? fmt(r.median[n]) : 'n/a').padStart(11)).join('')}`);
  }
  for (const base of ['direct', 'iptables']) {
    if (!res.modes[base]?.available) continue;
    head(`ratio to ${base} (mode / ${base})`);
    for (const r of res.rows) {
      const b = r.median[base];
      lines.push(`${`${r.label}`.padEnd(w)}${names.map((n) => {
        const v = r.median[n];
        return (res.modes[n].available && v !== null && b ? fmt(v / b) : '-').padStart(11);
      }).join('')}`);
    }
  }
  lines.push(...renderTwins(res));
  lines.push('');
  for (const [n, s] of Object.entries(res.modes)) if (!s.available) lines.push(`mode ${n}: not available: ${s.reason}`);
  for (const r of res.rows) for (const [n, e] of Object.entries(r.errors)) lines.push(`${r.id} ${n}: ${e}`);
  // the steps between windows are summed up in a note; each one is in the JSON
  for (const [k, v] of Object.entries(res.extra)) if (k !== 'betweenModes') lines.push(`${k}: ${JSON.stringify(v)}`);
  for (const n of res.notes) lines.push(`note: ${n}`);
  lines.push(`total ${res.durationS.toFixed(0)} s`);
  return lines.join('\n');
}

type Samples = Pick<Row, 'samples' | 'windows'>;

/**
 * One mode's IPv6 figure against its IPv4 one, taken within the same windows (a mode's setup
 * to teardown in one round): per window both families sampled in, the geometric mean of its
 * IPv6 samples over that of its IPv4 ones; the median of those. null when no window has both.
 */
export function familyRatio(r4: Samples, r6: Samples, mode: string): { ratio: number; windows: number; perWindow: Array<{ window: number; ratio: number }> } | null {
  const [w4, w6] = [r4.windows?.[mode], r6.windows?.[mode]];
  if (!w4 || !w6) return null;
  const gmean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
  const inWindow = (r: Samples, w: number[], id: number) => (r.samples[mode] ?? []).filter((v, i) => w[i] === id && v > 0);
  const perWindow: Array<{ window: number; ratio: number }> = [];
  for (const id of new Set(w4)) {
    const [a, b] = [inWindow(r4, w4, id), inWindow(r6, w6, id)];
    if (a.length && b.length) perWindow.push({ window: id, ratio: gmean(b) / gmean(a) });
  }
  const m = median(perWindow.map((x) => x.ratio));
  return m === null ? null : { ratio: m, windows: perWindow.length, perWindow };
}

export interface FamilyTwin {
  row: string; mode: string;
  /** the mode's median over direct's, per family */
  ratio4: number; ratio6: number;
  /** IPv6 ratio to direct over the IPv4 one, less 1: paired within windows when the samples
   *  carry them (see familyTwins), else from the medians (ratio6 / ratio4 - 1) */
  diff: number;
  /** the paired figures: the mode's and direct's IPv6/IPv4 within their windows, how many windows;
   *  perWindow: each window both were sampled in (round), the mode's IPv6/IPv4 and direct's
   *  in it and diff = mode / direct - 1 (shown only: the judgment stays on the medians above) */
  paired: { mode: number; direct: number; windows: number; perWindow: Array<{ window: number; mode: number; direct: number; diff: number }> } | null;
  met: boolean;
}

/**
 * Each IPv6 row's ratio to direct beside its IPv4 twin's, per mode: the target is the IPv6
 * ratio within 5% of the IPv4 one (|r6 / r4 - 1| <= 0.05).
 * r6 / r4 = (m6 / d6) / (m4 / d4) = (m6 / m4) / (d6 / d4): the mode's IPv6-to-IPv4 figure over
 * direct's. Modes are measured at different times, and on a shared host the load of a window
 * moved single TCP bulk figures 2-4x (one loaded run: iptables 1.5 to 5.8 Gbit/s) while both
 * families within a window moved together. So where samples carry their window, each mode's
 * IPv6/IPv4 is taken within its own windows (familyRatio) and the window's load cancels; the
 * medians' ratios are still shown.
 */
export function familyTwins(res: BenchResult): FamilyTwin[] {
  const out: FamilyTwin[] = [];
  const byId = new Map(res.rows.map((r) => [r.id, r]));
  for (const [id4, id6] of FAMILY_TWINS) {
    const [r4, r6] = [byId.get(id4), byId.get(id6)];
    if (!r4 || !r6) continue;
    const direct = familyRatio(r4, r6, 'direct');
    for (const mode of Object.keys(res.modes)) {
      if (mode === 'direct') continue;
      const [a, b, c, d] = [r4.median[mode], r4.median.direct, r6.median[mode], r6.median.direct];
      if (a == null || !b || c == null || !d) continue;
      const [ratio4, ratio6] = [a / b, c / d];
      const own = familyRatio(r4, r6, mode);
      const perWindow = own && direct ? own.perWindow.flatMap((o) => {
        const d = direct.perWindow.find((x) => x.window === o.window);
        return d ? [{ window: o.window, mode: o.ratio, direct: d.ratio, diff: o.ratio / d.ratio - 1 }] : [];
      }) : [];
      const paired = own && direct ? { mode: own.ratio, direct: direct.ratio, windows: Math.min(own.windows, direct.windows), perWindow } : null;
      const diff = paired ? paired.mode / paired.direct - 1 : ratio6 / ratio4 - 1;
      out.push({ row: id6, mode, ratio4, ratio6, diff, paired, met: Math.abs(diff) <= TWIN_TOLERANCE });
    }
  }
  return out;
}

function renderTwins(res: BenchResult): string[] {
  const twins = familyTwins(res);
  if (twins.length === 0) return [];
  const lines = ['', `IPv6 ratio to direct against the IPv4 one (target: within ${TWIN_TOLERANCE * 100}%; paired: IPv6/IPv4 within each window, the mode's over direct's; per window: each round's own, the mode's over direct's less 1)`];
  for (const t of twins) {
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
    const each = t.paired && t.paired.perWindow.length ? `; per window: ${t.paired.perWindow.map((w) => `${w.window + 1}: ${pct(w.diff)}`).join(', ')}` : '';
    const p = t.paired ? `  paired: IPv6/IPv4 ${fmt(t.paired.mode)} vs direct ${fmt(t.paired.direct)} (${t.paired.windows} window${t.paired.windows === 1 ? '' : 's'}${each})` : '';
    lines.push(`${`${t.row} ${t.mode}`.padEnd(32)}IPv4 ${fmt(t.ratio4).padStart(6)}  IPv6 ${fmt(t.ratio6).padStart(6)}  ${(t.diff * 100).toFixed(1).padStart(6)}%  ${t.met ? 'met' : 'NOT met'}${p}`);
  }
  return lines;
}

function parseArgs(argv: string[]): { quick: boolean; json: string; modes?: string[]; rows?: string[]; rounds?: number; readme: boolean; readmeFrom?: string } {
  let quick = false, readme = false, json = join(repoRoot, 'tmp/bench/bench-results.json'), modes: string[] | undefined, rows: string[] | undefined;
  let readmeFrom: string | undefined, rounds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--readme') readme = true;
    else if (a === '--readme-from' && argv[i + 1]) readmeFrom = resolve(argv[++i]);
    else if (a === '--json' && argv[i + 1]) json = resolve(argv[++i]);
    else if (a === '--modes' && argv[i + 1]) modes = argv[++i].split(',');
    else if (a === '--rows' && argv[i + 1]) rows = argv[++i].split(',');
    else if (a === '--rounds' && argv[i + 1]) {
      rounds = Number(argv[++i]);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error(`bench: --rounds takes a whole number 1..10, not '${argv[i]}'`);
    } else throw new Error(`bench: unknown flag '${a}' (flags: --quick, --json FILE, --modes direct,iptables,nftables,xlb, --rows ID,ID, --rounds N, --readme, --readme-from RESULTS.json)`);
  }
  return { quick, json, modes, rows, rounds, readme, readmeFrom };
}

const README_START = '<!-- bench:start (written by npm run bench -- --readme; do not edit by hand) -->';
const README_END = '<!-- bench:end -->';

/** The machine a run measured, in words, for the README. */
async function machine(): Promise<string> {
  const cpu = (await readFile('/proc/cpuinfo', 'utf8')).match(/^model name\s*:\s*(.+)$/m)?.[1] ?? 'unknown CPU';
  return `${os.cpus().length} x ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, node ${process.version}`;
}

/** Replace the README's bench section with this run's table (figures come only from the run). */
export async function writeReadme(res: BenchResult, file = join(repoRoot, 'README.md')): Promise<void> {
  const text = await readFile(file, 'utf8');
  const a = text.indexOf(README_START);
  const b = text.indexOf(README_END);
  if (a < 0 || b < a) throw new Error(`${file} has no bench section markers`);
  const body = [README_START, '',
    `Run of ${res.startedAt} (${res.config.quick ? 'quick' : 'full'}, ${res.durationS.toFixed(0)} s) on ${await machine()}:`, '',
    '```', renderTable(res).trim(), '```', '', README_END].join('\n');
  await writeFile(file, text.slice(0, a) + body + text.slice(b + README_END.length));
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.readmeFrom) {
    // The README section from a saved run's JSON (the run's own figures, re-rendered).
    await writeReadme(JSON.parse(await readFile(args.readmeFrom, 'utf8')) as BenchResult);
    console.log(`README.md: bench section rewritten from ${args.readmeFrom}`);
    return 0;
  }
  if (!isRoot()) { console.error('bench: needs root (network namespaces, BPF)'); return 1; }
  // --rounds: more windows per mode for the small rows (the bulk twins' per-window spread is a
  // few percent on a 2-core host: more windows, a tighter median)
  const cfg = config(args.quick);
  const res = await runBench(args.rounds ? { ...cfg, reps: args.rounds } : cfg, args.modes, args.rows);
  console.log(renderTable(res));
  await mkdir(dirname(args.json), { recursive: true });
  await writeFile(args.json, JSON.stringify(res, null, 2) + '\n');
  console.log(`results: ${args.json}`);
  if (args.readme) {
    await writeReadme(res);
    console.log('README.md: bench section rewritten from this run');
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e: Error) => { console.error(`bench: ${e.message}`); process.exitCode = 1; });
}
