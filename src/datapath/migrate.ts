// Entries of a pinned map carried into the new map that replaces it (a changed layout:
// --conntrack-size, --flow-cache-size, or a struct of a new build). Sizes alone: every entry
// copied (into a smaller map, what fits: the most recently used first, the rest counted).
// A changed struct: fields matched by name and type through the OLD map's own BTF (the
// kernel keeps it with the map), fields the new struct adds zero-filled, fields it lost
// dropped and named. No BTF, bitfields, or a field whose type changed: nothing is copied,
// the map starts empty as before, with the reason said.
import type { BpfMap, MapBtf } from './bpf.js';

type BtfType = NonNullable<MapBtf['value']>;

export interface Migration {
  map: string;
  /** migrated: entries copied (maybe not all: `dropped`); emptied: the new map starts empty */
  outcome: 'migrated' | 'emptied';
  /** entries in the old map when read */
  found: number;
  copied: number;
  /** entries that did not fit the new map (or all of them when emptied) */
  dropped: number;
  /** what changed, or why nothing was copied */
  reason: string;
  fieldsAdded: string[];
  fieldsDropped: string[];
}

/** [source offset, destination offset, bytes] */
type Span = [number, number, number];

export interface Plan {
  key: Span[];
  value: Span[];
  keySize: number;
  valueSize: number;
  fieldsAdded: string[];
  fieldsDropped: string[];
  /** offset of a u64 "last_seen"/"last_used" in the OLD value: recency order when truncating */
  recency?: number;
  /** offset of a u64 "created" in the OLD value: what a catch-up pass (CopyOptions.since) reads */
  created?: number;
  /** what changed, in words */
  change: string;
}

const MIGRATABLE = new Set(['hash', 'lru_hash', 'array', 'lpm_trie']);
const isPad = (n: string): boolean => /^(pad|__pad|reserved)\d*$/.test(n);

function structPlan(what: 'key' | 'value', o: BtfType | null | undefined, n: BtfType | null | undefined, oldSize: number, newSize: number):
  { spans: Span[]; added: string[]; dropped: string[] } | string {
  if (!o || !n) {
    if (oldSize === newSize) return { spans: [[0, 0, newSize]], added: [], dropped: [] };
    return `the old map has no BTF and its ${what} size changed (${oldSize} -> ${newSize} bytes)`;
  }
  if (!o.members.length || !n.members.length) {
    if (o.type === n.type && oldSize === newSize) return { spans: [[0, 0, newSize]], added: [], dropped: [] };
    return `${what} type changed (${o.type} -> ${n.type})`;
  }
  if (o.members.some((m) => m.bitfield) || n.members.some((m) => m.bitfield)) return `${what} struct has bitfields`;
  const spans: Span[] = [];
  const added: string[] = [];
  for (const m of n.members) {
    const was = o.members.find((x) => x.name === m.name);
    if (!was) {
      if (!isPad(m.name)) added.push(m.name);
      continue;
    }
    if (was.type !== m.type || was.size !== m.size) return `${what} field ${m.name} changed type (${was.type} -> ${m.type})`;
    if (was.offset + was.size > oldSize || m.offset + m.size > newSize) return `${what} field ${m.name} lies outside the ${what}`;
    spans.push([was.offset, m.offset, m.size]);
  }
  const dropped = o.members.filter((x) => !isPad(x.name) && !n.members.some((m) => m.name === x.name)).map((x) => x.name);
  return { spans: merge(spans), added, dropped };
}

/** Adjacent spans in the same order on both sides become one copy. */
function merge(spans: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of [...spans].sort((a, b) => a[1] - b[1])) {
    const last = out[out.length - 1];
    if (last && last[0] + last[2] === s[0] && last[1] + last[2] === s[1]) last[2] += s[2];
    else out.push([...s]);
  }
  return out;
}

/** How entries of `old` become entries of `neu`, or why they cannot. */
export function planMigration(old: BpfMap, neu: BpfMap): Plan | string {
  if (old.type !== neu.type) return `map type changed (${old.type} -> ${neu.type})`;
  if (!MIGRATABLE.has(neu.type)) return `${neu.type} maps are not migrated`;
  const same = old.keySize === neu.keySize && old.valueSize === neu.valueSize;
  let ob: MapBtf | null = null;
  let nb: MapBtf | null = null;
  try {
    ob = old.btf();
    nb = neu.btf();
  } catch (e) {
    if (!same) return `reading BTF failed: ${(e as Error).message}`;
  }
  const k = structPlan('key', ob?.key, nb?.key, old.keySize, neu.keySize);
  if (typeof k === 'string') return k;
  const v = structPlan('value', ob?.value, nb?.value, old.valueSize, neu.valueSize);
  if (typeof v === 'string') return v;
  const layoutChanged = !same || k.added.length + k.dropped.length + v.added.length + v.dropped.length > 0
    || JSON.stringify(k.spans) !== JSON.stringify([[0, 0, neu.keySize]]) || JSON.stringify(v.spans) !== JSON.stringify([[0, 0, neu.valueSize]]);
  const changes: string[] = [];
  if (old.maxEntries !== neu.maxEntries) changes.push(`max_entries ${old.maxEntries} -> ${neu.maxEntries}`);
  if (old.flags !== neu.flags) changes.push(`flags 0x${old.flags.toString(16)} -> 0x${neu.flags.toString(16)}`);
  if (layoutChanged) changes.push(`layout key ${old.keySize} -> ${neu.keySize}, value ${old.valueSize} -> ${neu.valueSize} bytes (fields by name through BTF)`);
  const rec = ob?.value?.members.find((m) => (m.name === 'last_seen' || m.name === 'last_used') && m.size === 8 && !m.bitfield);
  const created = ob?.value?.members.find((m) => m.name === 'created' && m.size === 8 && !m.bitfield);
  return {
    key: k.spans, value: v.spans, keySize: neu.keySize, valueSize: neu.valueSize,
    fieldsAdded: [...k.added.map((f) => `key.${f}`), ...v.added],
    fieldsDropped: [...k.dropped.map((f) => `key.${f}`), ...v.dropped],
    recency: rec?.offset, created: created?.offset,
    change: changes.join(', ') || 'unchanged',
  };
}

function convert(src: Buffer, srcOff: number, spans: Span[], dst: Buffer, dstOff: number): void {
  for (const [so, d, n] of spans) src.copy(dst, dstOff + d, srcOff + so, srcOff + so + n);
}

export interface CopyOptions {
  /** entries of a hash map kept free (an LRU map's per-CPU free lists, conntrack admission) */
  reserve?: number;
  /** only keys the new map lacks (a second pass after the programs switched) */
  missingOnly?: boolean;
  /**
   * With missingOnly: only entries created (else last used) at or after this CLOCK_MONOTONIC ns,
   * each inserted alone and only if absent (BPF_NOEXIST), so an entry the new programs made
   * meanwhile is never overwritten. The catch-ups around a link switch: few entries, quickly.
   */
  since?: bigint;
}

/**
 * Copy `old`'s entries into `neu` by `plan`. A hash map takes at most maxEntries - reserve
 * entries (those of latest last_seen/last_used first); an array copies the indexes both have
 * (non-zero values beyond the new size are dropped). Never throws for what does not fit.
 */
export async function copyEntries(old: BpfMap, neu: BpfMap, plan: Plan, o: CopyOptions = {}): Promise<{ found: number; copied: number; dropped: number }> {
  const { keys, values, count } = await old.lookupBatch();
  const oks = old.keySize;
  const ovs = old.valueSize;
  let idx = Array.from({ length: count }, (_, i) => i);
  let dropped = 0;
  const isArray = neu.type === 'array';
  const stamp = plan.created ?? plan.recency;
  if (o.missingOnly && o.since !== undefined && !isArray && stamp !== undefined) {
    const since = o.since;
    const k = Buffer.alloc(plan.keySize);
    const v = Buffer.alloc(plan.valueSize);
    let copied = 0;
    for (const i of idx) {
      if (values.readBigUInt64LE(i * ovs + stamp) < since) continue;
      k.fill(0);
      v.fill(0);
      convert(keys, i * oks, plan.key, k, 0);
      convert(values, i * ovs, plan.value, v, 0);
      try {
        neu.update(k, v, 'noexist');
        copied++;
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') dropped++; // EEXIST: the new programs made it
      }
    }
    return { found: count, copied, dropped };
  }
  if (isArray) {
    const zero = (i: number): boolean => values.subarray(i * ovs, (i + 1) * ovs).every((b) => b === 0);
    const beyond = idx.filter((i) => keys.readUInt32LE(i * oks) >= neu.maxEntries);
    dropped = beyond.filter((i) => !zero(i)).length;
    idx = idx.filter((i) => keys.readUInt32LE(i * oks) < neu.maxEntries);
  } else {
    let present = 0;
    if (o.missingOnly) {
      const have = await neu.lookupBatch();
      const set = new Set<string>();
      for (let i = 0; i < have.count; i++) set.add(have.keys.subarray(i * neu.keySize, (i + 1) * neu.keySize).toString('latin1'));
      present = have.count;
      const k = Buffer.alloc(plan.keySize);
      idx = idx.filter((i) => {
        k.fill(0);
        convert(keys, i * oks, plan.key, k, 0);
        return !set.has(k.toString('latin1'));
      });
    }
    const room = Math.max(0, neu.maxEntries - Math.min(o.reserve ?? 0, Math.floor(neu.maxEntries / 2)) - present);
    if (idx.length > room) {
      const r = plan.recency;
      if (r !== undefined) idx.sort((a, b) => Number(values.readBigUInt64LE(b * ovs + r) - values.readBigUInt64LE(a * ovs + r)));
      dropped = idx.length - room;
      idx = idx.slice(0, room);
    }
  }
  const n = idx.length;
  if (!n) return { found: count, copied: 0, dropped };
  const nk = Buffer.alloc(n * plan.keySize);
  const nv = Buffer.alloc(n * plan.valueSize);
  idx.forEach((i, j) => {
    convert(keys, i * oks, plan.key, nk, j * plan.keySize);
    convert(values, i * ovs, plan.value, nv, j * plan.valueSize);
  });
  let copied = 0;
  const CHUNK = 4096;
  for (let s = 0; s < n; s += CHUNK) {
    const e = Math.min(n, s + CHUNK);
    try {
      copied += await neu.updateBatch(nk.subarray(s * plan.keySize, e * plan.keySize), nv.subarray(s * plan.valueSize, e * plan.valueSize), e - s);
    } catch (err) {
      // E2BIG/ENOMEM on a full map: count the rest, never fail the start over it
      const done = (err as { done?: number }).done ?? 0;
      copied += done;
      dropped += n - copied;
      break;
    }
  }
  return { found: count, copied, dropped };
}

/** Plan and copy one map; an `emptied` result (the new map left empty) when it cannot. */
export async function migrateMap(name: string, old: BpfMap, neu: BpfMap, o: CopyOptions = {}): Promise<Migration> {
  const plan = planMigration(old, neu);
  if (typeof plan === 'string') {
    let found = 0;
    try { found = (await old.lookupBatch()).count; } catch { /* counted as 0 */ }
    return { map: name, outcome: 'emptied', found, copied: 0, dropped: found, reason: plan, fieldsAdded: [], fieldsDropped: [] };
  }
  const r = await copyEntries(old, neu, plan, o);
  return { map: name, outcome: 'migrated', ...r, reason: plan.change, fieldsAdded: plan.fieldsAdded, fieldsDropped: plan.fieldsDropped };
}

/** One line for `xlb status` and the log. */
export function describe(m: Migration): string {
  if (m.outcome === 'emptied') return `emptied: ${m.reason}; ${m.dropped} entries lost`;
  const f = [m.fieldsAdded.length ? `fields added (zero): ${m.fieldsAdded.join(',')}` : '', m.fieldsDropped.length ? `fields dropped: ${m.fieldsDropped.join(',')}` : ''].filter(Boolean);
  return `migrated ${m.copied}/${m.found} entries${m.dropped ? `, ${m.dropped} did not fit` : ''} (${m.reason}${f.length ? `; ${f.join('; ')}` : ''})`;
}
