// Between two modes' windows of the bench: every mode starts from the same state, and nothing a
// previous mode's window left running is still running in the next one.
// - nf_conntrack: the NAT baselines track every connection in the node namespaces; at thousands
//   of conn/s the tables held tens of thousands of entries when a window ended (TIME_WAIT keeps
//   them 120 s), which the next mode's window inherited (and the conntrack GC worker walked).
//   They are flushed in every namespace of the run's topology (conntrack -F there, never in the
//   root namespace).
// - CPU: the teardown of a mode (10,000 Services' rules removed, an agent stopped, its maps
//   unpinned) leaves kernel work (rule destroy, RCU, GC) behind it; the next mode's setup and
//   samples wait, bounded, until the host's CPU busy share over a short interval is back to what
//   it was before the previous mode's setup.
// Each step is recorded (BetweenModes) so a reader of the results sees what was done and how
// long the settle took.
import { readFileSync } from 'node:fs';
import { run } from '../helpers/netns.js';

export interface CpuSample { idle: number; total: number }

/** The aggregate `cpu` line of /proc/stat: idle (idle + iowait) and total jiffies. */
export function parseCpu(stat: string): CpuSample {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat: no aggregate cpu line');
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 5 || f.some((x) => !Number.isFinite(x))) throw new Error(`/proc/stat: unreadable cpu line '${line}'`);
  return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
}

/** The share of CPU time (0..1) spent busy between two samples (0 when no time passed). */
export function busyBetween(a: CpuSample, b: CpuSample): number {
  const dt = b.total - a.total;
  if (dt <= 0) return 0;
  return Math.min(1, Math.max(0, 1 - (b.idle - a.idle) / dt));
}

export function readCpu(): CpuSample {
  return parseCpu(readFileSync('/proc/stat', 'utf8'));
}

/** Busy share of the host over `ms`. */
export async function sampleBusy(ms: number): Promise<number> {
  const a = readCpu();
  await new Promise((r) => setTimeout(r, ms));
  return busyBetween(a, readCpu());
}

export interface SettleOptions {
  /** the longest wait for the host to be quiet, in seconds */
  maxS: number;
  /** the interval the busy share is measured over, in ms */
  sampleMs: number;
  /** quiet: busy share at most the reference plus this */
  margin: number;
}

export const SETTLE_DEFAULTS: SettleOptions = { maxS: 30, sampleMs: 1000, margin: 0.1 };

/** Quiet again: the busy share no more than `margin` above the reference. */
export function isQuiet(busy: number, ref: number, margin: number): boolean {
  return busy <= ref + margin;
}

export interface QuietWait { waitedS: number; quiet: boolean; busy: number[] }

/**
 * Sample the busy share until one interval is quiet (isQuiet against `ref`) or maxS have
 * passed; at least one sample, never more than maxS * 1000 / sampleMs + 1.
 */
export async function waitQuiet(ref: number, o: SettleOptions, sample: (ms: number) => Promise<number> = sampleBusy, now: () => number = () => performance.now()): Promise<QuietWait> {
  const start = now();
  const busy: number[] = [];
  const maxSamples = Math.floor((o.maxS * 1000) / o.sampleMs) + 1;
  for (;;) {
    const b = await sample(o.sampleMs);
    busy.push(b);
    if (isQuiet(b, ref, o.margin)) return { waitedS: (now() - start) / 1000, quiet: true, busy };
    if (now() - start >= o.maxS * 1000 || busy.length >= maxSamples) return { waitedS: (now() - start) / 1000, quiet: false, busy };
  }
}

/** One namespace's conntrack entries before and after the flush. */
export interface Flushed { ns: string; before: number; after: number }

/**
 * The shell run inside one namespace: its conntrack entry count (both families), both
 * families flushed, the count again. /proc/sys/net/netfilter is the namespace's own.
 */
export const FLUSH_SCRIPT = 'command -v conntrack >/dev/null || { echo "conntrack (conntrack-tools) not installed" >&2; exit 2; }; c=/proc/sys/net/netfilter/nf_conntrack_count; cat $c; conntrack -F -f ipv4 >/dev/null 2>&1; conntrack -F -f ipv6 >/dev/null 2>&1; cat $c';

/** The command flushing one of the run's namespaces (nsenter: the namespace's /proc/sys/net). */
export function flushCommand(ns: string): [string, string[]] {
  if (!/^xlbt-[A-Za-z0-9-]+$/.test(ns)) throw new Error(`conntrack flush: '${ns}' is not a namespace of a test run`);
  return ['nsenter', [`--net=/run/netns/${ns}`, 'sh', '-c', FLUSH_SCRIPT]];
}

export function parseFlush(ns: string, stdout: string): Flushed {
  const n = stdout.trim().split('\n').map((l) => Number(l.trim()));
  if (n.length !== 2 || n.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`conntrack flush in ${ns}: unreadable counts '${stdout.trim()}'`);
  return { ns, before: n[0], after: n[1] };
}

/** Flush nf_conntrack in each of the run's namespaces (all at once; each bounded by 30 s). */
export async function flushConntrack(namespaces: string[]): Promise<Flushed[]> {
  return Promise.all(namespaces.map(async (ns) => {
    const [cmd, args] = flushCommand(ns);
    return parseFlush(ns, (await run(cmd, args, { timeoutMs: 30_000 })).stdout);
  }));
}

/** What was done between two windows, for the results' JSON. */
export interface BetweenModes {
  /** the window that ended and the one that follows */
  after: string; before: string;
  /** conntrack entries flushed, summed over the namespaces, and where they were */
  conntrackFlushed: number; conntrackBefore: Record<string, number>;
  /** entries left right after the flush (0 unless the flush failed or traffic raced it) */
  conntrackLeft: number;
  flushS: number;
  /** busy share measured before the previous window's setup, and the settle's samples */
  busyRef: number; busy: number[];
  settleS: number; quiet: boolean;
  error?: string;
}

/**
 * The step between two windows: flush conntrack in the run's namespaces, then wait (bounded)
 * until the host is as quiet as it was before the previous window. `flush` and `wait` are
 * parameters so the step can be checked without root.
 */
export async function betweenModes(after: string, before: string, namespaces: string[], busyRef: number, o: SettleOptions,
  flush: (ns: string[]) => Promise<Flushed[]> = flushConntrack,
  wait: (ref: number, o: SettleOptions) => Promise<QuietWait> = (ref, opts) => waitQuiet(ref, opts)): Promise<BetweenModes> {
  const t = performance.now();
  let flushed: Flushed[] = [];
  let error: string | undefined;
  try { flushed = await flush(namespaces); } catch (e) { error = (e as Error).message.split('\n')[0].slice(0, 200); }
  const flushS = (performance.now() - t) / 1000;
  const w = await wait(busyRef, o);
  const conntrackBefore = Object.fromEntries(flushed.filter((f) => f.before > 0).map((f) => [f.ns, f.before]));
  return {
    after, before,
    conntrackFlushed: flushed.reduce((a, f) => a + Math.max(0, f.before - f.after), 0), conntrackBefore,
    conntrackLeft: flushed.reduce((a, f) => a + f.after, 0),
    flushS, busyRef, busy: w.busy, settleS: w.waitedS, quiet: w.quiet, ...(error ? { error } : {}),
  };
}

/** One line for the results' notes: what the steps between windows did, in sum. */
export function summarize(steps: BetweenModes[]): string {
  if (steps.length === 0) return 'between modes: no step (one window)';
  const s = steps.map((x) => x.settleS).sort((a, b) => a - b);
  const flushed = steps.reduce((a, x) => a + x.conntrackFlushed, 0);
  const most = Math.max(...steps.map((x) => x.conntrackFlushed));
  const quiet = steps.filter((x) => x.quiet).length;
  const errors = steps.filter((x) => x.error).length;
  return `between modes (${steps.length} steps): conntrack flushed in the run's namespaces, ${flushed} entries in all (at most ${most} after one window); `
    + `settle (CPU busy back within the margin of its level before the previous window) ${s[Math.floor((s.length - 1) / 2)].toFixed(1)} s median, ${s[s.length - 1].toFixed(1)} s max, `
    + `${quiet}/${steps.length} quiet in time${errors ? `; ${errors} flush error(s), see extra.betweenModes` : ''}`;
}
