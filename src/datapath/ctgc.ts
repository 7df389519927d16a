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

interface CtEntry { key: Buffer; value: C.CtValue; expired: boolean }

/**
 * Each entry carries its own last_seen, refreshed only by packets in its direction, so a
 * flow is idle only when both its entries are expired: deleting one half of a one-way
 * stream would send the next packet of the other direction to a new backend.
 */
function groupFlows(ct: BpfMap, cfg: C.XlbConfig, nowNs: bigint): Map<string, CtEntry[]> {
  const flows = new Map<string, CtEntry[]>();
  for (const [key, v] of ct.entries()) {
    const value = C.decodeCtValue(v);
    const id = (value.flags & C.CT_FLAG.reply ? C.ctForwardKey(key, v) : key).toString('hex');
    const e: CtEntry = { key, value, expired: C.ctExpired(value, cfg, nowNs) };
    const list = flows.get(id);
    if (list) list.push(e); else flows.set(id, [e]);
  }
  return flows;
}

export function sweepConntrack(ct: BpfMap, ctFill: BpfMap, cfg: C.XlbConfig, nowNs = process.hrtime.bigint()): SweepResult {
  const liveBackends = new Set<number>();
  let scanned = 0;
  let expired = 0;
  let released = 0n;
  let snatPorts = 0;
  for (const flow of groupFlows(ct, cfg, nowNs).values()) {
    scanned += flow.length;
    if (flow.every((e) => e.expired)) {
      let deleted = 0;
      for (const e of flow) if (ct.delete(e.key)) deleted++;
      expired += flow.length;
      // One admission per flow, whichever of its entries LRU eviction left behind.
      if (deleted > 0) released++;
    } else {
      for (const e of flow) {
        if (e.value.backendId) liveBackends.add(e.value.backendId);
        if ((e.value.flags & (C.CT_FLAG.reply | C.CT_FLAG.snat | C.CT_FLAG.hairpin)) === (C.CT_FLAG.reply | C.CT_FLAG.snat)) snatPorts++;
      }
    }
  }
  if (released > 0n) creditReleased(ctFill, released);
  return { scanned, expired, liveBackends, entries: scanned - expired, snatPorts };
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
