// Types of the raw addon (build/Release/xlb.node). Only src/datapath/bpf.ts loads it;
// everything else uses the classes there.

export interface NativeError extends Error {
  code: string;
  errno?: number;
  op: string;
  target: string;
}

export interface NativeLoadOptions {
  pinPath?: string;
  replaceMismatched?: boolean;
  maxEntries?: Record<string, number>;
  /** programs not to load (the kernel lacks what they need) */
  skipPrograms?: string[];
}

export interface NativeBtfStruct {
  name: string;
  size: number;
  members: { name: string; offset: number; size: number }[];
}

export interface NativeBpfObject {
  readonly file: string;
  readonly reused: string[];
  readonly replaced: string[];
  readonly warnings: string[];
  mapNames(): string[];
  programNames(): string[];
  map(name: string): NativeBpfMap;
  program(name: string): NativeBpfProgram;
  btfStruct(name: string): NativeBtfStruct;
  close(): void;
}

export interface NativeMapCreateOptions {
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  name?: string;
  flags?: number;
}

export type NativeUpdateFlag = 'any' | 'noexist' | 'exist';

export interface NativeBtfMember {
  name: string;
  offset: number;
  size: number;
  /** kind and name through typedefs: u32, s64, enum32, u8[3], struct xlb_addr/16 */
  type: string;
  bitfield: boolean;
}

export interface NativeBtfType {
  type: string;
  size: number;
  /** empty unless a struct */
  members: NativeBtfMember[];
}

export interface NativeMapBtf {
  key: NativeBtfType | null;
  value: NativeBtfType;
}

export interface NativeBpfMap {
  readonly name: string;
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly id: number;
  readonly percpu: boolean;
  readonly possibleCpus: number;
  readonly closed: boolean;
  lookup(key: Buffer): Buffer | null;
  update(key: Buffer, value: Buffer, flag?: NativeUpdateFlag): void;
  delete(key: Buffer): boolean;
  deleteAsync(key: Buffer): Promise<boolean>;
  updateBatch(keys: Buffer, values: Buffer, count: number, flag?: NativeUpdateFlag): Promise<number>;
  deleteBatch(keys: Buffer, count: number): Promise<number>;
  lookupBatch(): Promise<{ keys: Buffer; values: Buffer; count: number }>;
  keys(): Buffer[];
  entries(): Array<[Buffer, Buffer]>;
  setInner(key: Buffer, inner: NativeBpfMap): void;
  setInnerAsync(key: Buffer, inner: NativeBpfMap): Promise<void>;
  /** Rejections carry `done`: entries stored before the failing one. */
  setInnerBatch(keys: Buffer, inners: NativeBpfMap[]): Promise<number>;
  innerId(key: Buffer): number | null;
  btf(): NativeMapBtf | null;
  pin(path: string): void;
  unpin(path: string): void;
  close(): void;
}

export interface NativeBpfMapStatic {
  openPinned(path: string): NativeBpfMap;
  fromId(id: number): NativeBpfMap;
  create(o: NativeMapCreateOptions): NativeBpfMap;
}

export interface NativeTestRunOptions {
  data: Buffer;
  repeat?: number;
  ctxIn?: Buffer;
  dataOutSize?: number;
  /** run on this CPU (the calling thread is pinned for the call) */
  cpu?: number;
}

export interface NativeBpfProgram {
  readonly name: string;
  readonly type: string;
  readonly fd: number;
  readonly id: number;
  readonly tag: string;
  testRun(o: NativeTestRunOptions): { retval: number; data: Buffer; durationNs: number };
  testRunLive(o: { data: Buffer; repeat: number; ifindex: number; batchSize?: number }): { durationNs: number };
  /** one pass of an iterator program in this network namespace; bytes it wrote */
  runIter(): number;
  /** one BPF_PROG_TEST_RUN in a worker thread */
  testRunAsync(o: { data: Buffer }): Promise<{ retval: number; durationNs: number }>;
  close(): void;
}

export type NativeXdpMode = 'native' | 'generic';

export interface NativeLink {
  readonly id: number;
  readonly ifindex: number;
  readonly kind: 'xdp' | 'tc-ingress' | 'tc-egress' | `cgroup-${NativeCgroupHook}`;
  /** cgroup links: the cgroup's id (its inode number) */
  readonly cgroupId: number;
  readonly mode?: NativeXdpMode;
  /** Why native XDP failed when 'auto' fell back to generic. */
  readonly nativeError?: string;
  readonly pinnedPath?: string;
  progId(): number;
  update(prog: NativeBpfProgram): void;
  pin(path: string): void;
  unpin(): void;
  detach(): void;
  close(): void;
}

export interface NativeLinkStatic {
  attachXdp(prog: NativeBpfProgram, ifname: string, o?: { mode?: NativeXdpMode | 'auto' }): NativeLink;
  attachTc(prog: NativeBpfProgram, ifname: string, dir: 'ingress' | 'egress'): NativeLink;
  attachCgroup(prog: NativeBpfProgram, cgroupPath: string, hook: NativeCgroupHook): NativeLink;
  openPinned(path: string): NativeLink;
}

export type NativeCgroupHook = 'connect4' | 'connect6' | 'sendmsg4' | 'sendmsg6' | 'recvmsg4' | 'recvmsg6' | 'getpeername4' | 'getpeername6';

export interface NativeAttached {
  ifindex: number;
  xdp: { progId: number; mode: NativeXdpMode; linkId?: number }[];
  tcIngress: { progId: number; linkId?: number }[];
  tcEgress: { progId: number; linkId?: number }[];
}

export interface NativeBinding {
  BpfObject: abstract new (...args: never[]) => NativeBpfObject;
  BpfMap: NativeBpfMapStatic & (abstract new (...args: never[]) => NativeBpfMap);
  BpfProgram: abstract new (...args: never[]) => NativeBpfProgram;
  Link: NativeLinkStatic & (abstract new (...args: never[]) => NativeLink);
  loadObject(file: string, opts?: NativeLoadOptions): Promise<NativeBpfObject>;
  listAttached(ifname: string): NativeAttached;
  ifIndex(ifname: string): number;
  /** SO_NETNS_COOKIE of this process's network namespace */
  netnsCookie(): number;
  /** what the kernel lacks of a program type and helper ids ([] = nothing) */
  probeProgType(type: string, helperIds: number[]): string[];
  /** whether the kernel's BTF has this function (a kfunc such as bpf_sock_destroy) */
  probeKfunc(name: string): boolean;
  possibleCpus(): number;
  /** one raw frame out of the interface (AF_PACKET); the bytes sent */
  sendFrame(ifindex: number, frame: Buffer): number;
  /** glibc malloc_trim(0): free arena pages back to the kernel; true if any were */
  trimMemory(): boolean;
}
