// Conntrack sweep: the datapath cannot delete its own expired entries cheaply, and LRU
// eviction alone would let stale flows crowd out live ones. The agent deletes expired
// flows, credits ct_fill[1] with the flows released (admission, see codecs.ts), and
// reports which backends live flows still use so retired backends can be reaped.
// Two implementations with one result: KernelCtSweep (below; bpf/ct_sweep.c walks the table
// in the kernel, ~15x less CPU than the JS sweep at 160,000 entries) where the kernel loads
// it, else sweepConntrack (the whole table read into JS and grouped).
import { loadObject, type BpfMap, type BpfObject, type BpfProgram, type LoadOptions } from './bpf.js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as C from './codecs.js';

export interface SweepResult {
  scanned: number;
  expired: number;
  /** backend ids named by live entries */
  liveBackends: Set<number>;
  /** live entries after the sweep */
  entries: number;
  /** node SNAT ports held by live flows (reply entries of SNATed, non-hairpin flows) */
  snatPorts: number;
}

const KS = C.LAYOUT.xlb_ct_key.size;
const VS = C.LAYOUT.xlb_ct_value.size;
const CK = C.LAYOUT.xlb_ct_key.members;
const CV = C.LAYOUT.xlb_ct_value.members;
const ADDR = C.LAYOUT.xlb_addr.size;

/**
 * The forward tuple an entry belongs to, as a string: a forward entry's key, or for a reply
 * entry the client's tuple it keeps in orig/nat (ct_peer_key in bpf/include/ct.h), by LAYOUT offsets.
 */
export function ctFlowId(keys: Buffer, ko: number, values: Buffer, vo: number): string {
  if (values[vo + CV.flags]! & C.CT_FLAG.reply) {
    return values.toString('latin1', vo + CV.orig_addr, vo + CV.orig_addr + ADDR) + values.toString('latin1', vo + CV.nat_addr, vo + CV.nat_addr + ADDR)
      + values.toString('latin1', vo + CV.orig_port, vo + CV.orig_port + 2) + values.toString('latin1', vo + CV.nat_port, vo + CV.nat_port + 2)
      + String.fromCharCode(keys[ko + CK.proto]!);
  }
  return keys.toString('latin1', ko + CK.saddr, ko + CK.saddr + ADDR) + keys.toString('latin1', ko + CK.daddr, ko + CK.daddr + ADDR)
    + keys.toString('latin1', ko + CK.sport, ko + CK.sport + 2) + keys.toString('latin1', ko + CK.dport, ko + CK.dport + 2)
    + String.fromCharCode(keys[ko + CK.proto]!);
}

/**
 * Entries chained by flow without a string per entry: each entry's tuple (what ctFlowId
 * names: a forward entry's key, a reply entry's orig/nat) is hashed from its 32-bit words into
 * an open-addressing table of entry indexes, and compared word by word only on a hash match.
 * heads[0..nHeads) holds each flow's first entry; next[] chains the rest. Same grouping as
 * ctFlowId (test/unit/ctgc.test.ts checks), about an order of magnitude cheaper: ctFlowId's
 * 37-character string and Map entry per entry made the sweep of 160,000 entries cost ~0.5 s of
 * JS, which at the conn/s bench's rates was most of the agent's CPU.
 */
export function groupFlows(keys: Buffer, values: Buffer, count: number): { heads: Int32Array; nHeads: number; next: Int32Array } {
  const dk = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
  const dv = new DataView(values.buffer, values.byteOffset, values.byteLength);
  // where entry i's tuple is: in the value (reply) or the key (forward), at these offsets
  const isReply = (i: number): boolean => (values[i * VS + CV.flags]! & C.CT_FLAG.reply) !== 0;
  const view = (i: number): DataView => (isReply(i) ? dv : dk);
  const addrA = (i: number): number => (isReply(i) ? i * VS + CV.orig_addr : i * KS + CK.saddr);
  const addrB = (i: number): number => (isReply(i) ? i * VS + CV.nat_addr : i * KS + CK.daddr);
  const portA = (i: number): number => (isReply(i) ? i * VS + CV.orig_port : i * KS + CK.sport);
  const portB = (i: number): number => (isReply(i) ? i * VS + CV.nat_port : i * KS + CK.dport);
  const same = (i: number, j: number): boolean => {
    if (keys[i * KS + CK.proto] !== keys[j * KS + CK.proto]) return false;
    const vi = view(i), vj = view(j);
    const ai = addrA(i), aj = addrA(j), bi = addrB(i), bj = addrB(j);
    for (let w = 0; w < ADDR; w += 4) {
      if (vi.getUint32(ai + w, true) !== vj.getUint32(aj + w, true) || vi.getUint32(bi + w, true) !== vj.getUint32(bj + w, true)) return false;
    }
    return vi.getUint16(portA(i), true) === vj.getUint16(portA(j), true) && vi.getUint16(portB(i), true) === vj.getUint16(portB(j), true);
  };
  let size = 16;
  while (size < count * 2) size *= 2;
  const mask = size - 1;
  const table = new Int32Array(size).fill(-1);
  const hashes = new Int32Array(count);
  const next = new Int32Array(count).fill(-1);
  const heads = new Int32Array(count);
  let nHeads = 0;
  for (let i = 0; i < count; i++) {
    const v = view(i), a = addrA(i), b = addrB(i);
    let h = keys[i * KS + CK.proto]! ^ 0x811c9dc5;
    for (let w = 0; w < ADDR; w += 4) {
      h = Math.imul(h ^ v.getUint32(a + w, true), 0x9e3779b1);
      h = Math.imul(h ^ v.getUint32(b + w, true), 0x85ebca6b);
    }
    h = Math.imul(h ^ (v.getUint16(portA(i), true) | (v.getUint16(portB(i), true) << 16)), 0xc2b2ae35);
    h ^= h >>> 15;
    hashes[i] = h;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const j = table[s]!;
      if (j < 0) { table[s] = i; heads[nHeads++] = i; break; }
      if (hashes[j] === h && same(i, j)) { next[i] = next[j]!; next[j] = i; break; }
    }
  }
  return { heads, nHeads, next };
}

/**
 * One pass over the table, read in one batch off the JS thread and decoded in place (only the
 * fields the sweep needs: no addresses formatted, no object per entry), and one batch delete.
 * Each entry carries its own last_seen, refreshed only by packets in its direction, so a flow
 * is idle only when both its entries are expired: deleting one half of a one-way stream would
 * send the next packet of the other direction to a new backend.
 */
export async function sweepConntrack(ct: BpfMap, ctFill: BpfMap, cfg: C.XlbConfig, nowNs = process.hrtime.bigint()): Promise<SweepResult> {
  const { keys, values, count } = await ct.lookupBatch();
  const timeoutNs = C.CT_STATES.map((s) => BigInt(C.ctTimeoutSec(s, cfg)) * 1_000_000_000n);
  const closedNs = BigInt(C.ctTimeoutSec('closed', cfg)) * 1_000_000_000n;
  const expiredAt = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const vo = i * VS;
    const lastSeen = values.readBigUInt64LE(vo + CV.last_seen);
    expiredAt[i] = nowNs - lastSeen > (timeoutNs[values[vo + CV.state]!] ?? closedNs) ? 1 : 0;
  }
  // Entries of one flow chained from its first.
  const { heads, nHeads, next } = groupFlows(keys, values, count);
  const liveBackends = new Set<number>();
  const doomed: number[] = [];
  let released = 0n;
  let snatPorts = 0;
  const snatMask = C.CT_FLAG.reply | C.CT_FLAG.snat | C.CT_FLAG.hairpin;
  for (let f = 0; f < nHeads; f++) {
    const first = heads[f]!;
    let all = true;
    for (let i = first; i >= 0; i = next[i]!) if (!expiredAt[i]) { all = false; break; }
    if (all) {
      for (let i = first; i >= 0; i = next[i]!) doomed.push(i);
      // One admission per flow, whichever of its entries LRU eviction left behind.
      released++;
      continue;
    }
    for (let i = first; i >= 0; i = next[i]!) {
      const vo = i * VS;
      const backendId = values.readUInt32LE(vo + CV.backend_id);
      if (backendId) liveBackends.add(backendId);
      if ((values[vo + CV.flags]! & snatMask) === (C.CT_FLAG.reply | C.CT_FLAG.snat)) snatPorts++;
    }
  }
  if (doomed.length) {
    const gone = Buffer.allocUnsafe(doomed.length * KS);
    doomed.forEach((i, n) => keys.copy(gone, n * KS, i * KS, (i + 1) * KS));
    await ct.deleteBatch(gone, doomed.length);
    creditReleased(ctFill, released);
  }
  return { scanned: count, expired: doomed.length, liveBackends, entries: count - doomed.length, snatPorts };
}

/** Flows that left ct return their admission: ct_fill[1] += released, never past ct_fill[0]. */
export function creditReleased(ctFill: BpfMap, released: bigint): void {
  const key = C.encodeCtFillKey(1);
  const cur = ctFill.lookup(key);
  const made = ctFill.lookup(C.encodeCtFillKey(0));
  let next = (cur ? C.decodeCtFillValue(cur) : 0n) + released;
  // LRU evictions free entries the datapath never hears about; never credit past made.
  const madeN = made ? C.decodeCtFillValue(made) : next;
  if (next > madeN) next = madeN;
  ctFill.update(key, C.encodeCtFillValue(next));
}

// ---- the sweep in the kernel (bpf/ct_sweep.c) ----

/** The program in build/bpf/ct_sweep.o, and its state map. */
export const CT_SWEEP_PROG = 'xlb_ct_sweep';
export const CT_SWEEP_STATE = 'ct_sweep_state';
// BPF_PROG_TEST_RUN wants a frame for a tc program; the sweep ignores it.
const FRAME = Buffer.alloc(64);

/** Where struct xlb_sweep_state keeps its parts: read from ct_sweep.o's own BTF at open. */
export interface SweepLayout { args: number; argsSize: number; result: number; bitmap: number }

/** The layout of xlb_sweep_state from the object's BTF; throws naming what does not fit. */
export function sweepLayout(obj: Pick<BpfObject, 'btfStruct'>): SweepLayout {
  const st = obj.btfStruct('xlb_sweep_state');
  const at = (name: string) => {
    const m = st.members.find((x) => x.name === name);
    if (!m) throw new Error(`layout check: struct xlb_sweep_state has no member ${name}`);
    return m;
  };
  const [a, r, b] = [at('a'), at('r'), at('be_live')];
  // args: now + one timeout per ct state; result: five u64 counters (see bpf/ct_sweep.c)
  if (a.size !== 8 + 8 * 8 || r.size !== 5 * 8) throw new Error(`layout check: xlb_sweep_state args ${a.size} / result ${r.size} bytes, the agent expects 72 / 40`);
  return { args: a.offset, argsSize: a.size, result: r.offset, bitmap: b.offset };
}

/** What a pass left in ct_sweep_state. */
export function decodeSweepState(b: Buffer, l: SweepLayout): { liveBackends: Set<number>; kept: number; deleted: number; released: bigint; snatPorts: number; unresolved: number } {
  const liveBackends = new Set<number>();
  for (let o = l.bitmap; o + 8 <= b.length; o += 8) {
    let lo = b.readUInt32LE(o), hi = b.readUInt32LE(o + 4);
    const base = ((o - l.bitmap) / 8) * 64;
    for (let bit = 0; lo; bit++, lo >>>= 1) if (lo & 1) liveBackends.add(base + bit);
    for (let bit = 32; hi; bit++, hi >>>= 1) if (hi & 1) liveBackends.add(base + bit);
  }
  const r = (i: number): bigint => b.readBigUInt64LE(l.result + i * 8);
  return { liveBackends, kept: Number(r(0)), deleted: Number(r(1)), released: r(2), snatPorts: Number(r(3)), unresolved: Number(r(4)) };
}

/**
 * The conntrack sweep as one walk of the ct map in the kernel (bpf/ct_sweep.c, a tc program
 * run once by BPF_PROG_TEST_RUN in a worker thread): the kernel deletes the flows whose
 * entries all expired and leaves counts and a bitmap of the backends live entries name, so
 * no entry is copied to JS. Same result and contract as sweepConntrack (a flow goes only when
 * all its entries expired, one admission per flow, ct_fill[1] credited here, never past
 * ct_fill[0]); forward entries whose backend is gone are left to sweepConntrack, run then.
 */
export class KernelCtSweep {
  /** passes run; passes that also ran the JS sweep (unresolved forward entries) */
  passes = 0;
  fallbacks = 0;

  private constructor(private readonly obj: BpfObject, private readonly prog: BpfProgram, private readonly state: BpfMap, private readonly layout: SweepLayout) {}

  /**
   * Loads ct_sweep.o against the maps xlb.o pinned at opts.pinPath (same maxEntries) and runs
   * one pass that expires nothing (now = 0), so a kernel that lacks what it needs (no
   * bpf_for_each_map_elem: before 5.13) says so here. Throws with the reason.
   */
  static async open(file: string, opts: Pick<LoadOptions, 'pinPath' | 'maxEntries'>): Promise<KernelCtSweep> {
    if (!opts.pinPath) throw new Error('the kernel conntrack sweep needs the datapath\'s pinned maps (pinPath)');
    // The loader pins every map, this one too; it is private to one pass, so a pin left by an
    // earlier agent (maybe another layout) is dropped rather than reused. xlb.o's maps are
    // reused and never replaced (replaceMismatched false): a mismatch fails here, and the JS
    // sweep runs.
    rmSync(join(opts.pinPath, CT_SWEEP_STATE), { force: true });
    const obj = await loadObject(file, { pinPath: opts.pinPath, maxEntries: opts.maxEntries, replaceMismatched: false });
    try {
      const layout = sweepLayout(obj);
      const s = new KernelCtSweep(obj, obj.program(CT_SWEEP_PROG), obj.map(CT_SWEEP_STATE), layout);
      await s.run(Buffer.alloc(layout.argsSize));
      return s;
    } catch (e) {
      obj.close();
      throw e;
    }
  }

  private async run(args: Buffer): Promise<ReturnType<typeof decodeSweepState>> {
    const key = Buffer.alloc(4);
    const st = Buffer.alloc(this.state.valueSize);
    args.copy(st, this.layout.args);
    this.state.update(key, st);
    const { retval } = await this.prog.testRunAsync({ data: FRAME });
    if (retval < 0) throw Object.assign(new Error(`${CT_SWEEP_PROG} returned ${retval}`), { code: 'EIO' });
    return decodeSweepState(this.state.lookup(key)!, this.layout);
  }

  async sweep(ct: BpfMap, ctFill: BpfMap, cfg: C.XlbConfig, nowNs = process.hrtime.bigint()): Promise<SweepResult> {
    const args = Buffer.alloc(this.layout.argsSize);
    args.writeBigUInt64LE(nowNs, 0);
    for (let i = 0; i < 8; i++) args.writeBigUInt64LE(BigInt(C.ctTimeoutSec(C.CT_STATES[i] ?? 'closed', cfg)) * 1_000_000_000n, 8 + i * 8);
    const r = await this.run(args);
    if (r.released) creditReleased(ctFill, r.released);
    this.passes++;
    if (r.unresolved) {
      // Expired forward entries whose backend is gone: the whole-table sweep groups them.
      this.fallbacks++;
      const js = await sweepConntrack(ct, ctFill, cfg, nowNs);
      return { ...js, scanned: js.scanned + r.deleted, expired: r.deleted + js.expired };
    }
    return { scanned: r.kept + r.deleted, expired: r.deleted, liveBackends: r.liveBackends, entries: r.kept, snatPorts: r.snatPorts };
  }

  close(): void { this.obj.close(); }
}
