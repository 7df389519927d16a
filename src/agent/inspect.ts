// Actual state: the kernel maps decoded for `xlb maps` and `xlb stats`, so an operator can
// compare them with the desired state `xlb services` shows.
import { BpfMap, type BpfObject } from '../datapath/bpf.js';
import * as C from '../datapath/codecs.js';
import type { DecodedMap, DecodedMaps, StatsInfo } from '../api/view.js';

type Decoder = { key: (b: Buffer) => unknown; value: (b: Buffer) => unknown; skipZero?: boolean };

const wrap = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : { value: v });

function decoders(): Record<string, Decoder> {
  return {
    [C.MAP.services]: { key: C.decodeSvcKey, value: C.decodeSvcValue },
    [C.MAP.backends]: { key: (b) => ({ backendId: C.decodeBackendKey(b) }), value: C.decodeBackendValue },
    [C.MAP.slots]: { key: C.decodeSlotKey, value: (b) => ({ backendId: C.decodeSlotValue(b) }) },
    [C.MAP.revnat]: { key: (b) => ({ svcId: C.decodeRevnatKey(b) }), value: C.decodeRevnatValue },
    [C.MAP.ct]: { key: C.decodeCtKey, value: C.decodeCtValue },
    [C.MAP.affinity]: { key: C.decodeAffinityKey, value: C.decodeAffinityValue },
    [C.MAP.srcRanges]: { key: C.decodeSrcRangeKey, value: (b) => ({ allow: C.decodeSrcRangeValue(b) }) },
    [C.MAP.nodeAddrs]: { key: (b) => ({ addr: C.decodeNodeAddrKey(b) }), value: C.decodeNodeAddrValue },
    [C.MAP.podIfs]: { key: (b) => ({ ifindex: C.decodePodIfKey(b) }), value: (b) => ({ peer: (C.decodePodIfValue(b).flags & C.POD_IF_FLAG.peer) !== 0 }) },
    [C.MAP.config]: { key: () => ({ index: 0 }), value: C.decodeConfig },
    [C.MAP.ctFill]: { key: (b) => ({ index: b.readUInt32LE(0) }), value: (b) => ({ count: C.decodeCtFillValue(b) }) },
    [C.MAP.stats]: { key: (b) => ({ svcId: C.decodeStatsKey(b) }), value: C.decodeStatsValue, skipZero: true },
    [C.MAP.drops]: {
      key: (b) => ({ reason: C.DROP_REASONS.find((r) => r.id === C.decodeDropKey(b))?.key ?? C.decodeDropKey(b) }),
      value: (b) => ({ packets: C.decodeDropValue(b) }), skipZero: true,
    },
  };
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

export function decodeAllMaps(obj: BpfObject, limit = 10_000): DecodedMaps {
  const out: DecodedMap[] = [];
  const dec = decoders();
  for (const name of obj.mapNames()) {
    const m = obj.map(name);
    const d = dec[name];
    const entries: DecodedMap['entries'] = [];
    if (name === C.MAP.maglev) {
      for (const k of m.keys()) {
        const id = m.innerId(k);
        let size = 0;
        if (id) { const inner = BpfMap.fromId(id); size = inner.maxEntries; inner.close(); }
        entries.push({ key: { svcId: C.decodeMaglevKey(k) }, value: { innerMapId: id, tableSize: size } });
      }
    } else if (d) {
      for (const [k, v] of m.entries()) {
        if (entries.length >= limit) break;
        // skipZero: per-CPU counters never touched; backends: the ARRAY's free ids (all-zero).
        if ((d.skipZero || name === C.MAP.backends) && isZero(v)) continue;
        entries.push({ key: wrap(d.key(k)), value: wrap(d.value(v)) });
      }
    } else {
      continue; // internal maps (fragments, .rodata/.bss) are not part of the operator's view
    }
    out.push({ name, type: m.type, maxEntries: m.maxEntries, entries });
  }
  return out;
}

/** Lookups between two turns of the event loop, so 100,000 frontends do not stall the agent. */
const STATS_CHUNK = 2048;

/** Counters of the given frontends, in the order given (Services sorted by the caller). */
export async function readStats(obj: BpfObject, ids: Map<number, { service: string; frontend: string }>): Promise<StatsInfo> {
  const stats = obj.map(C.MAP.stats);
  const services: StatsInfo['services'] = [];
  for (const [id, who] of ids) {
    if (services.length % STATS_CHUNK === STATS_CHUNK - 1) await new Promise((r) => setImmediate(r));
    const v = stats.lookup(C.encodeStatsKey(id));
    const s = v ? C.decodeStatsValue(v) : { packets: 0n, bytes: 0n, newFlows: 0n };
    services.push({ svc: who.service, frontend: who.frontend, packets: Number(s.packets), bytes: Number(s.bytes), newFlows: Number(s.newFlows) });
  }
  const drops: Record<string, number> = {};
  const dm = obj.map(C.MAP.drops);
  for (const r of C.DROP_REASONS) {
    if (r.id === 0) continue;
    const v = dm.lookup(C.encodeDropKey(r.id));
    drops[r.key] = v ? Number(C.decodeDropValue(v)) : 0;
  }
  const live = ctLive(obj);
  const cfg = obj.map(C.MAP.config).lookup(C.encodeConfigKey());
  return { services, drops, conntrack: { entries: live, max: cfg ? C.decodeConfig(cfg).ctLimit : 0 } };
}

/** Flows the datapath admitted minus those the sweep released (codecs.ts: CT admission). */
export function ctLive(obj: BpfObject): number {
  const fill = obj.map(C.MAP.ctFill);
  const made = fill.lookup(C.encodeCtFillKey(0));
  const freed = fill.lookup(C.encodeCtFillKey(1));
  return Number((made ? C.decodeCtFillValue(made) : 0n) - (freed ? C.decodeCtFillValue(freed) : 0n));
}
