// Control-plane benchmark (DESIGN §8): cold programming of N ClusterIP Services x E endpoints
// through translate() + the Reconciler into real pinned maps, the latency from one
// EndpointSlice change to its map write, and the agent-like process's RSS, beside
// iptables-restore of the same Services in kube-proxy's rule layout, in one run.
// Run: node dist/test/bench/agent.js [--quick]; other benches call run().
//
// The xlb side runs in a child process so its RSS is its own (the parent also builds the
// iptables rules). iptables-restore runs only inside a namespace this bench creates.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { loadObject, possibleCpus } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { Reconciler, mapsOf } from '../../src/datapath/reconcile.js';
import { translate } from '../../src/model/translate.js';
import { MAGLEV_DEFAULT_M } from '../../src/model/maglev.js';
import type { NodeInfo, ServiceSpec } from '../../src/model/types.js';
import { NetnsSet, isRoot } from '../helpers/netns.js';
import { applyBaseline } from './kubeproxy.js';
import { fillerIP } from './services.js';

const here = fileURLToPath(import.meta.url);
const repoRoot = resolve(here, '../../../..');
const NODE: NodeInfo = { name: 'bench-node', addresses: ['192.0.2.10'], labels: {} };

export const TARGETS = { coldRatioMax: 0.5, changeP99MsMax: 50, rssMbMax: 250 } as const;

export interface AgentBenchOptions {
  quick?: boolean;
  services?: number;
  endpoints?: number;
  changes?: number;
  /** Maglev table size (the agent's default) */
  maglevM?: number;
}

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
}

export interface AgentBenchFigures extends XlbSide {
  iptablesRestoreMs: number;
  /** xlb cold programming time / iptables-restore time */
  coldRatio: number;
  targets: { coldRatio: boolean; changeP99: boolean; rss: boolean };
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

function sizes(o: AgentBenchOptions): { services: number; endpoints: number; changes: number; maglevM: number } {
  return {
    services: o.services ?? (o.quick ? 500 : 10_000),
    endpoints: o.endpoints ?? 10,
    changes: o.changes ?? (o.quick ? 100 : 1_000),
    maglevM: o.maglevM ?? MAGLEV_DEFAULT_M,
  };
}

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

async function xlbSide(pinPath: string, o: ReturnType<typeof sizes>): Promise<XlbSide> {
  const services = Array.from({ length: o.services }, (_, i) => serviceObj(i));
  const slices = Array.from({ length: o.services }, (_, i) => [sliceObj(i, o.endpoints)]);
  const obj = await loadObject(resolve(repoRoot, 'build/bpf/xlb.o'), { pinPath });
  try {
    C.verifyLayout(obj);
    const rec = new Reconciler(mapsOf(obj), { maglevM: o.maglevM, cpus: possibleCpus() });
    rec.adoptPinned();
    let failed = 0;
    let frontends = 0;

    const t0 = performance.now();
    for (let i = 0; i < o.services; i++) {
      const spec = specOf(services[i], slices[i]);
      const r = await rec.apply(spec.key, spec);
      if (!r.ok) failed++;
      frontends += r.frontends;
    }
    const coldMs = performance.now() - t0;
    rec.prune();
    const rssMb = process.memoryUsage().rss / 2 ** 20;
    const inMap = obj.map(C.MAP.services).keys().length;
    if (inMap !== frontends) throw new Error(`services map holds ${inMap} entries, reconciler reported ${frontends}`);

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
      services: o.services, endpointsPerService: o.endpoints, frontends, coldMs: round(coldMs),
      changes: o.changes, changeP50Ms: round(percentile(lat, 50)), changeP99Ms: round(percentile(lat, 99)),
      changeMaxMs: round(lat[lat.length - 1] ?? 0), rssMb: round(rssMb), peakRssMb: round(peakRssMb()), failed,
    };
  } finally {
    obj.close();
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** Runs xlbSide in a child node process (its own RSS); the pins go with the directory. */
async function xlbInChild(o: ReturnType<typeof sizes>, extraNodeArgs: string[] = []): Promise<XlbSide> {
  const pinPath = `/sys/fs/bpf/xlbt-agentbench-${process.pid}`;
  rmSync(pinPath, { recursive: true, force: true });
  mkdirSync(pinPath, { recursive: true });
  try {
    const child = spawn(process.execPath, [...extraNodeArgs, here, '--child', JSON.stringify({ pinPath, o })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    const code = await new Promise<number | null>((res) => child.on('close', res));
    clearTimeout(timer);
    if (code !== 0) throw new Error(`xlb bench child exited with ${code}: ${out.trim()}`);
    return JSON.parse(out.trim().split('\n').pop()!) as XlbSide;
  } finally {
    rmSync(pinPath, { recursive: true, force: true });
  }
}

// ---- the iptables side ----

async function iptablesRestoreMs(o: ReturnType<typeof sizes>): Promise<number> {
  const specs = Array.from({ length: o.services }, (_, i) => specOf(serviceObj(i), [sliceObj(i, o.endpoints)]));
  const set = new NetnsSet('agentbench');
  try {
    const ns = await set.add('node');
    return await applyBaseline('iptables', ns, specs);
  } finally {
    await set.teardown();
  }
}

// ---- entry points ----

export async function run(opts: AgentBenchOptions = {}): Promise<AgentBenchFigures> {
  if (!isRoot()) throw new Error('the agent bench needs root (BPF maps, network namespaces)');
  const o = sizes(opts);
  const xlb = await xlbInChild(o, process.env.XLB_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.XLB_BENCH_CPU_PROF}`] : []);
  const ipt = await iptablesRestoreMs(o);
  const coldRatio = xlb.coldMs / ipt;
  return {
    ...xlb,
    iptablesRestoreMs: round(ipt),
    coldRatio: Math.round(coldRatio * 1000) / 1000,
    targets: {
      coldRatio: coldRatio <= TARGETS.coldRatioMax,
      changeP99: xlb.changeP99Ms <= TARGETS.changeP99MsMax,
      rss: xlb.rssMb <= TARGETS.rssMbMax,
    },
  };
}

export function table(f: AgentBenchFigures): string {
  const ok = (b: boolean): string => (b ? 'met' : 'MISSED');
  const rows: Array<[string, string, string]> = [
    [`cold: ${f.services} Services x ${f.endpointsPerService} endpoints (${f.frontends} frontends)`, `${f.coldMs.toFixed(0)} ms`, ''],
    ['iptables-restore, same Services (kube-proxy layout)', `${f.iptablesRestoreMs.toFixed(0)} ms`, ''],
    ['cold xlb / iptables-restore', `${f.coldRatio}`, `<= ${TARGETS.coldRatioMax}: ${ok(f.targets.coldRatio)}`],
    [`EndpointSlice change -> map write, p50 (${f.changes} changes)`, `${f.changeP50Ms} ms`, ''],
    ['EndpointSlice change -> map write, p99', `${f.changeP99Ms} ms`, `<= ${TARGETS.changeP99MsMax} ms: ${ok(f.targets.changeP99)}`],
    ['agent RSS after cold programming (peak)', `${f.rssMb.toFixed(0)} MB (${f.peakRssMb.toFixed(0)} MB)`, `<= ${TARGETS.rssMbMax} MB: ${ok(f.targets.rss)}`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`.trimEnd()).join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === here) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    const { pinPath, o } = JSON.parse(process.argv[i + 1]) as { pinPath: string; o: ReturnType<typeof sizes> };
    console.log(JSON.stringify(await xlbSide(pinPath, o)));
  } else {
    const f = await run({ quick: process.argv.includes('--quick') });
    console.log(table(f));
    console.log(JSON.stringify(f));
  }
}
