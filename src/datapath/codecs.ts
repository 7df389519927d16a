// Byte layouts of every xlb map (bpf/xlb_maps.h is the truth), as plain TypeScript objects.
// The reconciler uses only this module and the addon. verifyLayout() compares every struct
// below with the loaded object's BTF, so a layout drift fails at start, naming what moved.
//
// Write order the reconciler must follow, so no packet sees a half-built Service:
//   1. backends (new/changed ids)
//   2. slots {svc_id, 0..count-1} and/or the Maglev table (inner map, then outer entry)
//   3. revnat[svc_id]
//   4. src_ranges for svc_id
//   5. services entry, with count last (count 0 until 1-4 exist; shrinking: count first)
//   6. delete what is no longer referenced (old slots >= count, inner tables; backends are
//      an ARRAY: write encodeBackendEmpty() to remove one)
// Each frontend (addr, port, proto, scope) has its own svc_id (1..XLB_MAX_SERVICES-1), so
// internal and external entries of one Service port have separate ids, stats and tables.
//
// Conntrack admission: ct_fill[0] counts flows the datapath created; an agent sweep that
// deletes expired flows (both entries) adds what it deleted to ct_fill[1] (only user space
// writes it). New flows are dropped (DROP reason ct_full) while [0] - [1] >= config.ctLimit.

import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { MAGLEV_DEFAULT_M } from '../model/maglev.js';
import { fmix32 } from '../model/hash.js';
import { formatAddr, ipv4ToNumber, parseAddr, type Family } from '../model/ip.js';

/** Map names as pinned (LIBBPF_PIN_BY_NAME). */
export const MAP = {
  services: 'services',
  backends: 'backends',
  slots: 'slots',
  maglev: 'maglev',
  revnat: 'revnat',
  ct: 'ct',
  ctFill: 'ct_fill',
  affinity: 'affinity',
  srcRanges: 'src_ranges',
  nodeAddrs: 'node_addrs',
  podIfs: 'pod_ifs',
  ifMacs: 'if_macs',
  snatSkip: 'snat_skip',
  /** private to the datapath (set there, never by the agent); tests reset and read it */
  stackPorts: 'stack_ports',
  stats: 'stats',
  drops: 'drops',
  frags: 'frags',
  config: 'config',
  flowCache: 'flow_cache',
  sockRev: 'sock_rev',
  announce: 'announce',
  announceStats: 'announce_stats',
} as const;
export type MapName = (typeof MAP)[keyof typeof MAP];

/** Program names in build/bpf/xlb.o: node devices in XDP (xdp) or at tc ingress (tcDev),
 *  pod host-side veths at tc ingress (tc). */
export const PROG = { xdp: 'xlb_xdp', tcDev: 'xlb_tc_dev', tc: 'xlb_tc', tcHost: 'xlb_tc_host' } as const;

/** Socket-level load balancing: cgroup sock_addr programs, by the hook each attaches to. */
export const SOCK_PROGS = {
  connect4: 'xlb_sock_connect4', sendmsg4: 'xlb_sock_sendmsg4', recvmsg4: 'xlb_sock_recvmsg4', getpeername4: 'xlb_sock_getpeername4',
  connect6: 'xlb_sock_connect6', sendmsg6: 'xlb_sock_sendmsg6', recvmsg6: 'xlb_sock_recvmsg6', getpeername6: 'xlb_sock_getpeername6',
} as const;
export type SockHook = keyof typeof SOCK_PROGS;
/** iter/udp: destroys connected UDP sockets whose backend is gone (bpf_sock_destroy, 6.5+). */
export const SOCK_REAP_PROG = 'xlb_sock_udp_reap';
/** config.sockFlags */
export const SOCK_FLAG = { all: 1 } as const;

export const BPF_F_INNER_MAP = 1 << 12;
export const DEFAULT_AFFINITY_TIMEOUT_SEC = 10800;

export type Proto = 'TCP' | 'UDP' | 'ICMP';
const PROTO_NUM: Record<Proto, number> = { TCP: 6, UDP: 17, ICMP: 1 };
function protoName(n: number): Proto {
  const p = (Object.keys(PROTO_NUM) as Proto[]).find((k) => PROTO_NUM[k] === n);
  if (!p) throw new RangeError(`unknown IP protocol ${n}`);
  return p;
}

export type ScopeName = 'external' | 'internal';
export const SCOPE: Record<ScopeName, number> = { external: 0, internal: 1 };

export const SVC_FLAG = { maglev: 1, local: 2, srcRanges: 4, nodePort: 8 } as const;

export type BackendStateName = 'active' | 'terminating' | 'draining';
export const BACKEND_STATE: Record<BackendStateName, number> = { active: 0, terminating: 1, draining: 2 };
export const BACKEND_FLAG = { local: 1 } as const;

export type CtStateName = 'syn' | 'established' | 'fin' | 'closed' | 'udp' | 'syn_recv' | 'udp_new';
export const CT_STATES: CtStateName[] = ['syn', 'established', 'fin', 'closed', 'udp', 'syn_recv', 'udp_new'];
export const CT_FLAG = { reply: 1, snat: 2, hairpin: 4, external: 8, localBackend: 16, stack: 32 } as const;

export const CONFIG_FLAG = { fixture: 1, redirect: 2, peer: 4, nfct: 8, drain: 16 } as const;

/** Drop/count reasons: index in the `drops` per-CPU array, with a name for humans. */
export const DROP_REASONS = [
  { id: 0, key: 'none', name: 'none' },
  { id: 1, key: 'truncated', name: 'truncated header' },
  { id: 2, key: 'bad_ihl', name: 'bad IPv4 header length/version, bad IPv6 version' },
  { id: 3, key: 'ttl', name: 'TTL / hop limit expired (<= 1)' },
  { id: 4, key: 'no_endpoints', name: 'no endpoints: rejected (RST / ICMP port unreachable)' },
  { id: 5, key: 'no_local_endpoints', name: 'no local endpoints (traffic policy Local): dropped' },
  { id: 6, key: 'src_range', name: 'source not in loadBalancerSourceRanges' },
  { id: 7, key: 'no_backend', name: 'empty slot or missing backend' },
  { id: 8, key: 'ct_full', name: 'conntrack full: new flow dropped' },
  { id: 9, key: 'frag_untracked', name: 'fragment without its first fragment (passed untouched)' },
  { id: 10, key: 'snat_exhausted', name: 'no free SNAT port' },
  { id: 11, key: 'reject_failed', name: 'could not build reject reply (IP options, group MAC)' },
  { id: 12, key: 'no_config', name: 'datapath config missing (SNAT/hairpin address)' },
  { id: 13, key: 'fib', name: 'FIB lookup: blackhole/unreachable/prohibit' },
  { id: 14, key: 'icmp_inner', name: 'ICMP error with unusable inner header' },
  { id: 15, key: 'bad_source', name: 'new flow from a source never answered (0/8, loopback, multicast, class E, subnet broadcast)' },
  { id: 16, key: 'bad_csum', name: 'IPv6 UDP with checksum zero to a flow of ours' },
  { id: 17, key: 'ct_carry', name: 'TCP packet of a flow not yet carried over from a replaced conntrack table (held; TCP resends it)' },
] as const;
export type DropKey = (typeof DROP_REASONS)[number]['key'];
export const DROP: Record<DropKey, number> = Object.fromEntries(DROP_REASONS.map((r) => [r.key, r.id])) as Record<DropKey, number>;
/** XLB_DROP__MAX: the drops map's max_entries (verifyLayout checks it) */
export const DROP_MAX = DROP_REASONS.length;

// ---- struct layouts (size; member offset and size); checked against BTF by verifyLayout ----
// Every encoder and decoder below reads its offsets from this table, so the start-time check
// covers the bytes actually written. Members left out (pad) stay zero.

/** A struct: its size, and per member its offset (members) and size in bytes (sizes). */
export interface StructLayout<K extends string = string> { size: number; members: Record<K, number>; sizes: Record<K, number> }
function struct<K extends string>(size: number, m: Record<K, readonly [offset: number, size: number]>): StructLayout<K> {
  const pick = (i: 0 | 1) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, (v as readonly number[])[i]])) as Record<K, number>;
  return { size, members: pick(0), sizes: pick(1) };
}
export const LAYOUT = {
  xlb_addr: struct(16, { w: [0, 16] }),
  xlb_svc_key: struct(20, { addr: [0, 16], port: [16, 2], proto: [18, 1], scope: [19, 1] }),
  xlb_svc_value: struct(16, { svc_id: [0, 4], count: [4, 4], flags: [8, 4], affinity_timeout: [12, 4] }),
  xlb_backend: struct(20, { addr: [0, 16], port: [16, 2], state: [18, 1], flags: [19, 1] }),
  xlb_slot_key: struct(8, { svc_id: [0, 4], slot: [4, 4] }),
  xlb_revnat: struct(20, { addr: [0, 16], port: [16, 2] }),
  xlb_ct_key: struct(40, { saddr: [0, 16], daddr: [16, 16], sport: [32, 2], dport: [34, 2], proto: [36, 1] }),
  xlb_ct_value: struct(64, {
    nat_addr: [0, 16], orig_addr: [16, 16], nat_port: [32, 2], orig_port: [34, 2], backend_id: [36, 4],
    svc_id: [40, 4], state: [44, 1], flags: [45, 1], last_seen: [48, 8], created: [56, 8],
  }),
  xlb_ct_fill: struct(8, { count: [0, 8] }),
  xlb_affinity_key: struct(24, { svc_id: [0, 4], client: [8, 16] }),
  xlb_affinity_value: struct(16, { backend_id: [0, 4], last_used: [8, 8] }),
  xlb_src_range_key: struct(24, { prefixlen: [0, 4], svc_id: [4, 4], addr: [8, 16] }),
  xlb_node_addr_value: struct(4, { flags: [0, 4] }),
  xlb_pod_if_value: struct(4, { flags: [0, 4] }),
  xlb_if_mac: struct(8, { mac: [0, 6] }),
  xlb_svc_stats: struct(24, { packets: [0, 8], bytes: [8, 8], new_flows: [16, 8] }),
  xlb_frag_key: struct(40, { saddr: [0, 16], daddr: [16, 16], id: [32, 4], proto: [36, 1] }),
  xlb_frag_value: struct(4, { sport: [0, 2], dport: [2, 2] }),
  xlb_sock_key: struct(32, { cookie: [0, 8], addr: [8, 16], port: [24, 2], proto: [26, 1], dir: [27, 1] }),
  xlb_sock_value: struct(28, { addr: [0, 16], port: [16, 2], svc_id: [20, 4], backend_id: [24, 4] }),
  xlb_announce_value: struct(16, { ifindex: [0, 4], flags: [4, 4], expires: [8, 8] }),
  xlb_config: struct(136, {
    flags: [0, 4], nodeport_min: [4, 2], nodeport_max: [6, 2], maglev_m: [8, 4], ct_limit: [12, 4], hash_seed: [16, 4],
    tcp_syn_timeout: [20, 4], tcp_est_timeout: [24, 4], tcp_fin_timeout: [28, 4], tcp_close_timeout: [32, 4],
    udp_timeout: [36, 4], snat_port_min: [40, 2], snat_port_max: [42, 2], snat_addr: [44, 16], hairpin_addr: [60, 16],
    flow_cache_gen: [76, 4], flow_cache_mask: [80, 4], udp_new_timeout: [84, 4], sock_flags: [88, 4], carry_until: [92, 4], netns_cookie: [96, 8],
    snat_addr6: [104, 16], hairpin_addr6: [120, 16],
  }),
} satisfies Record<string, StructLayout>;
export type StructName = keyof typeof LAYOUT;

interface BtfSource {
  btfStruct(name: string): { name: string; size: number; members: { name: string; offset: number; size: number }[] };
}

/** Throws naming the struct/member whose size or offset differs from the object's BTF. */
export function verifyLayout(obj: BtfSource): void {
  for (const [name, want] of Object.entries(LAYOUT)) {
    let got;
    try {
      got = obj.btfStruct(name);
    } catch (e) {
      throw new Error(`layout check: struct ${name} missing from the BPF object's BTF (${(e as Error).message})`);
    }
    if (got.size !== want.size) {
      throw new Error(`layout check: struct ${name} is ${got.size} bytes in BTF, codecs expect ${want.size}`);
    }
    const sizes: Record<string, number> = want.sizes;
    for (const [member, off] of Object.entries<number>(want.members)) {
      const m = got.members.find((x) => x.name === member);
      if (!m) throw new Error(`layout check: struct ${name} has no member ${member}`);
      if (m.offset !== off) {
        throw new Error(`layout check: ${name}.${member} is at offset ${m.offset} in BTF, codecs expect ${off}`);
      }
      if (m.size !== sizes[member]) {
        throw new Error(`layout check: ${name}.${member} is ${m.size} bytes in BTF, codecs expect ${sizes[member]}`);
      }
    }
  }
}

// ---- addresses ----

/** Where an IPv4 address sits in a v4-mapped xlb_addr (w[3]). */
const V4 = 12;

/** 16-byte address: IPv4 v4-mapped (::ffff:a.b.c.d), IPv6 as itself; null (NodePort wildcard) is all zero. */
export function encodeAddr(addr: string | null, buf = Buffer.alloc(LAYOUT.xlb_addr.size), off = 0): Buffer {
  buf.fill(0, off, off + LAYOUT.xlb_addr.size);
  if (addr === null) return buf;
  const v4 = ipv4ToNumber(addr); // the common case, without BigInt
  if (v4 !== null) {
    buf[off + V4 - 2] = 0xff;
    buf[off + V4 - 1] = 0xff;
    buf.writeUInt32BE(v4, off + V4);
    return buf;
  }
  const a = parseAddr(addr);
  if (!a) throw new RangeError(`not an IP address: '${addr}'`);
  buf.writeBigUInt64BE(a.n >> 64n, off);
  buf.writeBigUInt64BE(a.n & 0xffffffffffffffffn, off + 8);
  return buf;
}

/**
 * The services key address of a NodePort (every node address of its family): IPv4 keeps the
 * all-zero address it always had; IPv6 needs another, as both families share the map: all
 * ones (ff..ff, a reserved multicast address that no Service can hold).
 */
export function encodeFrontendAddr(addr: string | null, family: Family | undefined, buf: Buffer<ArrayBuffer>, off: number): void {
  if (addr === null && family === 6) buf.fill(0xff, off, off + LAYOUT.xlb_addr.size);
  else encodeAddr(addr, buf, off);
}

/** encodeFrontendAddr read back: family 6 only for the IPv6 NodePort wildcard. */
export function decodeFrontendAddr(b: Buffer, off: number): { addr: string | null; family?: 6 } {
  if (b.subarray(off, off + LAYOUT.xlb_addr.size).every((x) => x === 0xff)) return { addr: null, family: 6 };
  return { addr: decodeAddr(b, off) };
}

export function decodeAddr(buf: Buffer, off = 0): string | null {
  const b = buf.subarray(off, off + LAYOUT.xlb_addr.size);
  if (b.every((x) => x === 0)) return null;
  const mapped = b.subarray(0, V4 - 2).every((x) => x === 0) && b[V4 - 2] === 0xff && b[V4 - 1] === 0xff;
  if (mapped) return `${b[V4]}.${b[V4 + 1]}.${b[V4 + 2]}.${b[V4 + 3]}`;
  return formatAddr({ family: 6, n: (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8) });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// ---- services ----

/** family: only for a NodePort (addr null): whose wildcard; absent = IPv4 */
export interface SvcKey { addr: string | null; port: number; proto: Proto; scope: ScopeName; family?: Family }
export interface SvcValue { svcId: number; count: number; flags: number; affinityTimeout: number }

const SK = LAYOUT.xlb_svc_key.members;
export function encodeSvcKey(k: SvcKey): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_svc_key.size);
  encodeFrontendAddr(k.addr, k.family, b, SK.addr);
  b.writeUInt16BE(k.port, SK.port);
  b[SK.proto] = PROTO_NUM[k.proto];
  b[SK.scope] = SCOPE[k.scope];
  return b;
}
export function decodeSvcKey(b: Buffer): SvcKey {
  const { addr, family } = decodeFrontendAddr(b, SK.addr);
  const k: SvcKey = { addr, port: b.readUInt16BE(SK.port), proto: protoName(b[SK.proto]), scope: b[SK.scope] === 1 ? 'internal' : 'external' };
  if (family === 6) k.family = 6;
  return k;
}
const SV = LAYOUT.xlb_svc_value.members;
export function encodeSvcValue(v: SvcValue): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_svc_value.size);
  b.writeUInt32LE(v.svcId, SV.svc_id);
  b.writeUInt32LE(v.count, SV.count);
  b.writeUInt32LE(v.flags, SV.flags);
  b.writeUInt32LE(v.affinityTimeout, SV.affinity_timeout);
  return b;
}
export function decodeSvcValue(b: Buffer): SvcValue {
  return { svcId: b.readUInt32LE(SV.svc_id), count: b.readUInt32LE(SV.count), flags: b.readUInt32LE(SV.flags), affinityTimeout: b.readUInt32LE(SV.affinity_timeout) };
}

// ---- backends ----

// backends is an ARRAY indexed by backend_id (inlined lookup on every CT hit): removing a
// backend means writing encodeBackendEmpty(); decodeBackendValue returns null for it.
export interface BackendValue { addr: string; port: number; state: BackendStateName; local: boolean }
export const encodeBackendEmpty = (): Buffer => Buffer.alloc(LAYOUT.xlb_backend.size);
export const encodeBackendKey = (id: number): Buffer => u32(id);
export const decodeBackendKey = (b: Buffer): number => b.readUInt32LE(0);
const BE = LAYOUT.xlb_backend.members;
export function encodeBackendValue(v: BackendValue): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_backend.size);
  encodeAddr(v.addr, b, BE.addr);
  b.writeUInt16BE(v.port, BE.port);
  b[BE.state] = BACKEND_STATE[v.state];
  b[BE.flags] = v.local ? BACKEND_FLAG.local : 0;
  return b;
}
export function decodeBackendValue(b: Buffer): BackendValue | null {
  const addr = decodeAddr(b, BE.addr);
  if (addr === null) return null;
  const state = (Object.keys(BACKEND_STATE) as BackendStateName[]).find((k) => BACKEND_STATE[k] === b[BE.state]) ?? 'draining';
  return { addr, port: b.readUInt16BE(BE.port), state, local: (b[BE.flags] & BACKEND_FLAG.local) !== 0 };
}

// ---- slots ----

export interface SlotKey { svcId: number; slot: number }
const SL = LAYOUT.xlb_slot_key.members;
export function encodeSlotKey(k: SlotKey, b = Buffer.alloc(LAYOUT.xlb_slot_key.size), off = 0): Buffer {
  b.writeUInt32LE(k.svcId, off + SL.svc_id);
  b.writeUInt32LE(k.slot, off + SL.slot);
  return b;
}
export const decodeSlotKey = (b: Buffer): SlotKey => ({ svcId: b.readUInt32LE(SL.svc_id), slot: b.readUInt32LE(SL.slot) });
/** Packed keys and values for updateBatch on slots: svcId's `slots` set to `ids[slot]`. */
export function encodeSlotBatch(svcId: number, slots: number[], ids: ArrayLike<number>): { keys: Buffer; values: Buffer } {
  const ks = LAYOUT.xlb_slot_key.size;
  const keys = Buffer.alloc(slots.length * ks);
  const values = Buffer.alloc(slots.length * 4);
  slots.forEach((slot, j) => {
    encodeSlotKey({ svcId, slot }, keys, j * ks);
    values.writeUInt32LE(ids[slot] >>> 0, j * 4);
  });
  return { keys, values };
}
export const encodeSlotValue = (backendId: number): Buffer => u32(backendId);
export const decodeSlotValue = (b: Buffer): number => b.readUInt32LE(0);

// ---- maglev (outer: svc_id -> inner ARRAY of backend ids, size config.maglevM) ----

export const encodeMaglevKey = (svcId: number): Buffer => u32(svcId);
export const decodeMaglevKey = (b: Buffer): number => b.readUInt32LE(0);
/** What BpfMap.create() needs for one inner table. */
export function maglevInnerSpec(m: number, svcId: number) {
  return { type: 'array', keySize: 4, valueSize: 4, maxEntries: m, flags: BPF_F_INNER_MAP, name: `xlb_mg_${svcId}`.slice(0, 15) };
}
/** Packed keys 0..n-1 and values for updateBatch on an inner table. */
export function encodeMaglevTable(table: ArrayLike<number>): { keys: Buffer; values: Buffer; count: number } {
  const keys = Buffer.alloc(table.length * 4);
  const values = Buffer.alloc(table.length * 4);
  for (let i = 0; i < table.length; i++) {
    keys.writeUInt32LE(i, i * 4);
    values.writeUInt32LE(table[i] >>> 0, i * 4);
  }
  return { keys, values, count: table.length };
}
export const encodeMaglevValue = (backendId: number): Buffer => u32(backendId);
export const decodeMaglevValue = (b: Buffer): number => b.readUInt32LE(0);

// ---- revnat ----

/** family: as in SvcKey */
export interface RevnatValue { addr: string | null; port: number; family?: Family }
export const encodeRevnatKey = (svcId: number): Buffer => u32(svcId);
export const decodeRevnatKey = (b: Buffer): number => b.readUInt32LE(0);
const RN = LAYOUT.xlb_revnat.members;
export function encodeRevnatValue(v: RevnatValue): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_revnat.size);
  encodeFrontendAddr(v.addr, v.family, b, RN.addr);
  b.writeUInt16BE(v.port, RN.port);
  return b;
}
export function decodeRevnatValue(b: Buffer): RevnatValue {
  const { addr, family } = decodeFrontendAddr(b, RN.addr);
  return { addr, port: b.readUInt16BE(RN.port), ...(family === 6 ? { family } : {}) };
}

// ---- conntrack ----

export interface CtKey { saddr: string; daddr: string; sport: number; dport: number; proto: Proto }
export interface CtValue {
  natAddr: string | null; origAddr: string | null; natPort: number; origPort: number;
  backendId: number; svcId: number; state: CtStateName; flags: number; lastSeen: bigint; created: bigint;
}
const CK = LAYOUT.xlb_ct_key.members;
export function encodeCtKey(k: CtKey): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_ct_key.size);
  encodeAddr(k.saddr, b, CK.saddr);
  encodeAddr(k.daddr, b, CK.daddr);
  b.writeUInt16BE(k.sport, CK.sport);
  b.writeUInt16BE(k.dport, CK.dport);
  b[CK.proto] = PROTO_NUM[k.proto];
  return b;
}
export function decodeCtKey(b: Buffer): CtKey {
  return {
    saddr: decodeAddr(b, CK.saddr) ?? '0.0.0.0', daddr: decodeAddr(b, CK.daddr) ?? '0.0.0.0',
    sport: b.readUInt16BE(CK.sport), dport: b.readUInt16BE(CK.dport), proto: protoName(b[CK.proto]),
  };
}
const CV = LAYOUT.xlb_ct_value.members;
export function encodeCtValue(v: CtValue): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_ct_value.size);
  encodeAddr(v.natAddr, b, CV.nat_addr);
  encodeAddr(v.origAddr, b, CV.orig_addr);
  b.writeUInt16BE(v.natPort, CV.nat_port);
  b.writeUInt16BE(v.origPort, CV.orig_port);
  b.writeUInt32LE(v.backendId, CV.backend_id);
  b.writeUInt32LE(v.svcId, CV.svc_id);
  b[CV.state] = CT_STATES.indexOf(v.state);
  b[CV.flags] = v.flags;
  b.writeBigUInt64LE(v.lastSeen, CV.last_seen);
  b.writeBigUInt64LE(v.created, CV.created);
  return b;
}
export function decodeCtValue(b: Buffer): CtValue {
  return {
    natAddr: decodeAddr(b, CV.nat_addr), origAddr: decodeAddr(b, CV.orig_addr),
    natPort: b.readUInt16BE(CV.nat_port), origPort: b.readUInt16BE(CV.orig_port),
    backendId: b.readUInt32LE(CV.backend_id), svcId: b.readUInt32LE(CV.svc_id),
    state: CT_STATES[b[CV.state]] ?? 'closed', flags: b[CV.flags],
    lastSeen: b.readBigUInt64LE(CV.last_seen), created: b.readBigUInt64LE(CV.created),
  };
}
const CF = LAYOUT.xlb_ct_fill.members;
export const encodeCtFillKey = (i: 0 | 1): Buffer => u32(i);
export const encodeCtFillValue = (n: bigint): Buffer => { const b = Buffer.alloc(LAYOUT.xlb_ct_fill.size); b.writeBigUInt64LE(n, CF.count); return b; };
export const decodeCtFillValue = (b: Buffer): bigint => b.readBigUInt64LE(CF.count);

/** Timeout (seconds) the datapath applies to a CT entry in this state. */
export function ctTimeoutSec(state: CtStateName, cfg: XlbConfig): number {
  switch (state) {
    case 'syn':
    case 'syn_recv': return cfg.tcpSynTimeout;
    case 'established': return cfg.tcpEstTimeout;
    case 'fin': return cfg.tcpFinTimeout;
    case 'closed': return cfg.tcpCloseTimeout;
    case 'udp_new': return cfg.udpNewTimeout;
    default: return cfg.udpTimeout;
  }
}
/** Same rule as ct_expired() in bpf/include/ct.h; nowNs is CLOCK_MONOTONIC (process.hrtime.bigint();
 *  the datapath stamps with the coarse monotonic clock, at most a tick behind). */
export function ctExpired(v: CtValue, cfg: XlbConfig, nowNs: bigint): boolean {
  return nowNs - v.lastSeen > BigInt(ctTimeoutSec(v.state, cfg)) * 1_000_000_000n;
}
/** Flow limit for config.ctLimit: two entries per flow, minus LRU per-CPU free-list headroom. */
export function ctFlowLimit(ctMaxEntries: number, cpus: number): number {
  return Math.max(1, Math.floor((ctMaxEntries - cpus * 256) / 2));
}

// ---- affinity ----

export interface AffinityKey { svcId: number; client: string }
export interface AffinityValue { backendId: number; lastUsed: bigint }
const AK = LAYOUT.xlb_affinity_key.members;
export function encodeAffinityKey(k: AffinityKey): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_affinity_key.size);
  b.writeUInt32LE(k.svcId, AK.svc_id);
  encodeAddr(k.client, b, AK.client);
  return b;
}
export const decodeAffinityKey = (b: Buffer): AffinityKey => ({ svcId: b.readUInt32LE(AK.svc_id), client: decodeAddr(b, AK.client) ?? '0.0.0.0' });
const AV = LAYOUT.xlb_affinity_value.members;
export function encodeAffinityValue(v: AffinityValue): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_affinity_value.size);
  b.writeUInt32LE(v.backendId, AV.backend_id);
  b.writeBigUInt64LE(v.lastUsed, AV.last_used);
  return b;
}
export const decodeAffinityValue = (b: Buffer): AffinityValue => ({ backendId: b.readUInt32LE(AV.backend_id), lastUsed: b.readBigUInt64LE(AV.last_used) });

// ---- source ranges (LPM: svc_id's 32 bits, then the address: IPv4 + 96 bits of v4-mapped
// prefix + its length, IPv6 its length over the full 128 bits) ----

export interface SrcRangeKey { svcId: number; cidr: string }
const SR = LAYOUT.xlb_src_range_key.members;
export function encodeSrcRangeKey(k: SrcRangeKey): Buffer {
  const [addr, lenStr] = k.cidr.split('/');
  const a = parseAddr(addr!);
  const bits = a?.family === 6 ? 128 : 32;
  const len = lenStr === undefined ? bits : Number(lenStr);
  if (!a || !Number.isInteger(len) || len < 0 || len > bits) throw new RangeError(`bad CIDR '${k.cidr}'`);
  const b = Buffer.alloc(LAYOUT.xlb_src_range_key.size);
  b.writeUInt32LE(32 + (a.family === 4 ? 96 : 0) + len, SR.prefixlen);
  b.writeUInt32LE(k.svcId, SR.svc_id); // host order, as the datapath writes it; always inside the prefix
  const host = (1n << BigInt(bits - len)) - 1n;
  encodeAddr(formatAddr({ family: a.family, n: a.n & ~host }), b, SR.addr);
  return b;
}
export function decodeSrcRangeKey(b: Buffer): SrcRangeKey {
  const addr = decodeAddr(b, SR.addr) ?? '::';
  const len = b.readUInt32LE(SR.prefixlen) - 32 - (addr.includes(':') ? 0 : 96);
  return { svcId: b.readUInt32LE(SR.svc_id), cidr: `${addr}/${len}` };
}
export const encodeSrcRangeValue = (allow = true): Buffer => Buffer.from([allow ? 1 : 0]);
export const decodeSrcRangeValue = (b: Buffer): boolean => b[0] !== 0;

// ---- node addresses ----

export const encodeNodeAddrKey = (addr: string): Buffer => encodeAddr(addr);
export const decodeNodeAddrKey = (b: Buffer): string => decodeAddr(b) ?? '0.0.0.0';
/** xlb_node_addr_flags: broadcast = a node device's subnet broadcast address (no NodePort, no reply) */
export const NODE_ADDR_FLAG = { broadcast: 1 } as const;
const flagsValue = (l: StructLayout<'flags'>) => ({
  encode: (flags: number): Buffer => { const b = Buffer.alloc(l.size); b.writeUInt32LE(flags >>> 0, l.members.flags); return b; },
  decode: (b: Buffer): { flags: number } => ({ flags: b.readUInt32LE(l.members.flags) }),
});
const NODE_ADDR_VALUE = flagsValue(LAYOUT.xlb_node_addr_value);
export const encodeNodeAddrValue = (flags = 0): Buffer => NODE_ADDR_VALUE.encode(flags);
export const decodeNodeAddrValue = NODE_ADDR_VALUE.decode;

// ---- pod_ifs: host-side pod interfaces, by ifindex ----

/** xlb_pod_if_flags: peer = a veth, bpf_redirect_peer delivers into its pod */
export const POD_IF_FLAG = { peer: 1 } as const;
export const encodePodIfKey = (ifindex: number): Buffer => u32(ifindex);
export const decodePodIfKey = (b: Buffer): number => b.readUInt32LE(0);
const POD_IF_VALUE = flagsValue(LAYOUT.xlb_pod_if_value);
export const encodePodIfValue = POD_IF_VALUE.encode;
export const decodePodIfValue = POD_IF_VALUE.decode;

// ---- if_macs: an interface's own MAC by ifindex (source MAC of rejects and hairpin) ----

export const encodeIfMacKey = (ifindex: number): Buffer => u32(ifindex);
export const decodeIfMacKey = (b: Buffer): number => b.readUInt32LE(0);
const IM = LAYOUT.xlb_if_mac.members.mac;
export function encodeIfMacValue(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-f]{2}$/i.test(p))) throw new RangeError(`not a MAC address: '${mac}'`);
  const b = Buffer.alloc(LAYOUT.xlb_if_mac.size);
  parts.forEach((p, i) => { b[IM + i] = parseInt(p, 16); });
  return b;
}
export const decodeIfMacValue = (b: Buffer): { mac: string } => ({ mac: [...b.subarray(IM, IM + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':') });

// ---- port bitmaps, bit (port & 63) of word port >> 6: snat_skip (SNAT ports the node uses)
// and stack_ports (local backend ports whose replies xlb_tc_host looks up) ----

export const SNAT_SKIP_WORDS = 65536 / 64;
/** The words of a port bitmap (snat_skip, stack_ports) for a set of ports. */
export function snatSkipWords(ports: Iterable<number>): BigUint64Array {
  const w = new BigUint64Array(SNAT_SKIP_WORDS);
  for (const p of ports) w[p >> 6] |= 1n << BigInt(p & 63);
  return w;
}
export const encodeSnatSkipKey = (word: number): Buffer => u32(word);
export const encodeSnatSkipValue = (bits: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(bits); return b; };

// ---- per-CPU stats and drops (values are possibleCpus * round_up(size, 8) bytes) ----

export interface SvcStats { packets: bigint; bytes: bigint; newFlows: bigint }
export const encodeStatsKey = (svcId: number): Buffer => u32(svcId);
export const decodeStatsKey = (b: Buffer): number => b.readUInt32LE(0);
const ST = LAYOUT.xlb_svc_stats.members;
/** Bytes per CPU of a per-CPU value: the kernel rounds each copy up to 8. */
const perCpu = (size: number): number => Math.ceil(size / 8) * 8;
export function decodeStatsValue(b: Buffer): SvcStats {
  const s: SvcStats = { packets: 0n, bytes: 0n, newFlows: 0n };
  const step = perCpu(LAYOUT.xlb_svc_stats.size);
  for (let o = 0; o + step <= b.length; o += step) {
    s.packets += b.readBigUInt64LE(o + ST.packets);
    s.bytes += b.readBigUInt64LE(o + ST.bytes);
    s.newFlows += b.readBigUInt64LE(o + ST.new_flows);
  }
  return s;
}
/** Zeroed per-CPU value (to reset a reused svc_id's counters). */
export const encodeStatsValue = (cpus: number): Buffer => Buffer.alloc(perCpu(LAYOUT.xlb_svc_stats.size) * cpus);
export const encodeDropKey = (reason: number): Buffer => u32(reason);
export const decodeDropKey = (b: Buffer): number => b.readUInt32LE(0);
export function decodeDropValue(b: Buffer): bigint {
  let n = 0n;
  for (let o = 0; o + 8 <= b.length; o += 8) n += b.readBigUInt64LE(o);
  return n;
}
export const encodeDropValue = (cpus: number): Buffer => Buffer.alloc(8 * cpus);

// ---- fragments ----

export interface FragKey { saddr: string; daddr: string; id: number; proto: Proto }
const FK = LAYOUT.xlb_frag_key.members;
/** The id as the datapath stores it: IPv4's 16-bit id in the first two bytes, IPv6's 32-bit
 *  fragment id in all four (network order both). */
export function encodeFragKey(k: FragKey): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_frag_key.size);
  encodeAddr(k.saddr, b, FK.saddr);
  encodeAddr(k.daddr, b, FK.daddr);
  if (isIPv6(k.saddr)) b.writeUInt32BE(k.id >>> 0, FK.id);
  else b.writeUInt16BE(k.id, FK.id);
  b[FK.proto] = PROTO_NUM[k.proto];
  return b;
}
export function decodeFragKey(b: Buffer): FragKey {
  const saddr = decodeAddr(b, FK.saddr) ?? '0.0.0.0';
  const id = saddr.includes(':') ? b.readUInt32BE(FK.id) : b.readUInt16BE(FK.id);
  return { saddr, daddr: decodeAddr(b, FK.daddr) ?? '0.0.0.0', id, proto: protoName(b[FK.proto]) };
}
const FV = LAYOUT.xlb_frag_value.members;
export const decodeFragValue = (b: Buffer): { sport: number; dport: number } => ({ sport: b.readUInt16BE(FV.sport), dport: b.readUInt16BE(FV.dport) });
export function encodeFragValue(v: { sport: number; dport: number }): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_frag_value.size);
  b.writeUInt16BE(v.sport, FV.sport);
  b.writeUInt16BE(v.dport, FV.dport);
  return b;
}

// ---- config ----

export interface XlbConfig {
  flags: number;
  nodePortMin: number; nodePortMax: number;
  maglevM: number;
  ctLimit: number;
  hashSeed: number;
  tcpSynTimeout: number; tcpEstTimeout: number; tcpFinTimeout: number; tcpCloseTimeout: number; udpTimeout: number;
  snatPortMin: number; snatPortMax: number;
  /** node address external flows to remote backends are SNATed to */
  snatAddr: string | null;
  /** source a pod sees when it reaches itself through its Service */
  hairpinAddr: string | null;
  /** IPv6 twin of snatAddr: the node's IPv6 address (null: IPv6 remote backends get no_config drops) */
  snatAddr6: string | null;
  /** IPv6 twin of hairpinAddr */
  hairpinAddr6: string | null;
  /**
   * The per-CPU flow cache (struct xlb_flow_cache_entry in bpf/include/maps.h): 0 turns it
   * off; writing another value invalidates every entry on every CPU.
   */
  flowCacheGen: number;
  /** flow_cache max_entries - 1 (the map's size is a power of two) */
  flowCacheMask: number;
  /** seconds: UDP flows that never got a reply (udpTimeout once they did) */
  udpNewTimeout: number;
  /** socket LB: SOCK_FLAG.all translates every socket in the cgroup, else only netnsCookie's */
  sockFlags: number;
  /** the node's own network namespace (SO_NETNS_COOKIE of the agent's; a counter from 1, so a
   *  safe integer); 0: none */
  netnsCookie: number;
  /** CLOCK_MONOTONIC seconds (process.hrtime): until then a TCP packet that misses conntrack
   *  and may belong to a flow of a replaced ct not yet copied is held (flow_carry_held in
   *  bpf/include/flow.h); 0: off. Set only across a start's map migration (agent/pinmigrate). */
  carryUntil: number;
}

/** flow_cache entries per CPU (XLB_FLOW_CACHE_SIZE in bpf/xlb_maps.h) */
export const DEFAULT_FLOW_CACHE_SIZE = 8192;

/** A new nonzero flow cache generation, different from `prev`. */
export function nextFlowCacheGen(prev = 0): number {
  let g = 0;
  while (g === 0 || g === prev) g = randomInt(1, 0xffffffff);
  return g;
}

// tcpFinTimeout: a flow that saw a FIN keeps its entries 10 s after its last packet (Cilium's
// close timeout; it was 30 s): long enough to translate the peer's FIN, the last ACK and their
// retransmissions (RTO backoff 0.2 .. 6.4 s apart, each refreshing the entry), and a half-closed
// connection that still carries data stays. What arrives later meets no entry, as a connection
// already closed: the worst is an RST. A closed flow's entries and admission go 10-15 s after its
// last packet instead of 30-35 s: at a given conn/s, a third of the closed flows in the table.
export const DEFAULT_CONFIG: XlbConfig = {
  flags: CONFIG_FLAG.redirect,
  nodePortMin: 30000, nodePortMax: 32767,
  maglevM: MAGLEV_DEFAULT_M, ctLimit: 100_000, hashSeed: 0x9e3779b9,
  tcpSynTimeout: 60, tcpEstTimeout: 21600, tcpFinTimeout: 10, tcpCloseTimeout: 10, udpTimeout: 120,
  snatPortMin: 1024, snatPortMax: 65535,
  snatAddr: null, hairpinAddr: '169.254.42.1',
  // RFC 6666's discard-only prefix: never a real peer, and a pod routes it through its
  // default route (a link-local address would be resolved on-link instead)
  snatAddr6: null, hairpinAddr6: '100::42:1',
  flowCacheGen: 1, flowCacheMask: DEFAULT_FLOW_CACHE_SIZE - 1,
  udpNewTimeout: 30, sockFlags: 0, netnsCookie: 0, carryUntil: 0,
};

const CFG = LAYOUT.xlb_config.members;
export const encodeConfigKey = (): Buffer => u32(0);
export function encodeConfig(c: XlbConfig): Buffer {
  if (c.nodePortMin > c.nodePortMax || c.snatPortMin > c.snatPortMax) throw new RangeError('config: port range min > max');
  if (c.maglevM < 1) throw new RangeError('config: maglevM must be >= 1');
  const cacheSize = c.flowCacheMask + 1;
  if (!Number.isInteger(cacheSize) || cacheSize < 1 || (cacheSize & c.flowCacheMask) !== 0) throw new RangeError('config: flowCacheMask + 1 must be a power of two');
  const b = Buffer.alloc(LAYOUT.xlb_config.size);
  b.writeUInt32LE(c.flags, CFG.flags);
  b.writeUInt16LE(c.nodePortMin, CFG.nodeport_min);
  b.writeUInt16LE(c.nodePortMax, CFG.nodeport_max);
  b.writeUInt32LE(c.maglevM, CFG.maglev_m);
  b.writeUInt32LE(c.ctLimit, CFG.ct_limit);
  b.writeUInt32LE(c.hashSeed >>> 0, CFG.hash_seed);
  b.writeUInt32LE(c.tcpSynTimeout, CFG.tcp_syn_timeout);
  b.writeUInt32LE(c.tcpEstTimeout, CFG.tcp_est_timeout);
  b.writeUInt32LE(c.tcpFinTimeout, CFG.tcp_fin_timeout);
  b.writeUInt32LE(c.tcpCloseTimeout, CFG.tcp_close_timeout);
  b.writeUInt32LE(c.udpTimeout, CFG.udp_timeout);
  b.writeUInt16LE(c.snatPortMin, CFG.snat_port_min);
  b.writeUInt16LE(c.snatPortMax, CFG.snat_port_max);
  encodeAddr(c.snatAddr, b, CFG.snat_addr);
  encodeAddr(c.hairpinAddr, b, CFG.hairpin_addr);
  b.writeUInt32LE(c.flowCacheGen >>> 0, CFG.flow_cache_gen);
  b.writeUInt32LE(c.flowCacheMask >>> 0, CFG.flow_cache_mask);
  b.writeUInt32LE(c.udpNewTimeout, CFG.udp_new_timeout);
  b.writeUInt32LE(c.sockFlags >>> 0, CFG.sock_flags);
  b.writeUInt32LE(c.carryUntil >>> 0, CFG.carry_until);
  b.writeBigUInt64LE(BigInt(c.netnsCookie), CFG.netns_cookie);
  encodeAddr(c.snatAddr6, b, CFG.snat_addr6);
  encodeAddr(c.hairpinAddr6, b, CFG.hairpin_addr6);
  return b;
}
export function decodeConfig(b: Buffer): XlbConfig {
  return {
    flags: b.readUInt32LE(CFG.flags), nodePortMin: b.readUInt16LE(CFG.nodeport_min), nodePortMax: b.readUInt16LE(CFG.nodeport_max),
    maglevM: b.readUInt32LE(CFG.maglev_m), ctLimit: b.readUInt32LE(CFG.ct_limit), hashSeed: b.readUInt32LE(CFG.hash_seed),
    tcpSynTimeout: b.readUInt32LE(CFG.tcp_syn_timeout), tcpEstTimeout: b.readUInt32LE(CFG.tcp_est_timeout),
    tcpFinTimeout: b.readUInt32LE(CFG.tcp_fin_timeout), tcpCloseTimeout: b.readUInt32LE(CFG.tcp_close_timeout),
    udpTimeout: b.readUInt32LE(CFG.udp_timeout),
    snatPortMin: b.readUInt16LE(CFG.snat_port_min), snatPortMax: b.readUInt16LE(CFG.snat_port_max),
    snatAddr: decodeAddr(b, CFG.snat_addr), hairpinAddr: decodeAddr(b, CFG.hairpin_addr),
    flowCacheGen: b.readUInt32LE(CFG.flow_cache_gen), flowCacheMask: b.readUInt32LE(CFG.flow_cache_mask),
    udpNewTimeout: b.readUInt32LE(CFG.udp_new_timeout), sockFlags: b.readUInt32LE(CFG.sock_flags), carryUntil: b.readUInt32LE(CFG.carry_until),
    netnsCookie: Number(b.readBigUInt64LE(CFG.netns_cookie)),
    snatAddr6: decodeAddr(b, CFG.snat_addr6), hairpinAddr6: decodeAddr(b, CFG.hairpin_addr6),
  };
}

// ---- the datapath's flow hash (Maglev index = flowHash % maglevM) ----

/** Mirrors lb_flow_hash() in bpf/include/lb.h (addresses/ports as the CPU loads them: little-endian reads of network bytes;
 *  an address folds to the xor of its words and the ::ffff word, i.e. an IPv4 address itself: addr_fold). */
export function flowHash(t: { saddr: string; daddr: string; sport: number; dport: number; proto: Proto }, seed: number): number {
  const le = (a: string) => {
    const b = encodeAddr(a);
    return (b.readUInt32LE(0) ^ b.readUInt32LE(4) ^ b.readUInt32LE(8) ^ b.readUInt32LE(V4) ^ 0xffff0000) >>> 0;
  };
  const sw = (p: number) => ((p & 0xff) << 8) | (p >>> 8);
  let h = seed >>> 0;
  h = fmix32(h ^ le(t.saddr));
  h = fmix32(h ^ le(t.daddr));
  h = fmix32(h ^ ((((sw(t.sport) << 16) | sw(t.dport)) >>> 0)));
  return fmix32(h ^ PROTO_NUM[t.proto]);
}

// ---- sock_rev (socket LB: per-socket reverse and forward entries) ----

export const SOCK_DIR = ['reverse', 'forward'] as const;
export interface SockKey { cookie: string; addr: string | null; port: number; proto: Proto; dir: (typeof SOCK_DIR)[number] }
const SOK = LAYOUT.xlb_sock_key.members;
export function decodeSockKey(b: Buffer): SockKey {
  return {
    cookie: b.readBigUInt64LE(SOK.cookie).toString(), addr: decodeAddr(b, SOK.addr), port: b.readUInt16BE(SOK.port),
    proto: protoName(b[SOK.proto]), dir: SOCK_DIR[b[SOK.dir]] ?? 'reverse',
  };
}
const SOV = LAYOUT.xlb_sock_value.members;
export function decodeSockValue(b: Buffer): { addr: string | null; port: number; svcId: number; backendId: number } {
  return { addr: decodeAddr(b, SOV.addr), port: b.readUInt16BE(SOV.port), svcId: b.readUInt32LE(SOV.svc_id), backendId: b.readUInt32LE(SOV.backend_id) };
}

// ---- announce (LoadBalancer addresses this node answers ARP/NDP for; bpf/include/announce.h) ----

/** xlb_announce_flags */
export const ANNOUNCE_FLAG = { arp: 1, ndp: 2 } as const;
/** announce_stats indexes (enum xlb_announce_counter) */
export const ANNOUNCE_COUNTERS = [
  { id: 0, key: 'arp_replies' }, { id: 1, key: 'arp_expired' }, { id: 2, key: 'ndp_replies' }, { id: 3, key: 'ndp_expired' },
] as const;
export type AnnounceCounter = (typeof ANNOUNCE_COUNTERS)[number]['key'];
export interface AnnounceValue { ifindex: number; flags: number; /** CLOCK_MONOTONIC ns (process.hrtime.bigint()) */ expires: bigint }
export const encodeAnnounceKey = (addr: string): Buffer => encodeAddr(addr);
export const decodeAnnounceKey = (b: Buffer): string => decodeAddr(b) ?? '0.0.0.0';
const AN = LAYOUT.xlb_announce_value.members;
export function encodeAnnounceValue(v: AnnounceValue): Buffer {
  const b = Buffer.alloc(LAYOUT.xlb_announce_value.size);
  b.writeUInt32LE(v.ifindex >>> 0, AN.ifindex);
  b.writeUInt32LE(v.flags >>> 0, AN.flags);
  b.writeBigUInt64LE(v.expires, AN.expires);
  return b;
}
export const decodeAnnounceValue = (b: Buffer): AnnounceValue => ({ ifindex: b.readUInt32LE(AN.ifindex), flags: b.readUInt32LE(AN.flags), expires: b.readBigUInt64LE(AN.expires) });
export const encodeAnnounceStatsKey = (i: number): Buffer => u32(i);
