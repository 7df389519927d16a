// The reconciler: makes the pinned maps equal to the desired state, one Service at a time,
// in the make-before-break order of DESIGN §3 (codecs.ts repeats it), keeping svc_id and
// backend_id stable across agent restarts by reading them back from the pinned maps.
import type { BpfMap, BpfObject } from './bpf.js';
import { BpfMap as BpfMapClass } from './bpf.js';
import * as C from './codecs.js';
import type { FrontendSpec, ServiceSpec, BackendSpec } from '../model/types.js';
import { maglevTable } from '../model/maglev.js';
import { frontendText } from '../model/ip.js';

export interface ReconcileResult {
  service: string;
  ok: boolean;
  frontends: number;
  backends: number;
  durationMs: number;
  /** per-frontend problems (map full, conflicts) that did not stop the others */
  errors: string[];
}

interface FrontendState {
  svcId: number;
  owner: string;
  /** selectable backend ids in slot order */
  slots: number[];
  maglevSig: string;
  srcRanges: Set<string>;
  value: C.SvcValue;
  /** the services entry holds `value` (false until the first successful write) */
  inMap: boolean;
  /** an inner Maglev table is installed under svc_id */
  hasMaglev: boolean;
  /** the revnat entry holds this frontend's address and port (a function of its key: no copy kept) */
  revnatOk: boolean;
  /**
   * every backend this frontend references, selectable or not, each once (the objects: no key
   * string each; an array, as a Set of ten cost ~280 bytes more per frontend)
   */
  backendKeys: BackendState[];
}

/** A backend entry: its value as written, inline (10,000 Services x 10 endpoints hold 100,000). */
interface BackendState extends C.BackendValue {
  id: number;
  refs: number;
  /** no frontend references it: kept (draining) while conntrack still names it */
  retiredAt?: number;
}

/** The source ranges of a frontend that has none (most): one shared, never mutated, Set. */
const NO_RANGES: Set<string> = new Set();

type MaglevInput = { id: number; key: string; weight: number };

/** A Maglev table computed for one backend set, and its inner map once created and filling. */
interface Table {
  table: Uint32Array;
  map?: BpfMap;
  filled?: Promise<number>;
}

/** A Maglev table to delete after the chunk's entries; `free` returns the svc_id afterwards. */
interface Drop {
  svcId: number;
  free: boolean;
  errors?: string[];
}

/** State shared by the Services of one applyMany() chunk. */
interface Batch {
  /** by backend-set signature: frontends with the same selectable backends share a table */
  tables: Map<string, Table>;
  drops: Drop[];
  /** frontends that Services earlier in the chunk give up: a later one may take them over */
  released: Set<string>;
  /**
   * The backend list and slot ids last settled for a backends list of the model (the frontends
   * of one port and policy share it): frontends with the same share the arrays (never mutated
   * in place), instead of one copy each (20,000 frontends x 10 backends: ~2.5 MB).
   */
  shared: Map<readonly BackendSpec[], { keys: BackendState[]; slots?: number[] }>;
}

/** One frontend between its prepared contents (step 1-2) and its entry (steps 3-6). */
interface Pending {
  k: string;
  f: FrontendSpec;
  st: FrontendState;
  count: number;
  slotIds: number[];
  newKeys: Set<BackendState>;
  /** backends referenced before and not now, released once the new state is in place */
  dropped: BackendState[];
  /** Maglev backend-set signature; '' when the frontend has no table */
  sig: string;
  /** a new table to install under svc_id */
  table?: Table;
  /** changed slots (keys, values packed) */
  slots?: { keys: Buffer; values: Buffer };
  failed?: string;
}

interface Job {
  service: string;
  want: Map<string, FrontendSpec>;
  errors: string[];
  pending: Pending[];
}

/** What entryCounts() reports: entries of the Service maps this reconciler has written. */
export interface EntryCounts {
  services: number;
  slots: number;
  maglev: number;
  srcRanges: number;
}

/** Services per applyMany() chunk: bounds the inner-map fds and table memory held at once. */
const CHUNK = 32;
/** Longest stretch of synchronous preparing before the event loop gets a turn. */
const YIELD_MS = 10;
/** Up to this many staged entries are written one syscall each, on this thread (a one-Service change). */
const SYNC_WRITES = 16;

/**
 * Entries for one map staged during a chunk's preparation and written together before the
 * chunk's tables: one batch syscall off the JS thread instead of one per entry (a cold start
 * of 10,000 Services x 10 endpoints: 100,000 backend and 20,000 stats entries).
 */
class StagedWrites {
  private keys: Buffer[] = [];
  private values: Buffer[] = [];

  constructor(private readonly map: BpfMap) {}

  add(key: Buffer, value: Buffer): void {
    this.keys.push(key);
    this.values.push(value);
  }

  async write(): Promise<void> {
    const { keys, values } = this;
    if (keys.length === 0) return;
    this.keys = [];
    this.values = [];
    if (keys.length > SYNC_WRITES) {
      try {
        await this.map.updateBatch(Buffer.concat(keys), Buffer.concat(values), keys.length);
        return;
      } catch {
        // rewritten one by one below (idempotent), so the failing entry names its error
      }
    }
    for (let i = 0; i < keys.length; i++) this.map.update(keys[i], values[i]);
  }
}

/** Keys and values for the slots that differ between `old` and `ids`, or undefined. */
function slotDelta(svcId: number, old: number[], ids: number[]): { keys: Buffer; values: Buffer } | undefined {
  const changed: number[] = [];
  for (let i = 0; i < ids.length; i++) if (old[i] !== ids[i]) changed.push(i);
  if (changed.length === 0) return undefined;
  return C.encodeSlotBatch(svcId, changed, ids);
}

export interface ReconcilerMaps {
  services: BpfMap;
  backends: BpfMap;
  slots: BpfMap;
  maglev: BpfMap;
  revnat: BpfMap;
  srcRanges: BpfMap;
  stats: BpfMap;
}

export function mapsOf(obj: BpfObject): ReconcilerMaps {
  return {
    services: obj.map(C.MAP.services),
    backends: obj.map(C.MAP.backends),
    slots: obj.map(C.MAP.slots),
    maglev: obj.map(C.MAP.maglev),
    revnat: obj.map(C.MAP.revnat),
    srcRanges: obj.map(C.MAP.srcRanges),
    stats: obj.map(C.MAP.stats),
  };
}

const wildcard = (family: C.SvcKey['family']): string => (family === 6 ? '*6' : '*');
// Keys the reconciler holds for as long as a frontend or backend exists: joined, as join() makes
// one flat string where a template literal leaves a tree of concatenations (~100 bytes a key).
const feKey = (k: C.SvcKey): string => [k.addr ?? wildcard(k.family), k.port, k.proto, k.scope].join('|');
const beKey = (addr: string, port: number): string => [addr, port].join(':');
const revnatText = (r: C.RevnatValue): string => `${r.addr ?? wildcard(r.family)}:${r.port}`;

/** A frontend's key as shown (addr:port/proto scope, IPv6 in brackets) and its family. */
function frontendLabel(k: string): { frontend: string; family: 4 | 6 } {
  const [addr, port, proto, scope] = k.split('|');
  const family = addr === '*6' || addr!.includes(':') ? 6 : 4;
  return { frontend: `${frontendText(addr!.startsWith('*') ? null : addr!, Number(port), family)}/${proto} ${scope}`, family };
}

function svcKeyOf(f: FrontendSpec): C.SvcKey {
  return { addr: f.addr, port: f.port, proto: f.proto, scope: f.scope, ...(f.addr === null && f.family === 6 ? { family: 6 as const } : {}) };
}

function flagsOf(f: FrontendSpec): number {
  let flags = 0;
  if (f.maglev) flags |= C.SVC_FLAG.maglev;
  if (f.localOnly) flags |= C.SVC_FLAG.local;
  if (f.sourceRanges.length > 0) flags |= C.SVC_FLAG.srcRanges;
  if (f.addr === null) flags |= C.SVC_FLAG.nodePort;
  return flags;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameMembers<T>(a: readonly T[], b: ReadonlySet<T>): boolean {
  return a.length === b.size && a.every((x) => b.has(x));
}

function errText(e: unknown): string {
  const err = e as Error & { code?: string };
  return err.code ? `${err.code}: ${err.message}` : String(err.message ?? e);
}

export class Reconciler {
  private readonly frontends = new Map<string, FrontendState>();
  /** a Service's frontend keys: a few, so an array */
  private readonly byService = new Map<string, string[]>();
  /**
   * Backends by address: the key is the address string the BackendSpec (and the source's
   * slice) already holds, not an `addr:port` string per backend (100,000 at 10,000 Services x
   * 10 endpoints: ~3 MB); the few addresses with several ports hold an array.
   */
  private readonly backends = new Map<string, BackendState | BackendState[]>();
  private backendsN = 0;
  private readonly freeSvcIds: number[] = [];
  /** ids of reaped backends (no conntrack entry names them any more), reused FIFO */
  private readonly freeBackendIds: number[] = [];
  private nextSvcId = 1;
  private nextBackendId = 1;
  /** pinned frontends not yet claimed by a desired Service since start (removed by prune()) */
  private readonly unclaimed = new Set<string>();
  /** per Service: the applyMany() call that last took it, so calls for one Service never interleave */
  private readonly busy = new Map<string, Promise<void>>();
  /** when the current stretch of synchronous work began: applyMany() or breathe()'s last yield */
  private ranSince = 0;
  private readonly maxSvcId: number;
  /** backend and stats entries of prepared frontends, written before any slot or table names them */
  private readonly staged: StagedWrites[];
  /** the last write of staged entries: a chunk whose entries another took waits for it */
  private written: Promise<void> = Promise.resolve();
  /** the frontends' entries, kept as they change (the status API reads them on every call) */
  private readonly counts: EntryCounts = { services: 0, slots: 0, maglev: 0, srcRanges: 0 };
  /** backends no frontend references, draining until reapRetired() lets them go */
  private readonly retired = new Set<BackendState>();

  constructor(private readonly m: ReconcilerMaps, private readonly opts: { maglevM: number; cpus: number }) {
    this.maxSvcId = m.stats.maxEntries - 1;
    this.staged = [new StagedWrites(m.backends), new StagedWrites(m.stats)];
  }

  /** Step 1's writes (and fresh stats) for everything prepared so far, in order with earlier calls. */
  private writeStaged(): Promise<void> {
    const next = this.written.then(async () => { for (const w of this.staged) await w.write(); });
    this.written = next.catch(() => undefined);
    return next;
  }

  /** Read the pinned maps so ids survive restarts; existing entries stay until prune(). */
  async adoptPinned(): Promise<{ frontends: number; backends: number }> {
    await this.adoptBackends();
    const used = new Set<number>();
    const bySvcId = new Map<number, FrontendState>();
    for (const [k, v] of this.m.services.entries()) {
      const key = C.decodeSvcKey(k);
      const value = C.decodeSvcValue(v);
      const st = this.adoptFrontend(key, value);
      this.frontends.set(feKey(key), st);
      this.count(st, 1);
      this.unclaimed.add(feKey(key));
      bySvcId.set(value.svcId, st);
      used.add(value.svcId);
    }
    for (const [k] of this.m.srcRanges.entries()) {
      const r = C.decodeSrcRangeKey(k);
      const st = bySvcId.get(r.svcId);
      if (st && !st.srcRanges.has(r.cidr)) {
        st.srcRanges.add(r.cidr);
        this.counts.srcRanges++;
      }
    }
    const max = used.size ? Math.max(...used) : 0;
    for (let i = 1; i <= max; i++) if (!used.has(i)) this.freeSvcIds.push(i);
    this.nextSvcId = max + 1;
    return { frontends: this.frontends.size, backends: this.backendsN };
  }

  private async adoptBackends(): Promise<void> {
    // backends is an ARRAY: every index exists, all-zero ones are free ids. One batch lookup
    // (keys and values packed in two Buffers, ~7 MB for 262k slots) instead of a syscall per
    // index (2 s at start) or entries() (a key and a value Buffer per slot: hundreds of MB).
    const seen = new Set<number>();
    let max = 0;
    const adopt = (id: number, v: Buffer | null): void => {
      const value = v && C.decodeBackendValue(v);
      if (id === 0 || !value) return;
      // two ids pinned for one address:port: the later one is kept (as a Map.set by key did)
      const dup = this.getBackend(value.addr, value.port);
      if (dup) this.dropBackend(dup);
      this.putBackend({ addr: value.addr, port: value.port, state: value.state, local: value.local, id, refs: 0 });
      seen.add(id);
      max = Math.max(max, id);
    };
    const { keys, values, count } = await this.m.backends.lookupBatch();
    const ks = keys.length / Math.max(1, count);
    const vs = values.length / Math.max(1, count);
    for (let i = 0; i < count; i++) adopt(C.decodeBackendKey(keys.subarray(i * ks, (i + 1) * ks)), values.subarray(i * vs, (i + 1) * vs));
    for (let i = 1; i < max; i++) if (!seen.has(i)) this.freeBackendIds.push(i);
    this.nextBackendId = max + 1;
  }

  private adoptFrontend(key: C.SvcKey, value: C.SvcValue): FrontendState {
    const maglev = (value.flags & C.SVC_FLAG.maglev) !== 0;
    const slots: number[] = [];
    for (let i = 0; i < value.count && !maglev; i++) {
      const s = this.m.slots.lookup(C.encodeSlotKey({ svcId: value.svcId, slot: i }));
      slots.push(s ? C.decodeSlotValue(s) : 0);
    }
    const rv = this.m.revnat.lookup(C.encodeRevnatKey(value.svcId));
    const revnatOk = rv !== null && revnatText(C.decodeRevnatValue(rv)) === revnatText({ addr: key.addr, port: key.port, family: key.family ?? 4 });
    return {
      svcId: value.svcId, owner: '', slots, maglevSig: '', srcRanges: new Set(), value, inMap: true,
      hasMaglev: this.m.maglev.innerId(C.encodeMaglevKey(value.svcId)) !== null, revnatOk, backendKeys: [],
    };
  }

  /** Program one Service (spec) or remove it (undefined). Never throws for map errors. */
  async apply(service: string, spec: ServiceSpec | undefined): Promise<ReconcileResult> {
    return (await this.applyMany([[service, spec]]))[0];
  }

  /**
   * Program several Services (or remove those whose spec is undefined); results in the same
   * order, one per distinct key (the last spec given for a key wins). Same outcome as calling
   * apply() for each in turn (a frontend claimed by two Services goes to the one holding it or
   * coming first; one that an earlier Service gives up is handed over in place, keeping its
   * svc_id) — but the writes are grouped per chunk of Services: every backend, then
   * every table (all slots in one batch, every new Maglev table under its svc_id in one
   * setInnerBatch, so the kernel's RCU wait is paid once, not per frontend), then each
   * frontend's revnat, source ranges and services entry, then removals, and last the Maglev
   * tables no longer wanted (one batch). Each frontend still sees DESIGN §3's order.
   * Frontends of one chunk whose selectable backends and weights are identical share one
   * inner table.
   */
  async applyMany(entries: Iterable<readonly [string, ServiceSpec | undefined]>): Promise<ReconcileResult[]> {
    const specs = new Map<string, ServiceSpec | undefined>();
    for (const [k, s] of entries) specs.set(k, s);
    const list = [...specs];
    const unlock = await this.lock(list.map(([k]) => k));
    // A stretch of synchronous work starts here: breathe() bounds it from now, not from its last
    // yield (long ago for a change arriving after idle, which then waited behind whatever the
    // event loop had queued: API calls, new connections, a sweep).
    this.ranSince = performance.now();
    try {
      const out: ReconcileResult[] = [];
      for (let i = 0; i < list.length; i += CHUNK) out.push(...await this.applyChunk(list.slice(i, i + CHUNK)));
      return out;
    } finally {
      unlock();
    }
  }

  /** Waits for earlier calls touching any of these Services; returns the release. */
  private async lock(services: string[]): Promise<() => void> {
    const before = services.map((s) => this.busy.get(s)).filter((p): p is Promise<void> => p !== undefined);
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    for (const s of services) this.busy.set(s, mine);
    await Promise.all(before);
    return () => {
      release();
      for (const s of services) if (this.busy.get(s) === mine) this.busy.delete(s);
    };
  }

  private async applyChunk(list: Array<[string, ServiceSpec | undefined]>): Promise<ReconcileResult[]> {
    const t0 = performance.now();
    const b: Batch = { tables: new Map(), drops: [], released: new Set(), shared: new Map() };
    try {
      const jobs: Job[] = [];
      for (const [service, spec] of list) jobs.push(await this.prepareService(service, spec, b));
      const pending = jobs.flatMap((j) => j.pending);
      await this.writeTables(pending);
      for (const j of jobs) this.finishService(j, b);
      await this.dropTables(b.drops);
      return jobs.map((j) => this.resultOf(j, t0));
    } finally {
      // The outer map holds its own references; replaced tables are freed by the kernel.
      for (const t of b.tables.values()) t.map?.close();
    }
  }

  private async prepareService(service: string, spec: ServiceSpec | undefined, b: Batch): Promise<Job> {
    const job: Job = { service, want: new Map(), errors: [], pending: [] };
    for (const f of spec?.frontends ?? []) {
      const k = feKey(svcKeyOf(f));
      const cur = this.frontends.get(k);
      // apply() one after another would have removed a frontend an earlier Service gave up
      // before this one claims it; here it is handed over in place (make-before-break).
      if (cur && cur.owner && cur.owner !== service && !b.released.delete(k)) {
        job.errors.push(`frontend ${k} is already programmed for ${cur.owner}; skipped`);
        continue;
      }
      job.want.set(k, f);
    }
    for (const k of this.byService.get(service) ?? []) if (!job.want.has(k)) b.released.add(k);
    for (const [k, f] of job.want) {
      try {
        job.pending.push(await this.prepareFrontend(service, k, f, b));
      } catch (e) {
        job.errors.push(`frontend ${k}: ${errText(e)}`);
      }
      await this.breathe();
    }
    return job;
  }

  /**
   * Computing a chunk's Maglev tables is ~2 ms each of JS: let the event loop run (API,
   * health checks, watch events) at least every YIELD_MS.
   */
  private async breathe(): Promise<void> {
    if (performance.now() - this.ranSince < YIELD_MS) return;
    await new Promise((r) => setImmediate(r));
    this.ranSince = performance.now();
  }

  /** Step 1 (backends) and the contents of step 2 (slot writes, a filled Maglev table). */
  private async prepareFrontend(service: string, k: string, f: FrontendSpec, b: Batch): Promise<Pending> {
    let st = this.frontends.get(k);
    if (!st) {
      st = {
        svcId: this.allocSvcId(), owner: service, slots: [], maglevSig: '', srcRanges: NO_RANGES,
        value: { svcId: 0, count: 0, flags: 0, affinityTimeout: 0 }, inMap: false, hasMaglev: false,
        revnatOk: false, backendKeys: [],
      };
      st.value.svcId = st.svcId;
      this.frontends.set(k, st);
    }
    st.owner = service;
    this.unclaimed.delete(k);

    // 1. backends (every endpoint, so established flows keep draining ones).
    const had = new Set(st.backendKeys);
    const newKeys = new Set<BackendState>();
    const selectable: MaglevInput[] = [];
    try {
      for (const be of f.backends) {
        const bst = this.ensureBackend(be);
        if (!had.has(bst) && !newKeys.has(bst)) bst.refs++;
        newKeys.add(bst);
        if (be.selectable) selectable.push({ id: bst.id, key: f.maglev ? beKey(be.addr, be.port) : '', weight: be.weight });
      }
    } finally {
      // Old and new references both hold until the new state is in place (finishFrontend),
      // so a failure anywhere before that neither loses nor double-counts one.
      // a new array: another frontend may share the old one (Batch.shared)
      const added = [...newKeys].filter((key) => !had.has(key));
      if (added.length) st.backendKeys = st.backendKeys.concat(added);
    }
    const count = selectable.length;
    const p: Pending = {
      k, f, st, count, slotIds: selectable.map((s) => s.id), newKeys, sig: '',
      dropped: [...st.backendKeys].filter((b) => !newKeys.has(b)),
    };
    if (f.maglev && count > 0) {
      p.sig = selectable.map((s) => `${s.id}/${s.key}/${s.weight}`).join(',');
      if (p.sig !== st.maglevSig) p.table = await this.tableFor(st, selectable, p.sig, b);
    }
    if (!f.maglev) p.slots = slotDelta(st.svcId, st.slots, p.slotIds);
    return p;
  }

  /**
   * The filled inner table for this backend set, shared within the chunk; undefined when the
   * pinned table (after a restart) already is that table. The fill runs on the thread pool
   * while the next frontend's table is computed.
   */
  private async tableFor(st: FrontendState, selectable: MaglevInput[], sig: string, b: Batch): Promise<Table | undefined> {
    let t = b.tables.get(sig);
    if (!t) {
      t = { table: maglevTable(selectable, this.opts.maglevM) };
      b.tables.set(sig, t);
    }
    if (!st.maglevSig && st.hasMaglev && (await this.pinnedTableEquals(st.svcId, t.table))) return undefined;
    if (!t.map) {
      const map = BpfMapClass.create(C.maglevInnerSpec(this.opts.maglevM, st.svcId) as Parameters<typeof BpfMapClass.create>[0]);
      const enc = C.encodeMaglevTable(t.table);
      t.map = map;
      t.filled = map.updateBatch(enc.keys, enc.values, enc.count);
      t.filled.catch(() => undefined); // awaited in writeTables
    }
    return t;
  }

  /** Step 1's staged writes, then step 2 for every pending frontend: slots in one batch, then new Maglev tables in one. */
  private async writeTables(pending: Pending[]): Promise<void> {
    try {
      await this.writeStaged();
    } catch (e) {
      // A slot or table must never name a backend that is not written.
      for (const p of pending) p.failed = errText(e);
      return;
    }
    await this.writeSlots(pending.filter((p) => p.slots));
    for (const p of pending) {
      if (!p.table) continue;
      try {
        await p.table.filled;
      } catch (e) {
        p.failed = errText(e);
      }
    }
    const installs = pending.filter((p) => p.table && !p.failed);
    let done = 0;
    if (installs.length > 1) {
      const keys = Buffer.concat(installs.map((p) => C.encodeMaglevKey(p.st.svcId)));
      try {
        done = await this.m.maglev.setInnerBatch(keys, installs.map((p) => p.table!.map!));
      } catch (e) {
        // The entries before the failing one are in place; the rest go one by one so each
        // frontend gets its own error.
        done = (e as { done?: number }).done ?? 0;
      }
    }
    for (const [i, p] of installs.entries()) {
      if (i >= done) {
        try {
          await this.m.maglev.setInnerAsync(C.encodeMaglevKey(p.st.svcId), p.table!.map!);
        } catch (e) {
          p.failed = errText(e);
          continue;
        }
      }
      this.count(p.st, -1);
      p.st.hasMaglev = true;
      this.count(p.st, 1);
    }
    for (const p of pending) if (p.sig && !p.failed) p.st.maglevSig = p.sig;
  }

  /**
   * Changed slots of every frontend in one updateBatch; on failure, per frontend (for its
   * error). A few (a one-Service change) are written in place: a thread-pool round trip cost
   * more than the syscalls, and the change waited for it.
   */
  private async writeSlots(pending: Pending[]): Promise<void> {
    if (pending.length === 0) return;
    if (pending.reduce((n, p) => n + p.slots!.keys.length / 8, 0) <= SYNC_WRITES) {
      for (const p of pending) {
        const { keys, values } = p.slots!;
        const vs = values.length / (keys.length / 8);
        try {
          for (let i = 0; i < keys.length / 8; i++) this.m.slots.update(keys.subarray(i * 8, i * 8 + 8), values.subarray(i * vs, (i + 1) * vs));
        } catch (e) {
          this.slotsFailed(p, e);
        }
      }
      return;
    }
    try {
      const keys = Buffer.concat(pending.map((p) => p.slots!.keys));
      const values = Buffer.concat(pending.map((p) => p.slots!.values));
      await this.m.slots.updateBatch(keys, values, keys.length / 8);
      return;
    } catch {
      // fall through: rewrite per frontend (idempotent) to attribute the failure
    }
    for (const p of pending) {
      try {
        await this.m.slots.updateBatch(p.slots!.keys, p.slots!.values, p.slots!.keys.length / 8);
      } catch (e) {
        this.slotsFailed(p, e);
      }
    }
  }

  /**
   * A failed slot write may have written any of the frontend's changed slots: they are marked
   * unknown (-1), so the next apply rewrites them and a removal deletes them.
   */
  private slotsFailed(p: Pending, e: unknown): void {
    p.failed = errText(e);
    const st = p.st;
    this.count(st, -1);
    const slots = st.slots.slice();
    for (let i = 0; i < p.slotIds.length; i++) if (slots[i] !== p.slotIds[i]) slots[i] = -1;
    st.slots = slots;
    this.count(st, 1);
  }

  /** Steps 3-6 for each prepared frontend, then the Service's removed frontends. */
  private finishService(job: Job, b: Batch): void {
    for (const p of job.pending) {
      if (p.failed) {
        job.errors.push(`frontend ${p.k}: ${p.failed}`);
        continue;
      }
      try {
        this.finishFrontend(p, b, job.errors);
      } catch (e) {
        job.errors.push(`frontend ${p.k}: ${errText(e)}`);
      }
    }
    const released: BackendState[] = [];
    for (const k of this.byService.get(job.service) ?? []) {
      const owner = this.frontends.get(k)?.owner;
      if (owner !== job.service) continue; // handed over to a later Service of the chunk
      if (job.want.has(k)) continue;
      this.removeFrontend(k, released, b.drops, job.errors);
    }
    const mine = [...job.want.keys()].filter((k) => this.frontends.get(k)?.owner === job.service);
    if (mine.length) this.byService.set(job.service, mine); else this.byService.delete(job.service);
    this.releaseBackends(released);
  }

  private finishFrontend(p: Pending, b: Batch, errors: string[]): void {
    // A failed write below leaves st partly updated: counted again as it stands, whatever happens.
    this.count(p.st, -1);
    try {
      this.finishEntries(p, b, errors);
    } finally {
      this.count(p.st, 1);
    }
  }

  private finishEntries(p: Pending, b: Batch, errors: string[]): void {
    const { st, f, count } = p;
    const useSlots = !f.maglev;
    const shrinking = useSlots ? count < st.slots.length : st.slots.length > 0;

    // 3. revnat, 4. source ranges.
    if (!st.revnatOk) {
      this.m.revnat.update(C.encodeRevnatKey(st.svcId), C.encodeRevnatValue({ addr: f.addr, port: f.port, family: f.family }));
      st.revnatOk = true;
    }
    // st names what the maps hold before the services write, which can fail (map full): every
    // range written and the slots step 2 wrote; else a later frontend given this svc_id after a
    // removal would inherit what was left (source ranges allowing a client it should not).
    const wantRanges = new Set(f.sourceRanges);
    for (const cidr of wantRanges) {
      if (st.srcRanges.has(cidr)) continue;
      if (st.srcRanges === NO_RANGES) st.srcRanges = new Set();
      this.m.srcRanges.update(C.encodeSrcRangeKey({ svcId: st.svcId, cidr }), C.encodeSrcRangeValue(true));
      st.srcRanges.add(cidr);
    }
    if (useSlots && p.slots) st.slots = st.slots.length > count ? p.slotIds.concat(st.slots.slice(count)) : p.slotIds;

    // 5. the service entry, count last.
    const value: C.SvcValue = {
      svcId: st.svcId, count, flags: flagsOf(f), affinityTimeout: f.affinityTimeoutSec,
    };
    const changed = !st.inMap || value.count !== st.value.count || value.flags !== st.value.flags ||
      value.affinityTimeout !== st.value.affinityTimeout;
    if (changed) this.m.services.update(C.encodeSvcKey(svcKeyOf(f)), C.encodeSvcValue(value));
    st.value = value;
    st.inMap = true;

    // 6. what nothing references any more (a Maglev table after the whole chunk, in one batch).
    for (const cidr of st.srcRanges) {
      if (!wantRanges.has(cidr)) this.m.srcRanges.delete(C.encodeSrcRangeKey({ svcId: st.svcId, cidr }));
    }
    st.srcRanges = wantRanges.size ? wantRanges : NO_RANGES;
    if (shrinking) {
      for (let i = useSlots ? count : 0; i < st.slots.length; i++) this.m.slots.delete(C.encodeSlotKey({ svcId: st.svcId, slot: i }));
    }
    const shared = b.shared.get(f.backends);
    st.slots = !useSlots ? [] : shared?.slots && sameIds(shared.slots, p.slotIds) ? shared.slots : p.slotIds;
    if (!p.sig && st.hasMaglev) {
      b.drops.push({ svcId: st.svcId, free: false, errors });
      st.hasMaglev = false;
      st.maglevSig = '';
    }
    st.backendKeys = shared && sameMembers(shared.keys, p.newKeys) ? shared.keys : [...p.newKeys];
    b.shared.set(f.backends, { keys: st.backendKeys, slots: useSlots ? st.slots : shared?.slots });
    this.releaseBackends(p.dropped);
  }

  /**
   * Deletes Maglev tables whose services entries are already gone or at count 0 (one wait
   * for the batch). A removed frontend's svc_id is reused only after its table is gone.
   */
  private async dropTables(drops: Drop[]): Promise<void> {
    if (drops.length === 0) return;
    try {
      if (drops.length === 1) await this.m.maglev.deleteAsync(C.encodeMaglevKey(drops[0].svcId));
      else await this.m.maglev.deleteBatch(Buffer.concat(drops.map((d) => C.encodeMaglevKey(d.svcId))), drops.length);
    } catch (e) {
      // Left behind, a table is only unused memory: the next frontend given this svc_id replaces it.
      for (const d of drops) d.errors?.push(`maglev table of svc_id ${d.svcId} not deleted: ${errText(e)}`);
    }
    for (const d of drops) if (d.free) this.freeSvcIds.push(d.svcId);
  }

  private resultOf(job: Job, t0: number): ReconcileResult {
    const backends = new Set<BackendState>();
    let programmed = 0;
    for (const k of this.byService.get(job.service) ?? []) {
      const st = this.frontends.get(k)!;
      if (!st.inMap) continue;
      programmed++;
      for (const b of st.backendKeys) backends.add(b);
    }
    return {
      service: job.service, ok: job.errors.length === 0, frontends: programmed, backends: backends.size,
      durationMs: performance.now() - t0, errors: job.errors,
    };
  }

  /** After the first full sync: delete pinned frontends no desired Service claimed. */
  prune(): number {
    const released: BackendState[] = [];
    let n = 0;
    for (const k of [...this.unclaimed]) {
      this.removeFrontend(k, released);
      n++;
    }
    this.unclaimed.clear();
    this.releaseBackends(released);
    // Backends adopted from pins that nothing references any more may still carry flows.
    for (const v of this.backends.values()) {
      for (const b of Array.isArray(v) ? v : [v]) if (b.refs <= 0 && b.retiredAt === undefined) this.retire(b);
    }
    return n;
  }

  services(): string[] {
    return [...this.byService.keys()];
  }

  /** The Service this frontend is programmed for; undefined when none (or adopted, not yet claimed). */
  ownerOf(f: Pick<FrontendSpec, 'addr' | 'port' | 'proto' | 'scope' | 'family'>): string | undefined {
    return this.frontends.get(feKey(svcKeyOf(f as FrontendSpec)))?.owner || undefined;
  }

  svcIdOf(f: Pick<FrontendSpec, 'addr' | 'port' | 'proto' | 'scope' | 'family'>): number | undefined {
    return this.frontends.get(feKey(svcKeyOf(f as FrontendSpec)))?.svcId;
  }

  /** svc_id -> owning Service and frontend, for stats display; of the given Services, in their order. */
  svcIds(services: Iterable<string> = this.byService.keys()): Map<number, { service: string; frontend: string; family: 4 | 6 }> {
    const out = new Map<number, { service: string; frontend: string; family: 4 | 6 }>();
    for (const svc of services) {
      for (const k of this.byService.get(svc) ?? []) {
        const st = this.frontends.get(k);
        if (st?.owner) out.set(st.svcId, { service: st.owner, ...frontendLabel(k) });
      }
    }
    return out;
  }

  private allocSvcId(): number {
    const id = this.freeSvcIds.shift() ?? this.nextSvcId++;
    if (id > this.maxSvcId) {
      this.nextSvcId--;
      throw Object.assign(new Error(`no free svc_id (services map holds ${this.maxSvcId})`), { code: 'E2BIG' });
    }
    // Stats are indexed by svc_id: a reused id starts from zero.
    this.staged[1].add(C.encodeStatsKey(id), C.encodeStatsValue(this.opts.cpus));
    return id;
  }

  /**
   * Fresh ids first; a reaped id (no conntrack entry named it when it was freed) only once
   * the array is used up, so an id is reused as late as possible.
   */
  private allocBackendId(): number {
    if (this.nextBackendId < this.m.backends.maxEntries) return this.nextBackendId++;
    const id = this.freeBackendIds.shift();
    if (id === undefined) {
      throw Object.assign(new Error(`no free backend_id (backends map holds ${this.m.backends.maxEntries - 1})`), { code: 'E2BIG' });
    }
    return id;
  }

  private ensureBackend(b: BackendSpec): BackendState {
    let st = this.getBackend(b.addr, b.port);
    if (!st) {
      st = { addr: b.addr, port: b.port, state: b.state, local: b.local, id: this.allocBackendId(), refs: 0 };
      this.staged[0].add(C.encodeBackendKey(st.id), C.encodeBackendValue(st));
      this.putBackend(st);
    } else if (st.retiredAt !== undefined || st.state !== b.state || st.local !== b.local) {
      st.retiredAt = undefined;
      this.retired.delete(st);
      st.state = b.state;
      st.local = b.local;
      this.staged[0].add(C.encodeBackendKey(st.id), C.encodeBackendValue(st));
    }
    return st;
  }

  private async pinnedTableEquals(svcId: number, table: Uint32Array): Promise<boolean> {
    const id = this.m.maglev.innerId(C.encodeMaglevKey(svcId));
    if (id === null) return false;
    let inner: BpfMap;
    try {
      inner = BpfMapClass.fromId(id);
    } catch {
      return false; // reaching a map by id needs CAP_SYS_ADMIN (a container without it): write the table
    }
    try {
      if (inner.maxEntries !== table.length) return false;
      const { keys, values, count } = await inner.lookupBatch();
      if (count !== table.length) return false;
      for (let i = 0; i < count; i++) {
        if (values.readUInt32LE(i * 4) !== table[keys.readUInt32LE(i * 4)]) return false;
      }
      return true;
    } finally {
      inner.close();
    }
  }

  /**
   * With `drops`, the Maglev table is left for dropTables() (one batch after every entry of
   * the chunk is written) and the svc_id is freed there; without (prune), deleted at once.
   */
  private removeFrontend(k: string, released: BackendState[], drops?: Drop[], errors?: string[]): void {
    const st = this.frontends.get(k);
    if (!st) return;
    const [addr, port, proto, scope] = k.split('|');
    const wild = addr === '*' || addr === '*6';
    const key: C.SvcKey = { addr: wild ? null : addr!, port: Number(port), proto: proto as C.Proto, scope: scope as C.ScopeName, ...(addr === '*6' ? { family: 6 as const } : {}) };
    // The service entry goes first: no new packet finds the frontend while its parts go.
    this.m.services.delete(C.encodeSvcKey(key));
    for (let i = 0; i < Math.max(st.slots.length, st.value.count); i++) this.m.slots.delete(C.encodeSlotKey({ svcId: st.svcId, slot: i }));
    // A map-in-map delete waits for an RCU grace period (~10 ms): only when there is a table.
    const later = st.hasMaglev && drops !== undefined;
    if (later) drops.push({ svcId: st.svcId, free: true, errors });
    else if (st.hasMaglev) this.m.maglev.delete(C.encodeMaglevKey(st.svcId));
    this.m.revnat.delete(C.encodeRevnatKey(st.svcId));
    for (const cidr of st.srcRanges) this.m.srcRanges.delete(C.encodeSrcRangeKey({ svcId: st.svcId, cidr }));
    released.push(...st.backendKeys);
    this.count(st, -1);
    this.frontends.delete(k);
    this.unclaimed.delete(k);
    // Reused last (FIFO), so a recently freed id is not handed out while old CT entries age.
    if (!later) this.freeSvcIds.push(st.svcId);
  }

  private releaseBackends(list: BackendState[]): void {
    for (const b of list) {
      if (b.retiredAt !== undefined && b.refs <= 0) continue;
      b.refs--;
      if (b.refs <= 0) this.retire(b);
    }
  }

  /**
   * An endpoint gone from every Service keeps its backend entry, marked draining, so flows
   * established to it go on (as kube-proxy's conntrack DNAT does) until reapRetired() sees
   * no conntrack entry naming it.
   */
  private retire(b: BackendState): void {
    b.refs = 0;
    b.retiredAt = Date.now();
    this.retired.add(b);
    b.state = 'draining';
    this.m.backends.update(C.encodeBackendKey(b.id), C.encodeBackendValue(b));
  }

  /** Delete retired backends that no live conntrack entry references (or older than maxAgeMs). */
  reapRetired(liveBackendIds: ReadonlySet<number>, maxAgeMs = 3_600_000): number {
    let n = 0;
    const now = Date.now();
    // The retired ones only: a walk over every backend (100,000 at 10,000 Services) held the
    // event loop, and a change behind it, for tens of ms on every sweep.
    for (const b of [...this.retired]) {
      if (liveBackendIds.has(b.id) && now - b.retiredAt! < maxAgeMs) continue;
      this.forgetBackend(b.id);
      this.dropBackend(b);
      this.retired.delete(b);
      n++;
    }
    return n;
  }

  private forgetBackend(id: number): void {
    // backends is an ARRAY (no delete): an all-zero entry is "no backend" to the datapath.
    if (this.m.backends.type === 'array') this.m.backends.update(C.encodeBackendKey(id), C.encodeBackendEmpty());
    else this.m.backends.delete(C.encodeBackendKey(id));
    this.freeBackendIds.push(id);
  }

  /** Backend entries in use (referenced or retired); the ARRAY map itself is always full. */
  backendCount(): number {
    return this.backendsN;
  }

  private getBackend(addr: string, port: number): BackendState | undefined {
    const v = this.backends.get(addr);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return v.port === port ? v : undefined;
    return v.find((b) => b.port === port);
  }

  /** Adds a backend whose address:port is not in the map. */
  private putBackend(b: BackendState): void {
    const v = this.backends.get(b.addr);
    if (v === undefined) this.backends.set(b.addr, b);
    else if (Array.isArray(v)) v.push(b);
    else this.backends.set(b.addr, [v, b]);
    this.backendsN++;
  }

  private dropBackend(b: BackendState): void {
    const v = this.backends.get(b.addr);
    if (v === b) this.backends.delete(b.addr);
    else if (Array.isArray(v)) {
      const rest = v.filter((x) => x !== b);
      if (rest.length === v.length) return;
      this.backends.set(b.addr, rest.length === 1 ? rest[0]! : rest);
    } else return;
    this.backendsN--;
  }

  /**
   * Entries this reconciler has written to the Service maps, from its own state: counting the
   * maps' keys costs a Buffer per entry (~200,000 slots for 10,000 Services), and a walk over
   * every frontend ~1.5 ms, on every status call. Kept as frontends change (count()).
   */
  entryCounts(): EntryCounts {
    return { ...this.counts };
  }

  /** The same by a walk over every frontend: what entryCounts() must equal (tests). */
  entryCountsByWalk(): EntryCounts {
    const n: EntryCounts = { services: 0, slots: 0, maglev: 0, srcRanges: 0 };
    for (const f of this.frontends.values()) {
      if (f.inMap) n.services++;
      n.slots += f.slots.length;
      if (f.hasMaglev) n.maglev++;
      n.srcRanges += f.srcRanges.size;
    }
    return n;
  }

  /** Adds (sign 1) or takes away (-1) a frontend's entries from entryCounts(). */
  private count(st: FrontendState, sign: 1 | -1): void {
    const c = this.counts;
    if (st.inMap) c.services += sign;
    c.slots += sign * st.slots.length;
    if (st.hasMaglev) c.maglev += sign;
    c.srcRanges += sign * st.srcRanges.size;
  }

  retiredCount(): number {
    return this.retired.size;
  }
}
