// Actual state: the kernel maps decoded for `xlb maps` and `xlb stats`, so an operator can
// compare them with the desired state `xlb services` shows.
import { BpfMap, type BpfObject } from '../datapath/bpf.js';
import { FAMILY_NAME } from '../model/ip.js';
import * as C from '../datapath/codecs.js';
import { checkMapNames, type DecodedMap, type DecodedMaps, type StatsInfo } from '../api/view.js';

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
    [C.MAP.ifMacs]: { key: (b) => ({ ifindex: C.decodeIfMacKey(b) }), value: C.decodeIfMacValue },
    [C.MAP.config]: { key: () => ({ index: 0 }), value: C.decodeConfig },
    [C.MAP.sockRev]: { key: C.decodeSockKey, value: C.decodeSockValue },
    [C.MAP.ctFill]: { key: (b) => ({ index: b.readUInt32LE(0) }), value: (b) => ({ count: C.decodeCtFillValue(b) }) },
    [C.MAP.stats]: { key: (b) => ({ svcId: C.decodeStatsKey(b) }), value: C.decodeStatsValue, skipZero: true },
    [C.MAP.announce]: { key: (b) => ({ addr: C.decodeAnnounceKey(b) }), value: C.decodeAnnounceValue },
    [C.MAP.announceStats]: {
      key: (b) => ({ counter: C.ANNOUNCE_COUNTERS.find((c) => c.id === b.readUInt32LE(0))?.key ?? b.readUInt32LE(0) }),
      value: (b) => ({ count: C.decodeDropValue(b) }), skipZero: true,
    },
    [C.MAP.drops]: {
      key: (b) => ({ reason: C.DROP_REASONS.find((r) => r.id === C.decodeDropKey(b))?.key ?? C.decodeDropKey(b) }),
      value: (b) => ({ packets: C.decodeDropValue(b) }), skipZero: true,
    },
  };
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

/** Entries per streamed message: a few hundred KB, well under a client's 4 MB limit. */
export const MAP_CHUNK = 1000;

/**
 * The operator's maps (all, or those named), decoded a chunk of at most `chunk` entries at a
 * time: a map with more comes as several chunks of its name in a row. Internal maps
 * (fragments, .rodata/.bss) are not part of the operator's view. Maps are read with batch
 * lookups off the agent's thread: element by element, the 65,536 per-CPU stats slots alone
 * took seconds.
 */
export async function* decodeMaps(obj: BpfObject, names: string[] = [], chunk = MAP_CHUNK): AsyncGenerator<DecodedMap> {
  const dec = decoders();
  const shown = obj.mapNames().filter((n) => n === C.MAP.maglev || dec[n]);
  checkMapNames(names, shown);
  for (const name of shown) {
    if (names.length && !names.includes(name)) continue;
    const m = obj.map(name);
    const d = dec[name];
    const head = { name, type: m.type, maxEntries: m.maxEntries };
    let entries: DecodedMap['entries'] = [];
    let sent = false;
    const rows = name === C.MAP.maglev ? maglevRows(m) : entryRows(name, m, d!, await m.lookupBatch());
    for (const e of rows) {
      entries.push(e);
      if (entries.length >= chunk) {
        yield { ...head, entries };
        entries = [];
        sent = true;
      }
    }
    if (entries.length || !sent) yield { ...head, entries };
  }
}

function* maglevRows(m: BpfMap): Generator<DecodedMap['entries'][number]> {
  for (const k of m.keys()) {
    const id = m.innerId(k);
    let size = 0;
    if (id) { const inner = BpfMap.fromId(id); size = inner.maxEntries; inner.close(); }
    yield { key: { svcId: C.decodeMaglevKey(k) }, value: { innerMapId: id, tableSize: size } };
  }
}

function* entryRows(name: string, m: BpfMap, d: Decoder, all: { keys: Buffer; values: Buffer; count: number }): Generator<DecodedMap['entries'][number]> {
  const ks = m.keySize;
  const vs = m.valueBytes;
  for (let i = 0; i < all.count; i++) {
    const k = all.keys.subarray(i * ks, (i + 1) * ks);
    const v = all.values.subarray(i * vs, (i + 1) * vs);
    // skipZero: per-CPU counters never touched; backends: the ARRAY's free ids (all-zero).
    if ((d.skipZero || name === C.MAP.backends) && isZero(v)) continue;
    yield { key: wrap(d.key(k)), value: wrap(d.value(v)) };
  }
}

/** Every map in one list (ListMaps): at most `limit` entries a map. */
export async function decodeAllMaps(obj: BpfObject, limit = 10_000): Promise<DecodedMaps> {
  const out: DecodedMap[] = [];
  for await (const c of decodeMaps(obj)) {
    const last = out[out.length - 1];
    if (last?.name !== c.name) out.push({ ...c, entries: c.entries.slice(0, limit) });
    else for (const e of c.entries) if (last.entries.length < limit) last.entries.push(e);
  }
  return out;
}

/** Lookups between two turns of the event loop, so 100,000 frontends do not stall the agent. */
const STATS_CHUNK = 2048;

/** Counters of the given frontends, in the order given (Services sorted by the caller). */
/** One drop reason's count over every CPU (since the drops map was created: it survives restarts). */
export function dropCount(obj: Pick<BpfObject, 'map'>, reason: number): number {
  const v = obj.map(C.MAP.drops).lookup(C.encodeDropKey(reason));
  return v ? Number(C.decodeDropValue(v)) : 0;
}

export async function readStats(obj: BpfObject, ids: Map<number, { service: string; frontend: string; family?: 4 | 6 }>): Promise<StatsInfo> {
  const stats = obj.map(C.MAP.stats);
  const services: StatsInfo['services'] = [];
  for (const [id, who] of ids) {
    if (services.length % STATS_CHUNK === STATS_CHUNK - 1) await new Promise((r) => setImmediate(r));
    const v = stats.lookup(C.encodeStatsKey(id));
    const s = v ? C.decodeStatsValue(v) : { packets: 0n, bytes: 0n, newFlows: 0n };
    services.push({ svc: who.service, frontend: who.frontend, ipFamily: FAMILY_NAME[who.family ?? 4], packets: Number(s.packets), bytes: Number(s.bytes), newFlows: Number(s.newFlows) });
  }
  const drops: Record<string, number> = {};
  for (const r of C.DROP_REASONS) if (r.id !== 0) drops[r.key] = dropCount(obj, r.id);
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

/** announce_stats counters (ARP answered in the datapath), summed over CPUs. */
export function announceCounters(obj: BpfObject): Record<C.AnnounceCounter, number> {
  const m = obj.map(C.MAP.announceStats);
  const out = {} as Record<C.AnnounceCounter, number>;
  for (const c of C.ANNOUNCE_COUNTERS) {
    const v = m.lookup(C.encodeAnnounceStatsKey(c.id));
    out[c.key] = v ? Number(C.decodeDropValue(v)) : 0;
  }
  return out;
}
