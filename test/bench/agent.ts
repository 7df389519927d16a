// Control-plane benchmark (DESIGN §8): cold programming of N ClusterIP Services x E endpoints
// through translate() + the Reconciler into real pinned maps, the latency from one
// EndpointSlice change to its map write, and the agent-like process's RSS, beside
// iptables-restore of the same Services in kube-proxy's rule layout, in one run.
// A LoadBalancer variant measures the Maglev path (NodePort and LB IP external frontends
// each need a table in the maglev map-in-map), programmed the three ways an agent can:
// one apply() after another, a KeyQueue of concurrency 4, and applyMany() batches.
// Run: node dist/test/bench/agent.js [--quick]; other benches call run(). --cold-start-only: the
// agent's cold start rows alone; --source=manifests|kube: one of them without the baselines.
//
// The xlb side runs in a child process so its RSS is its own (the parent also builds the
// iptables rules). iptables-restore runs only inside a namespace this bench creates.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { loadStatusProto } from '../../src/api/proto.js';
import type { StatusClient } from '../../src/api/generated/xlb/v1/Status.js';
import type { StatusInfo__Output } from '../../src/api/generated/xlb/v1/StatusInfo.js';
import { fileURLToPath } from 'node:url';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { AGENT_NODE_FLAGS, agentEnv } from '../../src/agent/node-flags.js';
import { BpfMap, loadObject, possibleCpus } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { Reconciler, mapsOf, type ReconcileResult } from '../../src/datapath/reconcile.js';
import { translate } from '../../src/model/translate.js';
import { MAGLEV_DEFAULT_M } from '../../src/model/maglev.js';
import type { NodeInfo, ServiceSpec } from '../../src/model/types.js';
import { KeyQueue } from '../../src/sources/queue.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { NetnsSet, isRoot, stopProcess, type Netns } from '../helpers/netns.js';
import { applyBaseline, type Baseline } from './kubeproxy.js';
import { fillerIP } from './services.js';

const here = fileURLToPath(import.meta.url);
const repoRoot = resolve(here, '../../../..');
const NODE: NodeInfo = { name: 'bench-node', addresses: ['192.0.2.10'], labels: {} };

export const TARGETS = { coldRatioMax: 0.5, changeP99MsMax: 50, rssMbMax: 250 } as const;
/** Issue 14: the whole agent from cold through the manifests source. */
export const COLD_START_TARGETS = { iptablesRatio: 0.5, nftRatio: 0.2, rssMb: 150, changeP99Ms: 10 } as const;

export interface AgentBenchOptions {
  quick?: boolean;
  services?: number;
  endpoints?: number;
  changes?: number;
  /** Maglev table size (the agent's default) */
  maglevM?: number;
  /** LoadBalancer variant: Services (0 skips it), changes */
  lbServices?: number;
  lbChanges?: number;
  /** how the ClusterIP Services are programmed (default batch: one applyMany, as a full sync) */
  clusterMode?: Mode;
  lbModes?: Mode[];
}

export type Kind = 'clusterip' | 'loadbalancer';
/** serial: await apply() per Service; queue: KeyQueue (concurrency 4) of apply(); batch: applyMany() */
export type Mode = 'serial' | 'queue' | 'batch';
export const LB_MODES: Mode[] = ['serial', 'queue', 'batch'];

export interface XlbSide {
  services: number;
  endpointsPerService: number;
  frontends: number;
  coldMs: number;
  changes: number;
  changeP50Ms: number;
  changeP99Ms: number;
  changeMaxMs: number;
  /** RSS after cold programming, and the peak (VmHWM) over the whole run */
  rssMb: number;
  peakRssMb: number;
  failed: number;
  /** longest event-loop stall during cold programming (synchronous syscalls show here) */
  coldLoopMaxMs: number;
}

export interface LbFigures {
  services: number;
  endpointsPerService: number;
  frontends: number;
  /** inner Maglev tables installed (external NodePort + LB IP frontends) */
  maglevFrontends: number;
  cold: Record<Mode, { ms: number; perServiceMs: number; loopMaxMs: number }>;
  changes: number;
  changeP50Ms: number;
  changeP99Ms: number;
  failed: number;
}

export interface AgentBenchFigures extends XlbSide {
  /** how the cold ClusterIP Services were programmed */
  coldMode: Mode;
  iptablesRestoreMs: number;
  /** xlb cold programming time / iptables-restore time */
  coldRatio: number;
  targets: { coldRatio: boolean; changeP99: boolean; rss: boolean };
  loadBalancer?: LbFigures;
  coldStart: ColdStartFigures;
}

// ---- the Services (the same objects for both sides) ----

function endpointAddr(n: number): string {
  return `10.${64 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

function serviceObj(i: number): V1Service {
  const ip = fillerIP(i);
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { namespace: 'bench', name: `svc-${i}` },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
  };
}

const lbIP = (i: number): string => `198.18.${i >> 8}.${i & 255}`;

function lbServiceObj(i: number): V1Service {
  const ip = fillerIP(i);
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { namespace: 'bench', name: `svc-${i}` },
    spec: {
      type: 'LoadBalancer', clusterIP: ip, clusterIPs: [ip],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30000 + i }],
    },
    status: { loadBalancer: { ingress: [{ ip: lbIP(i) }] } },
  };
}

function serviceOf(kind: Kind, i: number): V1Service {
  return kind === 'loadbalancer' ? lbServiceObj(i) : serviceObj(i);
}

function sliceObj(i: number, endpoints: number, notReady = -1): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { namespace: 'bench', name: `svc-${i}-1`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Array.from({ length: endpoints }, (_, j) => ({
      addresses: [endpointAddr(i * endpoints + j)],
      conditions: { ready: j !== notReady, serving: j !== notReady, terminating: false },
      nodeName: j % 2 ? 'node-b' : NODE.name,
      targetRef: { kind: 'Pod', namespace: 'bench', name: `svc-${i}-${j}` },
    })),
  };
}

function specOf(svc: V1Service, slices: V1EndpointSlice[]): ServiceSpec {
  const r = translate(svc, slices, NODE, { nodeName: NODE.name });
  if (!r.ok) throw new Error(`translate ${svc.metadata!.name}: ${r.skipped}`);
  return r.service;
}

interface Sizes { services: number; endpoints: number; changes: number; maglevM: number; lbServices: number; lbChanges: number }

function sizes(o: AgentBenchOptions): Sizes {
  return {
    services: o.services ?? (o.quick ? 500 : 10_000),
    endpoints: o.endpoints ?? 10,
    changes: o.changes ?? (o.quick ? 100 : 1_000),
    maglevM: o.maglevM ?? MAGLEV_DEFAULT_M,
    lbServices: o.lbServices ?? (o.quick ? 100 : 1_000),
    lbChanges: o.lbChanges ?? (o.quick ? 50 : 200),
  };
}

/** What one child run does: which Services, how they are programmed, how many changes. */
interface ChildRun { kind: Kind; mode: Mode; services: number; endpoints: number; changes: number; maglevM: number }

// ---- the xlb side (child process) ----

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function peakRssMb(): number {
  // VmHWM: the high-water mark of this process's resident set.
  const m = /VmHWM:\s+(\d+) kB/.exec(readStatus());
  return m ? Number(m[1]) / 1024 : 0;
}

function readStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

/** A small deterministic PRNG, so runs change the same Services in the same order. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

/** Cold programming of every Service the way `mode` says; returns results in Service order. */
async function programAll(rec: Reconciler, mode: Mode, specs: ServiceSpec[]): Promise<ReconcileResult[]> {
  if (mode === 'serial') {
    const out: ReconcileResult[] = [];
    for (const s of specs) out.push(await rec.apply(s.key, s));
    return out;
  }
  // As the agent's full sync does: every Service in one call (the reconciler chunks it).
  if (mode === 'batch') return rec.applyMany(specs.map((s) => [s.key, s] as [string, ServiceSpec]));
  const byKey = new Map(specs.map((s) => [s.key, s]));
  const results = new Map<string, ReconcileResult>();
  const q = new KeyQueue<string>(async (key) => { results.set(key, await rec.apply(key, byKey.get(key))); }, { concurrency: 4 });
  for (const s of specs) q.add(s.key);
  await q.idle();
  q.stop();
  return specs.map((s) => results.get(s.key)!);
}

async function xlbSide(pinPath: string, o: ChildRun): Promise<XlbSide & { maglevFrontends: number }> {
  const services = Array.from({ length: o.services }, (_, i) => serviceOf(o.kind, i));
  const slices = Array.from({ length: o.services }, (_, i) => [sliceObj(i, o.endpoints)]);
  const obj = await loadObject(resolve(repoRoot, 'build/bpf/xlb.o'), { pinPath });
  try {
    C.verifyLayout(obj);
    const rec = new Reconciler(mapsOf(obj), { maglevM: o.maglevM, cpus: possibleCpus() });
    await rec.adoptPinned();
    let failed = 0;
    let frontends = 0;

    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const t0 = performance.now();
    const specs = services.map((s, i) => specOf(s, slices[i]));
    for (const r of await programAll(rec, o.mode, specs)) {
      if (!r.ok) failed++;
      frontends += r.frontends;
    }
    const coldMs = performance.now() - t0;
    loop.disable();
    rec.prune();
    const rssMb = process.memoryUsage().rss / 2 ** 20;
    const inMap = obj.map(C.MAP.services).keys().length;
    if (inMap !== frontends) throw new Error(`services map holds ${inMap} entries, reconciler reported ${frontends}`);
    const maglevFrontends = obj.map(C.MAP.maglev).keys().length;

    // Each change flips one endpoint of one Service to not ready (or back).
    const rand = rng(42);
    const lat: number[] = [];
    for (let n = 0; n < o.changes; n++) {
      const i = Math.floor(rand() * o.services);
      const flip = Math.floor(rand() * o.endpoints);
      const start = performance.now();
      slices[i] = [sliceObj(i, o.endpoints, slices[i][0].endpoints.every((e) => e.conditions!.ready) ? flip : -1)];
      const spec = specOf(services[i], slices[i]);
      const r = await rec.apply(spec.key, spec);
      lat.push(performance.now() - start);
      if (!r.ok) failed++;
    }
    lat.sort((a, b) => a - b);
    return {
      services: o.services, endpointsPerService: o.endpoints, frontends, maglevFrontends, coldMs: round(coldMs),
      changes: o.changes, changeP50Ms: round(percentile(lat, 50)), changeP99Ms: round(percentile(lat, 99)),
      changeMaxMs: round(lat[lat.length - 1] ?? 0), rssMb: round(rssMb), peakRssMb: round(peakRssMb()), failed,
      coldLoopMaxMs: round(loop.max / 1e6),
    };
  } finally {
    obj.close();
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** Runs xlbSide in a child node process (its own RSS); the pins go with the directory. */
async function xlbInChild(o: ChildRun, extraNodeArgs: string[] = []): Promise<XlbSide & { maglevFrontends: number }> {
  const pinPath = `/sys/fs/bpf/xlbt-agentbench-${process.pid}`;
  rmSync(pinPath, { recursive: true, force: true });
  mkdirSync(pinPath, { recursive: true });
  try {
    // The agent's own V8 flags, so the RSS figure is the agent's.
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...extraNodeArgs, here, '--child', JSON.stringify({ pinPath, o })], {
      stdio: ['ignore', 'pipe', 'inherit'], env: agentEnv(),
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    const code = await new Promise<number | null>((res) => child.on('close', res));
    clearTimeout(timer);
    if (code !== 0) throw new Error(`xlb bench child exited with ${code}: ${out.trim()}`);
    return JSON.parse(out.trim().split('\n').pop()!) as XlbSide & { maglevFrontends: number };
  } finally {
    rmSync(pinPath, { recursive: true, force: true });
  }
}

/** The LoadBalancer variant: one cold child per mode; change latency from the batch one. */
async function loadBalancerSide(o: Sizes, modes: Mode[]): Promise<LbFigures> {
  const cold = {} as LbFigures['cold'];
  let last: (XlbSide & { maglevFrontends: number }) | undefined;
  let failed = 0;
  for (const mode of modes) {
    const changes = mode === modes[modes.length - 1] ? o.lbChanges : 0;
    last = await xlbInChild({ kind: 'loadbalancer', mode, services: o.lbServices, endpoints: o.endpoints, changes, maglevM: o.maglevM });
    cold[mode] = { ms: last.coldMs, perServiceMs: round(last.coldMs / o.lbServices), loopMaxMs: last.coldLoopMaxMs };
    failed += last.failed;
  }
  return {
    services: o.lbServices, endpointsPerService: o.endpoints, frontends: last!.frontends, maglevFrontends: last!.maglevFrontends,
    cold, changes: o.lbChanges, changeP50Ms: last!.changeP50Ms, changeP99Ms: last!.changeP99Ms, failed,
  };
}

// ---- the iptables side ----

async function baselineMs(kind: Baseline, o: Sizes): Promise<number> {
  const specs = Array.from({ length: o.services }, (_, i) => specOf(serviceObj(i), [sliceObj(i, o.endpoints)]));
  const set = new NetnsSet('agentbench');
  try {
    const ns = await set.add('node');
    return await applyBaseline(kind, ns, specs);
  } finally {
    await set.teardown();
  }
}

// ---- the whole agent from cold, through the manifests source ----

export interface ColdStartFigures {
  services: number;
  endpointsPerService: number;
  /** agent process start -> every Service programmed (status: synced, no progress left) */
  startMs: number;
  /** the agent's RSS two seconds after that */
  rssMb: number;
  /** GetStatus calls answered while starting (the API was polled every 50 ms) */
  statusPolls: number;
  nftMs: number;
  /** the same Services through the kube source (a fake API server in the agent's namespace) */
  kube?: { startMs: number; rssMb: number; changes: number; changeP50Ms: number; changeP99Ms: number };
}

type Source = 'manifests' | 'kube';

const nodeDoc = (): unknown => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: NODE.name }, status: { addresses: [{ type: 'InternalIP', address: NODE.addresses[0] }] } });

/**
 * `xlb agent` itself (not the reconciler alone) in a namespace of its own, reading the same
 * Services from a manifests folder (one YAML file) or from a fake API server in that namespace,
 * polled over its status API until done.
 */
export async function coldStartThroughSource(o: Sizes, source: Source): Promise<{ startMs: number; rssMb: number; statusPolls: number; changeP99Ms?: number; changeP50Ms?: number }> {
  const work = mkdtempSync(join(tmpdir(), 'xlb-coldstart-'));
  const set = new NetnsSet('coldstart');
  const socket = join(work, 'xlb.sock');
  // Started with extra node flags (--cpu-prof): stopped with SIGTERM, so it writes its profile (teardown SIGKILLs).
  let profiled: ChildProcess | undefined;
  try {
    const ns = await set.add('node');
    let sourceArgs: string[];
    let send: Send | undefined;
    if (source === 'manifests') {
      const docs: unknown[] = [nodeDoc()];
      for (let i = 0; i < o.services; i++) docs.push(serviceObj(i), sliceObj(i, o.endpoints));
      mkdirSync(join(work, 'manifests'));
      writeFileSync(join(work, 'manifests', 'services.yaml'), docs.map((d) => stringify(d)).join('---\n'));
      sourceArgs = ['--source', 'manifests', '--manifests', join(work, 'manifests')];
    } else {
      const api = await fakeApiServerWith(set, ns, o);
      send = api.send;
      sourceArgs = ['--source', 'kube', '--kubeconfig', api.kubeconfig];
    }
    const pinPath = `/sys/fs/bpf/xlbt-coldstart-${process.pid}`;
    const t0 = performance.now();
    // XLB_BENCH_AGENT_NODE_ARGS: extra node flags for the agent, e.g. --cpu-prof while profiling.
    const extra = process.env.XLB_BENCH_AGENT_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    // XLB_BENCH_HEAP_SNAPSHOT=DIR: a heap snapshot of the agent at steady state (after the RSS reading) into DIR.
    if (process.env.XLB_BENCH_HEAP_SNAPSHOT) extra.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${work}`);
    const agent = set.track(ns.spawn(process.execPath, [...AGENT_NODE_FLAGS, ...extra, resolve(repoRoot, 'dist/src/cli/main.js'), 'agent',
      ...sourceArgs, '--node', NODE.name, '--devices', 'lo',
      '--pin-path', pinPath, '--api-socket', socket, '--log-level', 'warn',
      '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249'], { env: agentEnv() }));
    const client = () => new (loadStatusProto().grpcObj.xlb.v1.Status)(`unix:${socket}`, credentials.createInsecure());
    if (extra.length) profiled = agent;
    let polls = 0;
    for (;;) {
      if (agent.exitCode !== null) throw new Error(`agent exited with ${agent.exitCode}`);
      if (performance.now() - t0 > 15 * 60_000) throw new Error('agent not programmed in 15 minutes');
      const s = existsSync(socket) ? await statusOnce(client()) : undefined;
      if (s) polls++;
      if (s && s.source?.synced && !s.progress && Number(s.lastSyncMs) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const startMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'));
    if (process.env.XLB_BENCH_HEAP_SNAPSHOT) {
      const dir = process.env.XLB_BENCH_HEAP_SNAPSHOT;
      // where the RSS is: heap spaces (the agent's metrics) and anonymous vs file-backed pages
      writeFileSync(`${dir}/${source}.smaps`, readFileSync(`/proc/${agent.pid}/smaps_rollup`, 'utf8'));
      const metrics = (await ns.exec('curl', ['-s', 'http://127.0.0.1:10249/metrics'])).stdout;
      writeFileSync(`${dir}/${source}.metrics`, metrics.split('\n').filter((l) => /^(nodejs_heap|process_resident|nodejs_external)/.test(l)).join('\n'));
      await heapSnapshot(agent.pid!, work, `${dir}/${source}.heapsnapshot`);
    }
    const lat = send ? await changeLatencies(agent.pid!, pinPath, send, o, () => statusOnce(client())) : undefined;
    return {
      startMs: round(startMs), rssMb: rss ? round(Number(rss[1]) / 1024) : 0, statusPolls: polls,
      ...(lat ? { changeP50Ms: round(percentile(lat, 50)), changeP99Ms: round(percentile(lat, 99)) } : {}),
    };
  } finally {
    if (profiled) await stopProcess(profiled);
    await set.teardown();
    rmSync(work, { recursive: true, force: true });
  }
}


/** Signals the agent (started with --heapsnapshot-signal) and moves the snapshot it writes to `to`. */
async function heapSnapshot(pid: number, work: string, to: string): Promise<void> {
  const before = new Set(readdirSync(work));
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const f = readdirSync(work).find((n) => n.endsWith('.heapsnapshot') && !before.has(n));
    // the agent writes it synchronously: its size stops changing when it is done
    if (f && statSync(join(work, f)).size > 0) {
      const a = statSync(join(work, f)).size;
      await new Promise((r) => setTimeout(r, 1000));
      if (statSync(join(work, f)).size === a) { copyFileSync(join(work, f), to); return; }
    }
  }
  throw new Error('no heap snapshot within 5 minutes');
}

type Send = (resource: string, obj: unknown) => Promise<void>;

/** The wire-level fake API server in `ns`, filled with the bench's Services: its kubeconfig, and a way to apply more. */
async function fakeApiServerWith(set: NetnsSet, ns: Netns, o: Sizes): Promise<{ kubeconfig: string; send: Send }> {
  const api = set.track(ns.spawn(process.execPath, [resolve(here, '../../helpers/fake-apiserver-main.js')], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: api.stdout! });
  const replies: string[] = [];
  let wake: (() => void) | undefined;
  lines.on('line', (l) => { replies.push(l); wake?.(); });
  const next = async (): Promise<string> => {
    while (replies.length === 0) await new Promise<void>((r) => { wake = r; });
    return replies.shift()!;
  };
  const { kubeconfig } = JSON.parse(await next()) as { kubeconfig: string };
  const cmds = [JSON.stringify({ op: 'apply', resource: 'nodes', obj: nodeDoc() })];
  for (let i = 0; i < o.services; i++) {
    cmds.push(JSON.stringify({ op: 'apply', resource: 'services', obj: serviceObj(i) }));
    cmds.push(JSON.stringify({ op: 'apply', resource: 'endpointslices', obj: sliceObj(i, o.endpoints) }));
  }
  api.stdin!.write(cmds.join('\n') + '\n');
  const ok = async (): Promise<void> => {
    const r = await next();
    if (r !== 'ok') throw new Error(`fake API server: ${r}`);
  };
  for (let i = 0; i < cmds.length; i++) await ok();
  return { kubeconfig, send: async (resource, obj) => { api.stdin!.write(JSON.stringify({ op: 'apply', resource, obj }) + '\n'); await ok(); } };
}

/**
 * EndpointSlice change -> map write through the kube source, while the API is polled: each
 * change flips one endpoint of one Service to not ready (or back) on the fake API server and
 * waits until the Service's services entry shows the new backend count.
 */
async function changeLatencies(agentPid: number, pinPath: string, send: Send, o: Sizes, poll: () => Promise<unknown>): Promise<number[]> {
  // `ip netns exec` gave the agent a mount namespace of its own: its bpffs is reached through /proc.
  const m = BpfMap.openPinned(join(`/proc/${agentPid}/root`, pinPath, C.MAP.services));
  let polling = true;
  const poller = (async () => { while (polling) { await poll(); await new Promise((r) => setTimeout(r, 50)); } })();
  try {
    const rand = rng(42);
    const notReady = new Set<number>();
    const lat: number[] = [];
    for (let n = 0; n < o.changes; n++) {
      const i = Math.floor(rand() * o.services);
      const flip = Math.floor(rand() * o.endpoints);
      const was = notReady.has(i);
      if (was) notReady.delete(i); else notReady.add(i);
      const want = was ? o.endpoints : o.endpoints - 1;
      const key = C.encodeSvcKey({ addr: fillerIP(i), port: 80, proto: 'TCP', scope: 'internal' });
      const t0 = performance.now();
      const sent = send('endpointslices', sliceObj(i, o.endpoints, was ? -1 : flip));
      for (;;) {
        const v = m.lookup(key);
        if (v && C.decodeSvcValue(v).count === want) break;
        if (performance.now() - t0 > 10_000) throw new Error(`svc-${i}: no map write within 10 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
      lat.push(performance.now() - t0);
      await sent;
    }
    return lat.sort((a, b) => a - b);
  } finally {
    polling = false;
    await poller;
    m.close();
  }
}

function statusOnce(c: StatusClient): Promise<StatusInfo__Output | undefined> {
  return new Promise((res) => {
    c.GetStatus({}, { deadline: Date.now() + 5000 }, (err, r) => {
      c.close();
      res(err ? undefined : r);
    });
  });
}

// ---- entry points ----

export async function run(opts: AgentBenchOptions = {}): Promise<AgentBenchFigures> {
  if (!isRoot()) throw new Error('the agent bench needs root (BPF maps, network namespaces)');
  const o = sizes(opts);
  const prof = process.env.XLB_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.XLB_BENCH_CPU_PROF}`] : [];
  const coldMode = opts.clusterMode ?? 'batch';
  const { maglevFrontends: _, ...xlb } = await xlbInChild({
    kind: 'clusterip', mode: coldMode, services: o.services, endpoints: o.endpoints, changes: o.changes, maglevM: o.maglevM,
  }, prof);
  const ipt = await baselineMs('iptables', o);
  const coldRatio = xlb.coldMs / ipt;
  const coldStart = await coldStartFigures(o);
  const loadBalancer = o.lbServices > 0 ? await loadBalancerSide(o, opts.lbModes ?? LB_MODES) : undefined;
  return {
    ...xlb,
    coldMode,
    iptablesRestoreMs: round(ipt),
    coldRatio: Math.round(coldRatio * 1000) / 1000,
    targets: {
      coldRatio: coldRatio <= TARGETS.coldRatioMax,
      changeP99: xlb.changeP99Ms <= TARGETS.changeP99MsMax,
      rss: xlb.rssMb <= TARGETS.rssMbMax,
    },
    loadBalancer,
    coldStart,
  };
}

const ok = (b: boolean): string => (b ? 'met' : 'MISSED');

function coldStartRows(cs: ColdStartFigures, iptablesRestoreMs: number): Array<[string, string, string]> {
  const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '-');
  return [
    [`xlb agent start -> ${cs.services} Services x ${cs.endpointsPerService} programmed (manifests source, API polled: ${cs.statusPolls} answers)`, `${cs.startMs.toFixed(0)} ms`, ''],
    ['  / iptables-restore, same Services', ratio(cs.startMs, iptablesRestoreMs), `<= ${COLD_START_TARGETS.iptablesRatio}: ${ok(cs.startMs / iptablesRestoreMs <= COLD_START_TARGETS.iptablesRatio)}`],
    [`  / nft -f, same Services (${cs.nftMs.toFixed(0)} ms)`, ratio(cs.startMs, cs.nftMs), `<= ${COLD_START_TARGETS.nftRatio}: ${ok(cs.startMs / cs.nftMs <= COLD_START_TARGETS.nftRatio)}`],
    ['  agent RSS at steady state (through the manifests source)', `${cs.rssMb.toFixed(0)} MB`, `<= ${COLD_START_TARGETS.rssMb} MB: ${ok(cs.rssMb <= COLD_START_TARGETS.rssMb)}`],
    ...(cs.kube ? [
      [`xlb agent start -> programmed (kube source, fake API server)`, `${cs.kube.startMs.toFixed(0)} ms`, ''],
      ['  / iptables-restore, same Services', ratio(cs.kube.startMs, iptablesRestoreMs), `<= ${COLD_START_TARGETS.iptablesRatio}: ${ok(cs.kube.startMs / iptablesRestoreMs <= COLD_START_TARGETS.iptablesRatio)}`],
      ['  agent RSS at steady state (through the kube source)', `${cs.kube.rssMb.toFixed(0)} MB`, `<= ${COLD_START_TARGETS.rssMb} MB: ${ok(cs.kube.rssMb <= COLD_START_TARGETS.rssMb)}`],
      [`  EndpointSlice change on the API server -> map write, p50 / p99 (${cs.kube.changes} changes, API polled)`, `${cs.kube.changeP50Ms} / ${cs.kube.changeP99Ms} ms`,
        `p99 <= ${COLD_START_TARGETS.changeP99Ms} ms: ${ok(cs.kube.changeP99Ms <= COLD_START_TARGETS.changeP99Ms)}`],
    ] as Array<[string, string, string]> : []),
  ];
}

async function coldStartFigures(o: Sizes): Promise<ColdStartFigures> {
  const m = await coldStartThroughSource(o, 'manifests');
  const nftMs = round(await baselineMs('nftables', o));
  const k = await coldStartThroughSource(o, 'kube');
  return { services: o.services, endpointsPerService: o.endpoints, ...m, nftMs, kube: { startMs: k.startMs, rssMb: k.rssMb, changes: o.changes, changeP50Ms: k.changeP50Ms!, changeP99Ms: k.changeP99Ms! } };
}

/** Only the whole-agent start-up row and its two baselines (`--cold-start-only`). */
export async function runColdStart(opts: AgentBenchOptions = {}): Promise<{ coldStart: ColdStartFigures; iptablesRestoreMs: number }> {
  if (!isRoot()) throw new Error('the agent bench needs root (BPF maps, network namespaces)');
  const o = sizes(opts);
  const iptablesRestoreMs = round(await baselineMs('iptables', o));
  return { coldStart: await coldStartFigures(o), iptablesRestoreMs };
}

export function coldStartTable(f: { coldStart: ColdStartFigures; iptablesRestoreMs: number }): string {
  return alignRows([['iptables-restore, same Services (kube-proxy layout)', `${f.iptablesRestoreMs.toFixed(0)} ms`, ''], ...coldStartRows(f.coldStart, f.iptablesRestoreMs)]);
}

function alignRows(rows: Array<[string, string, string]>): string {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`.trimEnd()).join('\n');
}

export function table(f: AgentBenchFigures): string {
  const rows: Array<[string, string, string]> = [
    [`cold: ${f.services} Services x ${f.endpointsPerService} endpoints (${f.frontends} frontends), ${f.coldMode}`, `${f.coldMs.toFixed(0)} ms`, ''],
    ['iptables-restore, same Services (kube-proxy layout)', `${f.iptablesRestoreMs.toFixed(0)} ms`, ''],
    ['cold xlb / iptables-restore', `${f.coldRatio}`, `<= ${TARGETS.coldRatioMax}: ${ok(f.targets.coldRatio)}`],
    [`EndpointSlice change -> map write, p50 (${f.changes} changes)`, `${f.changeP50Ms} ms`, ''],
    ['EndpointSlice change -> map write, p99', `${f.changeP99Ms} ms`, `<= ${TARGETS.changeP99MsMax} ms: ${ok(f.targets.changeP99)}`],
    ['agent RSS after cold programming (peak)', `${f.rssMb.toFixed(0)} MB (${f.peakRssMb.toFixed(0)} MB)`, `<= ${TARGETS.rssMbMax} MB: ${ok(f.targets.rss)}`],
  ];
  rows.push(...coldStartRows(f.coldStart, f.iptablesRestoreMs));
  const lb = f.loadBalancer;
  if (lb) {
    rows.push([`LoadBalancer: ${lb.services} Services x ${lb.endpointsPerService} endpoints (${lb.frontends} frontends, ${lb.maglevFrontends} Maglev)`, '', '']);
    for (const [mode, c] of Object.entries(lb.cold)) {
      rows.push([`  cold, ${mode} (longest event-loop stall ${c.loopMaxMs} ms)`, `${c.ms.toFixed(0)} ms`, `${c.perServiceMs} ms/Service`]);
    }
    rows.push([`  EndpointSlice change -> map write, p50 / p99 (${lb.changes} changes)`, `${lb.changeP50Ms} / ${lb.changeP99Ms} ms`, '']);
  }
  return alignRows(rows);
}

function flag(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

if (process.argv[1] && resolve(process.argv[1]) === here) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    const { pinPath, o } = JSON.parse(process.argv[i + 1]) as { pinPath: string; o: ChildRun };
    console.log(JSON.stringify(await xlbSide(pinPath, o)));
  } else if (flag('source')) {
    // --source=manifests|kube: the agent's cold start through that source alone, no baselines (a quick RSS check).
    const o = sizes({ quick: process.argv.includes('--quick'), services: flag('services') ? Number(flag('services')) : undefined, changes: flag('changes') ? Number(flag('changes')) : undefined });
    console.log(JSON.stringify(await coldStartThroughSource(o, flag('source') as Source)));
  } else if (process.argv.includes('--cold-start-only')) {
    const f = await runColdStart({ quick: process.argv.includes('--quick'), services: flag('services') ? Number(flag('services')) : undefined, changes: flag('changes') ? Number(flag('changes')) : undefined });
    console.log(coldStartTable(f));
    console.log(JSON.stringify(f));
  } else {
    const num = (n: string): number | undefined => (flag(n) === undefined ? undefined : Number(flag(n)));
    const f = await run({
      quick: process.argv.includes('--quick'),
      services: num('services'), lbServices: num('lb-services'), changes: num('changes'), lbChanges: num('lb-changes'),
      clusterMode: flag('cluster-mode') as Mode | undefined,
      lbModes: flag('lb-modes')?.split(',') as Mode[] | undefined,
    });
    console.log(table(f));
    console.log(JSON.stringify(f));
  }
}
