// Conntrack sweep: the datapath cannot delete its own expired entries cheaply, and LRU
// eviction alone would let stale flows crowd out live ones. The agent deletes expired
// entries, credits ct_fill[1] with the flows released (admission, see codecs.ts), and
// reports which backends live flows still use so retired backends can be reaped.
import type { BpfMap } from './bpf.js';
import * as C from './codecs.js';

export interface SweepResult {
  scanned: number;
  expired: number;
  /** backend ids named by live forward entries */
  liveBackends: Set<number>;
  /** live entries after the sweep */
  entries: number;
}

export function sweepConntrack(ct: BpfMap, ctFill: BpfMap, cfg: C.XlbConfig, nowNs = process.hrtime.bigint()): SweepResult {
  const liveBackends = new Set<number>();
  let scanned = 0;
  let expired = 0;
  let released = 0n;
  for (const [k, v] of ct.entries()) {
    scanned++;
    const value = C.decodeCtValue(v);
    if (C.ctExpired(value, cfg, nowNs)) {
      if (ct.delete(k) && !(value.flags & C.CT_FLAG.reply)) released++;
      expired++;
    } else if (!(value.flags & C.CT_FLAG.reply)) {
      liveBackends.add(value.backendId);
    }
  }
  if (released > 0n) {
    const key = C.encodeCtFillKey(1);
    const cur = ctFill.lookup(key);
    const made = ctFill.lookup(C.encodeCtFillKey(0));
    let next = (cur ? C.decodeCtFillValue(cur) : 0n) + released;
    // LRU evictions free entries the datapath never hears about; never credit past made.
    const madeN = made ? C.decodeCtFillValue(made) : next;
    if (next > madeN) next = madeN;
    ctFill.update(key, C.encodeCtFillValue(next));
  }
  return { scanned, expired, liveBackends, entries: scanned - expired };
}
