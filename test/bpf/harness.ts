// Loads build/bpf/xlb.o under a per-run pin path and gives fixtures a small vocabulary for
// map setup (services, backends, node addresses, ...), BPF_PROG_TEST_RUN, and reading back
// side effects (CT entries, per-service stats, drop counters). Only the codecs and the addon
// are used, exactly as the reconciler uses them.
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfMap, loadObject, type BpfObject } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { announceCounters } from '../../src/agent/inspect.js';
import { cidr6, frame4to6, frame6to4, from6, to6 } from './twin.js';

const here = dirname(fileURLToPath(import.meta.url));
export const XLB_OBJ = resolve(here, '../../../build/bpf/xlb.o');
export const REF_OBJ = resolve(here, '../../../build/bpf/ref_pass.o');

// Addresses used only inside BPF_PROG_TEST_RUN buffers (never sent anywhere).
export const CLIENT = '203.0.113.7';
export const CLIENT2 = '203.0.113.8';
export const NODE = '192.168.1.10';
export const NODE2 = '192.168.2.10';
export const LB_IP = '198.51.100.10';
export const EXT_IP = '198.51.100.20';
export const CLUSTER_IP = '10.96.0.10';
export const POD_A = '10.244.1.5';
export const POD_B = '10.244.1.6';
export const REMOTE_POD = '10.244.2.9';
export const HAIRPIN = '169.254.42.1';
export const MAGLEV_M = 7;

/** XLB_XDP_META_DONE (bpf/include/ctx.h) as the CPU stores it. */
const XDP_META_DONE = Buffer.from(Uint32Array.of(0x786c6264).buffer);

export const XDP = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;
export const TC = { OK: 0, SHOT: 2, REDIRECT: 7 } as const;

export const FIXTURE_CONFIG: C.XlbConfig = {
  ...C.DEFAULT_CONFIG,
  flags: C.CONFIG_FLAG.fixture,
  maglevM: MAGLEV_M,
  ctLimit: 1000,
  snatAddr: NODE,
  hairpinAddr: HAIRPIN,
};

export interface SvcSetup {
  addr: string | null;
  /** 6: the IPv6 NodePort wildcard (addr null); implied in twin mode */
  family?: 4 | 6;
  port: number;
  proto?: C.Proto;
  scope?: C.ScopeName;
  svcId: number;
  /** backend ids in slot order (also the Maglev table, repeated) */
  backends: number[];
  flags?: number;
  affinity?: number;
  /** explicit Maglev table (length MAGLEV_M); default: backends repeated */
  table?: number[];
  /** count written into the service entry (default backends.length) */
  count?: number;
}

export class Datapath {
  readonly cpus: number;
  /** IPv6 twin mode (twin.ts): IPv4 addresses given become their twins, packets are converted
   *  in and out, addresses read back are the IPv4 ones again. */
  v6 = false;
  private readonly used = new Set<number>();
  private readonly backendIds = new Set<number>();
  private readonly inners: BpfMap[] = [];
  private cacheGen = 0;

  private constructor(readonly obj: BpfObject, readonly pinPath: string) {
    this.cpus = obj.map(C.MAP.drops).possibleCpus;
  }

  /** The maps' sizes here (another object loaded against the pins, e.g. ct_sweep.o, needs them). */
  static readonly SIZES = { ct: 4096, services: 256, backends: 256, slots: 1024, maglev: 256, revnat: 256, affinity: 256, src_ranges: 256, stats: 256, frags: 256 };

  static async open(tag: string): Promise<Datapath> {
    const pinPath = `/sys/fs/bpf/xlbt-${tag}-${process.pid}`;
    const obj = await loadObject(XLB_OBJ, { pinPath, maxEntries: Datapath.SIZES });
    C.verifyLayout(obj);
    return new Datapath(obj, pinPath);
  }

  map(name: string): BpfMap {
    return this.obj.map(name);
  }

  private a<T extends string | null>(addr: T): T {
    return (this.v6 && addr !== null ? to6(addr) : addr) as T;
  }
  private key(k: C.CtKey): C.CtKey {
    return this.v6 ? { ...k, saddr: to6(k.saddr), daddr: to6(k.daddr) } : k;
  }
  private back<T extends { natAddr: string | null; origAddr: string | null }>(v: T): T {
    const f = (x: string | null) => (x === null ? x : from6(x));
    return this.v6 ? { ...v, natAddr: f(v.natAddr), origAddr: f(v.origAddr) } : v;
  }

  /** Empty every map and write the fixture config (with overrides). */
  reset(cfg: Partial<C.XlbConfig> = {}): void {
    for (const id of this.backendIds) this.map(C.MAP.backends).update(C.encodeBackendKey(id), C.encodeBackendEmpty());
    this.backendIds.clear();
    for (const name of [C.MAP.services, C.MAP.slots, C.MAP.revnat, C.MAP.ct, C.MAP.affinity, C.MAP.srcRanges, C.MAP.nodeAddrs, C.MAP.frags, C.MAP.maglev, C.MAP.ifMacs, C.MAP.announce]) {
      const m = this.map(name);
      for (const k of m.keys()) m.delete(k);
    }
    for (const m of this.inners.splice(0)) m.close();
    for (const id of this.used) this.map(C.MAP.stats).update(C.encodeStatsKey(id), C.encodeStatsValue(this.cpus));
    for (let r = 0; r < C.DROP_MAX; r++) this.map(C.MAP.drops).update(C.encodeDropKey(r), C.encodeDropValue(this.cpus));
    for (const c of C.ANNOUNCE_COUNTERS) this.map(C.MAP.announceStats).update(C.encodeAnnounceStatsKey(c.id), C.encodeDropValue(this.cpus));
    this.ctFill(0n, 0n);
    this.snatSkip([]);
    this.stackPorts([]);
    this.config(cfg);
  }

  /** Write the fixture config (with overrides) under a new flow cache generation, so no
   *  cached rewrite of an earlier case or setup outlives it. */
  config(cfg: Partial<C.XlbConfig> = {}): void {
    this.cacheGen = C.nextFlowCacheGen(this.cacheGen);
    const c = { ...FIXTURE_CONFIG, flowCacheGen: this.cacheGen, ...cfg };
    // twin mode: the IPv6 SNAT and hairpin addresses are the IPv4 ones' twins
    const v6 = this.v6 ? { snatAddr6: c.snatAddr && to6(c.snatAddr), hairpinAddr6: c.hairpinAddr && to6(c.hairpinAddr) } : {};
    this.map(C.MAP.config).update(C.encodeConfigKey(), C.encodeConfig({ ...c, ...v6 }));
  }

  ctFill(made: bigint, freed: bigint): void {
    const m = this.map(C.MAP.ctFill);
    m.update(C.encodeCtFillKey(0), C.encodeCtFillValue(made));
    m.update(C.encodeCtFillKey(1), C.encodeCtFillValue(freed));
  }

  backend(id: number, addr: string, port: number, o: { state?: C.BackendStateName; local?: boolean } = {}): void {
    this.backendIds.add(id);
    this.map(C.MAP.backends).update(C.encodeBackendKey(id), C.encodeBackendValue({ addr: this.a(addr), port, state: o.state ?? 'active', local: o.local ?? true }));
  }

  backendDelete(id: number): void {
    this.map(C.MAP.backends).update(C.encodeBackendKey(id), C.encodeBackendEmpty());
  }

  nodeAddr(addr: string, flags = 0): void {
    this.map(C.MAP.nodeAddrs).update(C.encodeNodeAddrKey(this.a(addr)), C.encodeNodeAddrValue(flags));
  }

  /** SNAT ports the node uses (snat_skip); writes every word. */
  snatSkip(ports: number[]): void {
    this.portBits(C.MAP.snatSkip, ports);
  }

  /** Local backend ports whose replies xlb_tc_host looks up (stack_ports, set by the
   *  datapath); writes every word. */
  stackPorts(ports: number[]): void {
    this.portBits(C.MAP.stackPorts, ports);
  }

  /** The ports stack_ports holds. */
  stackPortsSet(): number[] {
    const m = this.map(C.MAP.stackPorts);
    const out: number[] = [];
    for (let i = 0; i < C.SNAT_SKIP_WORDS; i++) {
      const w = m.lookup(C.encodeSnatSkipKey(i))?.readBigUInt64LE(0) ?? 0n;
      for (let b = 0; b < 64; b++) if ((w >> BigInt(b)) & 1n) out.push(i * 64 + b);
    }
    return out;
  }

  private portBits(map: string, ports: number[]): void {
    const words = C.snatSkipWords(ports);
    words.forEach((w, i) => this.map(map).update(C.encodeSnatSkipKey(i), C.encodeSnatSkipValue(w)));
  }

  /** The interface's own MAC (if_macs); test runs without a ctx arrive on lo (ifindex 1). */
  ifMac(ifindex: number, mac: string): void {
    this.map(C.MAP.ifMacs).update(C.encodeIfMacKey(ifindex), C.encodeIfMacValue(mac));
  }

  /** An announce entry: answer ARP for addr on ifindex until expires (CLOCK_MONOTONIC ns; default a minute from now). */
  announce(addr: string, ifindex: number, expires = process.hrtime.bigint() + 60_000_000_000n, flags: number = C.ANNOUNCE_FLAG.arp): void {
    this.map(C.MAP.announce).update(C.encodeAnnounceKey(addr), C.encodeAnnounceValue({ ifindex, flags, expires }));
  }

  announceStats(): Record<C.AnnounceCounter, number> {
    return announceCounters(this.obj);
  }

  srcRange(svcId: number, cidr: string): void {
    this.map(C.MAP.srcRanges).update(C.encodeSrcRangeKey({ svcId, cidr: this.v6 ? cidr6(cidr) : cidr }), C.encodeSrcRangeValue());
  }

  /** Slots, Maglev table, revnat, then the service entry (count last), as the reconciler does. */
  service(s: SvcSetup): void {
    this.used.add(s.svcId);
    s.backends.forEach((b, i) => this.map(C.MAP.slots).update(C.encodeSlotKey({ svcId: s.svcId, slot: i }), C.encodeSlotValue(b)));
    if ((s.flags ?? 0) & C.SVC_FLAG.maglev) this.maglev(s.svcId, s.table ?? Array.from({ length: MAGLEV_M }, (_, i) => s.backends[i % s.backends.length] ?? 0));
    this.map(C.MAP.revnat).update(C.encodeRevnatKey(s.svcId), C.encodeRevnatValue({ addr: this.a(s.addr), port: s.port }));
    const family = this.v6 || (s.addr !== null && s.addr.includes(':')) ? 6 : s.family;
    const key = C.encodeSvcKey({ addr: this.a(s.addr), port: s.port, proto: s.proto ?? 'TCP', scope: s.scope ?? 'external', ...(family ? { family } : {}) });
    this.map(C.MAP.services).update(key, C.encodeSvcValue({ svcId: s.svcId, count: s.count ?? s.backends.length, flags: s.flags ?? 0, affinityTimeout: s.affinity ?? 0 }));
  }

  maglev(svcId: number, table: number[]): void {
    const inner = BpfMap.create(C.maglevInnerSpec(MAGLEV_M, svcId));
    table.forEach((id, i) => inner.update(Buffer.from(Uint32Array.of(i).buffer), C.encodeMaglevValue(id)));
    this.map(C.MAP.maglev).setInner(C.encodeMaglevKey(svcId), inner);
    this.inners.push(inner);
  }

  /** Whether the last XDP run left xlb_tc_dev the "done" metadata (ctx_xdp_mark_done). */
  xdpDone = false;

  /** One packet through a program, always on CPU 0, so per-CPU state (the flow cache)
   *  carries from one packet of a row to the next. An XDP run's output starts with the
   *  metadata it left (test runs return it); that goes to xdpDone, the frame is returned. */
  run(prog: 'xdp' | 'tc' | 'tcdev' | 'tchost', data: Buffer, ctxIn?: Buffer): { retval: number; data: Buffer } {
    const p = this.obj.program({ xdp: C.PROG.xdp, tcdev: C.PROG.tcDev, tc: C.PROG.tc, tchost: C.PROG.tcHost }[prog]);
    const strip = (inLen: number, out: Buffer): Buffer => {
      if (prog !== 'xdp') return out;
      this.xdpDone = out.length === inLen + XDP_META_DONE.length && out.subarray(0, XDP_META_DONE.length).equals(XDP_META_DONE);
      return this.xdpDone ? out.subarray(XDP_META_DONE.length) : out;
    };
    if (!this.v6) {
      const r = p.testRun({ data, ctxIn, dataOutSize: 2048, cpu: 0 });
      return { retval: r.retval, data: strip(data.length, r.data) };
    }
    // twin mode: an XDP ctx names the frame's length, which the conversion changes
    const in6 = frame4to6(data);
    if (ctxIn && prog === 'xdp') ctxIn.writeUInt32LE(in6.length, 4);
    const r = p.testRun({ data: in6, ctxIn, dataOutSize: 2048, cpu: 0 });
    const out = strip(in6.length, r.data);
    return { retval: r.retval, data: out.equals(in6) ? data : frame6to4(out) };
  }

  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of C.DROP_REASONS) {
      const v = this.map(C.MAP.drops).lookup(C.encodeDropKey(r.id));
      out[r.key] = v ? Number(C.decodeDropValue(v)) : 0;
    }
    return out;
  }

  stats(svcId: number): C.SvcStats {
    const v = this.map(C.MAP.stats).lookup(C.encodeStatsKey(svcId));
    return v ? C.decodeStatsValue(v) : { packets: 0n, bytes: 0n, newFlows: 0n };
  }

  ct(key: C.CtKey): C.CtValue | null {
    const v = this.map(C.MAP.ct).lookup(C.encodeCtKey(this.key(key)));
    return v ? this.back(C.decodeCtValue(v)) : null;
  }

  ctSet(key: C.CtKey, patch: Partial<C.CtValue>): void {
    const cur = this.ct(key);
    if (!cur) throw new Error(`no CT entry ${JSON.stringify(key)}`);
    const v = { ...cur, ...patch };
    const f = (x: string | null) => this.a(x);
    this.map(C.MAP.ct).update(C.encodeCtKey(this.key(key)), C.encodeCtValue({ ...v, natAddr: f(v.natAddr), origAddr: f(v.origAddr) }));
  }

  /** The affinity entry of a client, if any. */
  affinity(svcId: number, client: string): C.AffinityValue | null {
    const v = this.map(C.MAP.affinity).lookup(C.encodeAffinityKey({ svcId, client: this.a(client) }));
    return v ? C.decodeAffinityValue(v) : null;
  }

  /** Whether a first fragment recorded its ports. */
  frag(k: C.FragKey): boolean {
    return !!this.map(C.MAP.frags).lookup(C.encodeFragKey({ ...k, saddr: this.a(k.saddr), daddr: this.a(k.daddr) }));
  }

  ctEntries(): Array<[C.CtKey, C.CtValue]> {
    return this.map(C.MAP.ct).entries().map(([k, v]) => {
      const key = C.decodeCtKey(k);
      return [this.v6 ? { ...key, saddr: from6(key.saddr), daddr: from6(key.daddr) } : key, this.back(C.decodeCtValue(v))];
    });
  }

  close(): void {
    for (const m of this.inners.splice(0)) m.close();
    this.obj.close();
    rmSync(this.pinPath, { recursive: true, force: true });
  }
}
