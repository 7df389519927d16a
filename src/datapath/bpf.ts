// The typed face of the native addon: BPF objects, maps, programs and links. The only
// module that loads build/Release/xlb.node; everything else imports from here.
// Every failure is an Error with code ('ENOENT', 'EINVAL', 'EBADF', 'EMISMATCH', ...),
// errno (when a syscall failed), op, and the object/map/program/interface in `target`.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  NativeAttached, NativeBinding, NativeMapBtf, NativeBpfMap, NativeBpfObject, NativeBpfProgram, NativeCgroupHook, NativeLink,
} from '../native.js';
import { child } from '../log.js';

export type MapType = 'hash' | 'array' | 'lru_hash' | 'lpm_trie' | 'percpu_array' | 'percpu_hash'
  | 'array_of_maps' | 'hash_of_maps' | string;
export type UpdateFlag = 'any' | 'noexist' | 'exist';
export type XdpMode = 'native' | 'generic';

export interface LoadOptions {
  /** Pin every map by its name under this dir (created); reuse pinned maps whose layout matches. */
  pinPath?: string;
  /** Replace a pinned map whose layout differs instead of failing with EMISMATCH. */
  replaceMismatched?: boolean;
  /** With replaceMismatched: pin a replaced map at `<path><suffix>` and leave the old pin in
   *  place until commitReplaced() (the caller migrates entries and switches links first). */
  replacedPinSuffix?: string;
  /** Override a map's max_entries before load. */
  maxEntries?: Record<string, number>;
  /** Programs left out of the load (the kernel lacks what they need). */
  skipPrograms?: string[];
}

export type CgroupHook = NativeCgroupHook;
export type MapBtf = NativeMapBtf;

export interface BtfStruct {
  name: string;
  size: number;
  members: { name: string; offset: number; size: number }[];
}

/** The shape of every error this module throws or rejects with. */
export interface BpfError extends Error {
  code: string;
  errno?: number;
  op: string;
  target: string;
}

const log = child('bpf');

// ---- loading the addon ----

let binding: NativeBinding | undefined;

/** Paths tried for the addon, in order: $XLB_ADDON, then build/ next to the package root. */
export function addonCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const list = [
    process.env.XLB_ADDON,
    resolve(here, '../../../build/Release/xlb.node'), // dist/src/datapath -> repo root
    resolve(here, '../../build/Release/xlb.node'),    // src/datapath run directly
    resolve(here, '../../../build/Debug/xlb.node'),
  ];
  return list.filter((p): p is string => typeof p === 'string' && p.length > 0);
}

function native(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const p of addonCandidates()) {
    if (!existsSync(p)) {
      tried.push(`${p} (missing)`);
      continue;
    }
    try {
      binding = require(p) as NativeBinding;
      return binding;
    } catch (e) {
      tried.push(`${p} (${(e as Error).message})`);
    }
  }
  const err = new Error(
    `xlb native addon could not be loaded; build it with 'npm run build' (tried: ${tried.join('; ')})`,
  ) as BpfError;
  err.code = 'ENOENT';
  err.op = 'load addon';
  err.target = 'xlb.node';
  throw err;
}

// One wrapper per native object, so identity (and map(name) stability) carries over.
const mapWrappers = new WeakMap<NativeBpfMap, BpfMap>();
const progWrappers = new WeakMap<NativeBpfProgram, BpfProgram>();
const mapNatives = new WeakMap<BpfMap, NativeBpfMap>();
const progNatives = new WeakMap<BpfProgram, NativeBpfProgram>();

function wrapMap(n: NativeBpfMap): BpfMap {
  let w = mapWrappers.get(n);
  if (!w) {
    w = new BpfMap(n);
    mapWrappers.set(n, w);
  }
  return w;
}

function wrapProgram(n: NativeBpfProgram): BpfProgram {
  let w = progWrappers.get(n);
  if (!w) {
    w = new BpfProgram(n);
    progWrappers.set(n, w);
  }
  return w;
}

function rawMap(m: BpfMap): NativeBpfMap {
  const n = mapNatives.get(m);
  if (!n) throw new TypeError('not a BpfMap from this module');
  return n;
}

function rawProgram(p: BpfProgram): NativeBpfProgram {
  const n = progNatives.get(p);
  if (!n) throw new TypeError('not a BpfProgram from this module');
  return n;
}

// ---- objects ----

/** Open and load an ELF object off the JS thread; maps are pinned/reused per opts.pinPath. */
export async function loadObject(file: string, opts: LoadOptions = {}): Promise<BpfObject> {
  const n = await native().loadObject(file, opts);
  const obj = new BpfObject(n);
  for (const w of n.warnings) log.debug({ file, libbpf: w }, 'libbpf warning during load');
  return obj;
}

export class BpfObject {
  readonly #n: NativeBpfObject;

  /** @internal use loadObject() */
  constructor(n: NativeBpfObject) {
    this.#n = n;
  }

  get file(): string { return this.#n.file; }
  /** Maps taken from existing pins. */
  get reused(): string[] { return this.#n.reused; }
  /** Maps whose mismatched pin was replaced (replaceMismatched). */
  get replaced(): string[] { return this.#n.replaced; }
  /** libbpf warnings printed while loading. */
  get warnings(): string[] { return this.#n.warnings; }

  mapNames(): string[] { return this.#n.mapNames(); }
  programNames(): string[] { return this.#n.programNames(); }
  map(name: string): BpfMap { return wrapMap(this.#n.map(name)); }
  program(name: string): BpfProgram { return wrapProgram(this.#n.program(name)); }
  btfStruct(name: string): BtfStruct { return this.#n.btfStruct(name); }
  /** Closes the object and every map/program taken from it; pinned maps stay in bpffs. */
  close(): void { this.#n.close(); }
}

// ---- maps ----

export class BpfMap {
  readonly #n: NativeBpfMap;

  /** @internal use BpfObject.map(), openPinned(), fromId() or create() */
  constructor(n: NativeBpfMap) {
    this.#n = n;
    mapNatives.set(this, n);
  }

  static openPinned(path: string): BpfMap { return wrapMap(native().BpfMap.openPinned(path)); }
  /** E.g. an inner map found through its outer map's innerId(). */
  static fromId(id: number): BpfMap { return wrapMap(native().BpfMap.fromId(id)); }
  static create(o: { type: MapType; keySize: number; valueSize: number; maxEntries: number; name?: string; flags?: number }): BpfMap {
    return wrapMap(native().BpfMap.create(o));
  }

  get name(): string { return this.#n.name; }
  get type(): MapType { return this.#n.type; }
  get keySize(): number { return this.#n.keySize; }
  get valueSize(): number { return this.#n.valueSize; }
  get maxEntries(): number { return this.#n.maxEntries; }
  get flags(): number { return this.#n.flags; }
  get id(): number { return this.#n.id; }
  /** Per-CPU values are possibleCpus * round_up(valueSize, 8) bytes. */
  get percpu(): boolean { return this.#n.percpu; }
  get possibleCpus(): number { return this.#n.possibleCpus; }
  get closed(): boolean { return this.#n.closed; }
  /** Bytes of one value as lookup() returns it and update() expects it. */
  get valueBytes(): number {
    return this.percpu ? this.possibleCpus * Math.ceil(this.valueSize / 8) * 8 : this.valueSize;
  }

  /** null when absent. */
  lookup(key: Buffer): Buffer | null { return this.#n.lookup(key); }
  update(key: Buffer, value: Buffer, flag: UpdateFlag = 'any'): void { this.#n.update(key, value, flag); }
  /** false when absent. */
  delete(key: Buffer): boolean { return this.#n.delete(key); }
  /**
   * delete() off the JS thread. For a map-in-map the kernel returns only after an RCU
   * grace period (~10 ms); several calls in flight overlap their waits.
   */
  async deleteAsync(key: Buffer): Promise<boolean> { return this.#n.deleteAsync(key); }
  /** keys/values packed back to back; falls back to a loop for map types without batch ops. */
  // async: argument errors reject like kernel errors instead of throwing synchronously.
  async updateBatch(keys: Buffer, values: Buffer, count: number, flag: UpdateFlag = 'any'): Promise<number> {
    return this.#n.updateBatch(keys, values, count, flag);
  }
  /** Resolves to how many of the keys existed (absent ones are skipped). */
  async deleteBatch(keys: Buffer, count: number): Promise<number> { return this.#n.deleteBatch(keys, count); }
  /** The whole map, keys and values packed. */
  async lookupBatch(): Promise<{ keys: Buffer; values: Buffer; count: number }> { return this.#n.lookupBatch(); }
  keys(): Buffer[] { return this.#n.keys(); }
  entries(): Array<[Buffer, Buffer]> { return this.#n.entries(); }
  /** Map-in-map: store inner's fd under key. Blocks for an RCU grace period: prefer setInnerAsync. */
  setInner(key: Buffer, inner: BpfMap): void { this.#n.setInner(key, rawMap(inner)); }
  /** setInner() off the JS thread; inner may be closed as soon as this is called. */
  async setInnerAsync(key: Buffer, inner: BpfMap): Promise<void> { return this.#n.setInnerAsync(key, rawMap(inner)); }
  /**
   * Map-in-map: inners[i] under the i-th key of `keys` (packed), in one BPF_MAP_UPDATE_BATCH,
   * so the kernel waits for one grace period instead of one per entry (an element loop where
   * the kernel has no batch op). Resolves to the count stored; a failure rejects with `done`,
   * the entries before the failing one (those are stored), and the failing inner in `target`.
   * The same inner may appear under several keys.
   */
  async setInnerBatch(keys: Buffer, inners: BpfMap[]): Promise<number> {
    return this.#n.setInnerBatch(keys, inners.map(rawMap));
  }
  /** The key and value types from the map's own BTF (a pinned map of another build
   *  describes itself); null when the map was created without BTF. */
  btf(): MapBtf | null { return this.#n.btf(); }
  /** Map-in-map: id of the inner map under key, null when empty. */
  innerId(key: Buffer): number | null { return this.#n.innerId(key); }
  pin(path: string): void { this.#n.pin(path); }
  unpin(path: string): void { this.#n.unpin(path); }
  /** Any later call throws EBADF naming the map. */
  close(): void { this.#n.close(); }
}

// ---- programs ----

export class BpfProgram {
  readonly #n: NativeBpfProgram;

  /** @internal use BpfObject.program() */
  constructor(n: NativeBpfProgram) {
    this.#n = n;
    progNatives.set(this, n);
  }

  get name(): string { return this.#n.name; }
  get type(): string { return this.#n.type; }
  get fd(): number { return this.#n.fd; }
  get id(): number { return this.#n.id; }
  get tag(): string { return this.#n.tag; }

  /**
   * BPF_PROG_TEST_RUN; durationNs is the kernel's average per repetition. XDP and tc runs
   * execute on the calling thread's CPU: `cpu` pins the thread there for the call, so
   * per-CPU state is the same from one run to the next.
   */
  testRun(o: { data: Buffer; repeat?: number; ctxIn?: Buffer; dataOutSize?: number; cpu?: number }): { retval: number; data: Buffer; durationNs: number } {
    return this.#n.testRun(o);
  }
  /** XDP live frames (BPF_F_TEST_XDP_LIVE_FRAMES) on ifindex in this netns; EOPNOTSUPP on old kernels. */
  testRunLive(o: { data: Buffer; repeat: number; ifindex: number; batchSize?: number }): { durationNs: number } {
    return this.#n.testRunLive(o);
  }
  /** One pass of an iterator program (e.g. iter/udp) over this network namespace. */
  runIter(): number { return this.#n.runIter(); }
  /** One BPF_PROG_TEST_RUN in a worker thread, for a program run for what it does to maps (bpf/ct_sweep.c). */
  testRunAsync(o: { data: Buffer }): Promise<{ retval: number; durationNs: number }> { return this.#n.testRunAsync(o); }
  close(): void { this.#n.close(); }
}

// ---- links ----

export class Link {
  readonly #n: NativeLink;

  /** @internal use attachXdp(), attachTc() or openPinned() */
  constructor(n: NativeLink) {
    this.#n = n;
  }

  /** auto: native, else generic with a logged warning; link.mode says which. */
  static attachXdp(prog: BpfProgram, ifname: string, o: { mode?: XdpMode | 'auto' } = {}): Link {
    const n = native().Link.attachXdp(rawProgram(prog), ifname, { mode: o.mode ?? 'auto' });
    if (n.nativeError) {
      log.warn({ ifname, prog: prog.name, reason: n.nativeError }, 'native XDP unavailable, attached in generic mode');
    }
    return new Link(n);
  }
  /** tcx link (kernel >= 6.6; EOPNOTSUPP otherwise). */
  static attachTc(prog: BpfProgram, ifname: string, dir: 'ingress' | 'egress'): Link {
    return new Link(native().Link.attachTc(rawProgram(prog), ifname, dir));
  }
  /** A cgroup v2 directory's sock_addr hook; the link holds the cgroup. */
  static attachCgroup(prog: BpfProgram, cgroupPath: string, hook: CgroupHook): Link {
    return new Link(native().Link.attachCgroup(rawProgram(prog), cgroupPath, hook));
  }
  static openPinned(path: string): Link { return new Link(native().Link.openPinned(path)); }

  get id(): number { return this.#n.id; }
  get ifindex(): number { return this.#n.ifindex; }
  get kind(): NativeLink['kind'] { return this.#n.kind; }
  /** cgroup links: the cgroup's id; 0 otherwise */
  get cgroupId(): number { return this.#n.cgroupId; }
  get mode(): XdpMode | undefined { return this.#n.mode; }
  get pinnedPath(): string | undefined { return this.#n.pinnedPath; }

  progId(): number { return this.#n.progId(); }
  /** Atomic program replacement (BPF_LINK_UPDATE). */
  update(prog: BpfProgram): void { this.#n.update(rawProgram(prog)); }
  pin(path: string): void { this.#n.pin(path); }
  unpin(): void { this.#n.unpin(); }
  /** BPF_LINK_DETACH; works for pinned links too. */
  detach(): void { this.#n.detach(); }
  /** Drops this fd only: a pinned link stays attached. */
  close(): void { this.#n.close(); }
}

export type Attached = NativeAttached;

/** XDP and tcx programs on ifname in the current network namespace. */
export function listAttached(ifname: string): Attached { return native().listAttached(ifname); }
/** ENODEV error naming the interface when absent. */
export function ifIndex(ifname: string): number { return native().ifIndex(ifname); }
/** One raw Ethernet frame out of the interface (AF_PACKET, CAP_NET_RAW): gratuitous ARP. */
export function sendFrame(ifindex: number, frame: Buffer): number { return native().sendFrame(ifindex, frame); }
export function possibleCpus(): number { return native().possibleCpus(); }
/** Free malloc arena pages back to the kernel (the batch writes' buffers end up there). */
export function trimMemory(): boolean { return native().trimMemory(); }
/** This process's network namespace cookie, as bpf_get_netns_cookie() sees it (kernel >= 5.14). */
export function netnsCookie(): number { return native().netnsCookie(); }
/** What the kernel lacks of a program type (libbpf name, e.g. cgroup_sock_addr) and helper ids. */
export function probeProgType(type: string, helperIds: number[]): string[] { return native().probeProgType(type, helperIds); }
/** Whether the kernel's BTF has this function (a kfunc such as bpf_sock_destroy). */
export function probeKfunc(name: string): boolean { return native().probeKfunc(name); }
