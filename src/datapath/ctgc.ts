// Conntrack sweep: the datapath cannot delete its own expired entries cheaply, and LRU
// eviction alone would let stale flows crowd out live ones. The agent deletes expired
// flows, credits ct_fill[1] with the flows released (admission, see codecs.ts), and
// reports which backends live flows still use so retired backends can be reaped.
import type { BpfMap } from './bpf.js';
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
  // Entries of one flow chained from its first: head by flow id, next by entry index.
  const head = new Map<string, number>();
  const next = new Int32Array(count).fill(-1);
  const expiredAt = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const vo = i * VS;
    const lastSeen = values.readBigUInt64LE(vo + CV.last_seen);
    expiredAt[i] = nowNs - lastSeen > (timeoutNs[values[vo + CV.state]!] ?? closedNs) ? 1 : 0;
    const id = ctFlowId(keys, i * KS, values, vo);
    const h = head.get(id);
    if (h === undefined) head.set(id, i);
    else { next[i] = next[h]!; next[h] = i; }
  }
  const liveBackends = new Set<number>();
  const doomed: number[] = [];
  let released = 0n;
  let snatPorts = 0;
  const snatMask = C.CT_FLAG.reply | C.CT_FLAG.snat | C.CT_FLAG.hairpin;
  for (const first of head.values()) {
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

function creditReleased(ctFill: BpfMap, released: bigint): void {
  const key = C.encodeCtFillKey(1);
  const cur = ctFill.lookup(key);
  const made = ctFill.lookup(C.encodeCtFillKey(0));
  let next = (cur ? C.decodeCtFillValue(cur) : 0n) + released;
  // LRU evictions free entries the datapath never hears about; never credit past made.
  const madeN = made ? C.decodeCtFillValue(made) : next;
  if (next > madeN) next = madeN;
  ctFill.update(key, C.encodeCtFillValue(next));
}
