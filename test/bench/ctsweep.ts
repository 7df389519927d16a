// CPU and time per conntrack sweep of a large table: the agent's JS sweep (sweepConntrack: the
// whole table read in batches and grouped in JS) against the kernel's (KernelCtSweep,
// bpf/ct_sweep.c: one walk in the kernel), alternated on the same table.
//   node dist/test/bench/ctsweep.js [--entries 160000] [--runs 6] [--expired 0.17]
// The table is as the conn/s bench leaves a client's node: two entries per flow, a share of
// the flows idle past their timeout (closed flows due for deletion: with a 5 s sweep and a
// 30 s FIN timeout, a sixth), the rest live. What a sweep deletes is written back before the
// next one. CPU is the process's (all threads, user + system: the kernel's walk included);
// "event loop busy" is the JS thread's share (eventLoopUtilization). Maps only: no network, no namespace; the pins live in a bpffs dir of its own.
import { performance } from 'node:perf_hooks';
import { loadObject } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { KernelCtSweep, sweepConntrack, type SweepResult } from '../../src/datapath/ctgc.js';
import { bpffsDir, objPath } from '../native/util.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const ENTRIES = arg('entries', 160_000);
const RUNS = Math.min(50, arg('runs', 6));
const EXPIRED = arg('expired', 1 / 6);
const SIZES = { ct: 262_144, backends: 4096 };
const SEC = 1_000_000_000n;

async function main(): Promise<void> {
  const dir = bpffsDir('ctsweep-bench');
  const obj = await loadObject(objPath('xlb'), { pinPath: dir.path, maxEntries: SIZES });
  let k: KernelCtSweep | undefined;
  try {
    k = await KernelCtSweep.open(objPath('ct_sweep'), { pinPath: dir.path, maxEntries: SIZES });
    const ct = obj.map(C.MAP.ct), ctFill = obj.map(C.MAP.ctFill), bm = obj.map(C.MAP.backends);
    const cfg = C.DEFAULT_CONFIG;
    const now = process.hrtime.bigint();
    for (let id = 1; id <= 64; id++) bm.update(C.encodeBackendKey(id), C.encodeBackendValue({ addr: `10.244.2.${id}`, port: 8080, state: 'active', local: false }));
    const flows = Math.floor(ENTRIES / 2);
    const KS = C.LAYOUT.xlb_ct_key.size, VS = C.LAYOUT.xlb_ct_value.size;
    const keys = Buffer.alloc(flows * 2 * KS), values = Buffer.alloc(flows * 2 * VS);
    for (let n = 0; n < flows; n++) {
      const bid = 1 + (n % 64), be = `10.244.2.${bid}`;
      const client = `10.${1 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
      const idle = n % Math.round(1 / EXPIRED) === 0;
      const lastSeen = idle ? now - 40n * SEC : now - 2n * SEC;
      const base = { svcId: 1, backendId: bid, state: 'fin' as const, created: 1n, lastSeen };
      C.encodeCtKey({ saddr: client, daddr: '10.96.0.10', sport: 30000 + (n % 30000), dport: 80, proto: 'TCP' }).copy(keys, 2 * n * KS);
      C.encodeCtValue({ ...base, natAddr: be, origAddr: '10.96.0.10', natPort: 8080, origPort: 80, flags: 0 }).copy(values, 2 * n * VS);
      C.encodeCtKey({ saddr: be, daddr: client, sport: 8080, dport: 30000 + (n % 30000), proto: 'TCP' }).copy(keys, (2 * n + 1) * KS);
      C.encodeCtValue({ ...base, natAddr: '10.96.0.10', origAddr: client, natPort: 80, origPort: 30000 + (n % 30000), flags: C.CT_FLAG.reply }).copy(values, (2 * n + 1) * VS);
    }
    const refill = async (): Promise<void> => {
      await ct.updateBatch(keys, values, flows * 2);
      ctFill.update(C.encodeCtFillKey(0), C.encodeCtFillValue(10_000_000n));
    };
    const one = async (which: 'js' | 'kernel'): Promise<{ ms: number; cpuMs: number; loopMs: number; r: SweepResult }> => {
      await refill();
      const c0 = process.cpuUsage(), t0 = performance.now(), e0 = performance.eventLoopUtilization();
      const r = which === 'js' ? await sweepConntrack(ct, ctFill, cfg, now) : await k!.sweep(ct, ctFill, cfg, now);
      const ms = performance.now() - t0, c = process.cpuUsage(c0), e = performance.eventLoopUtilization(e0);
      return { ms, cpuMs: (c.user + c.system) / 1000, loopMs: e.active, r };
    };
    console.log(`ctsweep: ${flows * 2} entries, ${Math.round(EXPIRED * 100)} % of flows expired; load ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const rows: Record<string, { ms: number[]; cpu: number[]; loop: number[] }> = { js: { ms: [], cpu: [], loop: [] }, kernel: { ms: [], cpu: [], loop: [] } };
    for (let i = 0; i < RUNS; i++) {
      for (const which of (i % 2 ? ['kernel', 'js'] : ['js', 'kernel']) as Array<'js' | 'kernel'>) {
        const { ms, cpuMs, loopMs, r } = await one(which);
        rows[which]!.ms.push(ms);
        rows[which]!.cpu.push(cpuMs);
        rows[which]!.loop.push(loopMs);
        console.log(`  ${which.padEnd(6)} run ${i}: ${ms.toFixed(1)} ms wall, ${cpuMs.toFixed(1)} ms CPU, event loop busy ${loopMs.toFixed(1)} ms (scanned ${r.scanned}, expired ${r.expired}, live backends ${r.liveBackends.size})`);
      }
    }
    const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    for (const w of ['js', 'kernel']) console.log(`${w.padEnd(6)} median: ${med(rows[w]!.ms).toFixed(1)} ms wall, ${med(rows[w]!.cpu).toFixed(1)} ms CPU, event loop busy ${med(rows[w]!.loop).toFixed(1)} ms`);
    console.log(`kernel/js CPU: ${(med(rows.kernel!.cpu) / med(rows.js!.cpu)).toFixed(3)}`);
  } finally {
    k?.close();
    obj.close();
    dir.cleanup();
  }
}

await main();
