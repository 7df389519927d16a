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
import { MAGLEV_DEFAULT_M } from '../model/maglev.js';

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
  stats: 'stats',
  drops: 'drops',
  frags: 'frags',
  config: 'config',
  flowCache: 'flow_cache',
  sockRev: 'sock_rev',
} as const;
export type MapName = (typeof MAP)[keyof typeof MAP];

/** Program names in build/bpf/xlb.o: node devices in XDP (xdp) or at tc ingress (tcDev),
 *  pod host-side veths at tc ingress (tc). */
export const PROG = { xdp: 'xlb_xdp', tcDev: 'xlb_tc_dev', tc: 'xlb_tc', tcHost: 'xlb_tc_host' } as const;

/** Socket-level load balancing: cgroup sock_addr programs, by the hook each attaches to. */
export const SOCK_PROGS = {
  connect4: 'xlb_sock_connect4', sendmsg4: 'xlb_sock_sendmsg4', recvmsg4: 'xlb_sock_recvmsg4', getpeername4: 'xlb_sock_getpeername4',
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
export const CT_FLAG = { reply: 1, snat: 2, hairpin: 4, external: 8, localBackend: 16 } as const;

export const CONFIG_FLAG = { fixture: 1, redirect: 2, peer: 4 } as const;

/** Drop/count reasons: index in the `drops` per-CPU array, with a name for humans. */
export const DROP_REASONS = [
  { id: 0, key: 'none', name: 'none' },
  { id: 1, key: 'truncated', name: 'truncated header' },
  { id: 2, key: 'bad_ihl', name: 'bad IPv4 header length/version' },
  { id: 3, key: 'ttl', name: 'TTL expired (<= 1)' },
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
] as const;
export type DropKey = (typeof DROP_REASONS)[number]['key'];
export const DROP: Record<DropKey, number> = Object.fromEntries(DROP_REASONS.map((r) => [r.key, r.id])) as Record<DropKey, number>;
export const DROP_MAX = 16;

// ---- struct layouts (size, member offsets); checked against BTF by verifyLayout ----

export interface StructLayout { size: number; members: Record<string, number> }
export const LAYOUT: Record<string, StructLayout> = {
  xlb_addr: { size: 16, members: { w: 0 } },
  xlb_svc_key: { size: 20, members: { addr: 0, port: 16, proto: 18, scope: 19 } },
  xlb_svc_value: { size: 16, members: { svc_id: 0, count: 4, flags: 8, affinity_timeout: 12 } },
  xlb_backend: { size: 20, members: { addr: 0, port: 16, state: 18, flags: 19 } },
  xlb_slot_key: { size: 8, members: { svc_id: 0, slot: 4 } },
  xlb_revnat: { size: 20, members: { addr: 0, port: 16 } },
  xlb_ct_key: { size: 40, members: { saddr: 0, daddr: 16, sport: 32, dport: 34, proto: 36 } },
  xlb_ct_value: {
    size: 64,
    members: { nat_addr: 0, orig_addr: 16, nat_port: 32, orig_port: 34, backend_id: 36, svc_id: 40, state: 44, flags: 45, last_seen: 48, created: 56 },
  },
  xlb_ct_fill: { size: 8, members: { count: 0 } },
  xlb_affinity_key: { size: 24, members: { svc_id: 0, client: 8 } },
  xlb_affinity_value: { size: 16, members: { backend_id: 0, last_used: 8 } },
  xlb_src_range_key: { size: 24, members: { prefixlen: 0, svc_id: 4, addr: 8 } },
  xlb_node_addr_value: { size: 4, members: { flags: 0 } },
  xlb_pod_if_value: { size: 4, members: { flags: 0 } },
  xlb_if_mac: { size: 8, members: { mac: 0 } },
  xlb_svc_stats: { size: 24, members: { packets: 0, bytes: 8, new_flows: 16 } },
  xlb_frag_key: { size: 12, members: { saddr: 0, daddr: 4, id: 8, proto: 10 } },
  xlb_frag_value: { size: 4, members: { sport: 0, dport: 2 } },
  xlb_sock_key: { size: 32, members: { cookie: 0, addr: 8, port: 24, proto: 26, dir: 27 } },
  xlb_sock_value: { size: 28, members: { addr: 0, port: 16, svc_id: 20, backend_id: 24 } },
  xlb_config: {
    size: 104,
    members: {
      flags: 0, nodeport_min: 4, nodeport_max: 6, maglev_m: 8, ct_limit: 12, hash_seed: 16,
      tcp_syn_timeout: 20, tcp_est_timeout: 24, tcp_fin_timeout: 28, tcp_close_timeout: 32,
      udp_timeout: 36, snat_port_min: 40, snat_port_max: 42, snat_addr: 44, hairpin_addr: 60,
      flow_cache_gen: 76, flow_cache_mask: 80, udp_new_timeout: 84, sock_flags: 88, netns_cookie: 96,
    },
  },
};

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
    for (const [member, off] of Object.entries(want.members)) {
      const m = got.members.find((x) => x.name === member);
      if (!m) throw new Error(`layout check: struct ${name} has no member ${member}`);
      if (m.offset !== off) {
        throw new Error(`layout check: ${name}.${member} is at offset ${m.offset} in BTF, codecs expect ${off}`);
      }
    }
  }
}

// ---- addresses ----

/** 16-byte v4-mapped address; null (NodePort wildcard) is all zero. */
export function encodeAddr(addr: string | null, buf = Buffer.alloc(16), off = 0): Buffer {
  buf.fill(0, off, off + 16);
  if (addr === null) return buf;
  const parts = addr.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new RangeError(`not an IPv4 address: '${addr}'`);
  }
  buf[off + 10] = 0xff;
  buf[off + 11] = 0xff;
  parts.forEach((p, i) => { buf[off + 12 + i] = Number(p); });
  return buf;
}

export function decodeAddr(buf: Buffer, off = 0): string | null {
  const b = buf.subarray(off, off + 16);
  if (b.every((x) => x === 0)) return null;
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i).toString(16));
  return words.join(':');
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// ---- services ----

export interface SvcKey { addr: string | null; port: number; proto: Proto; scope: ScopeName }
export interface SvcValue { svcId: number; count: number; flags: number; affinityTimeout: number }

export function encodeSvcKey(k: SvcKey): Buffer {
  const b = Buffer.alloc(20);
  encodeAddr(k.addr, b, 0);
  b.writeUInt16BE(k.port, 16);
  b[18] = PROTO_NUM[k.proto];
  b[19] = SCOPE[k.scope];
  return b;
}
export function decodeSvcKey(b: Buffer): SvcKey {
  return { addr: decodeAddr(b, 0), port: b.readUInt16BE(16), proto: protoName(b[18]), scope: b[19] === 1 ? 'internal' : 'external' };
}
export function encodeSvcValue(v: SvcValue): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(v.svcId, 0);
  b.writeUInt32LE(v.count, 4);
  b.writeUInt32LE(v.flags, 8);
  b.writeUInt32LE(v.affinityTimeout, 12);
  return b;
}
export function decodeSvcValue(b: Buffer): SvcValue {
  return { svcId: b.readUInt32LE(0), count: b.readUInt32LE(4), flags: b.readUInt32LE(8), affinityTimeout: b.readUInt32LE(12) };
}

// ---- backends ----

// backends is an ARRAY indexed by backend_id (inlined lookup on every CT hit): removing a
// backend means writing encodeBackendEmpty(); decodeBackendValue returns null for it.
export interface BackendValue { addr: string; port: number; state: BackendStateName; local: boolean }
export const encodeBackendEmpty = (): Buffer => Buffer.alloc(20);
export const encodeBackendKey = (id: number): Buffer => u32(id);
export const decodeBackendKey = (b: Buffer): number => b.readUInt32LE(0);
export function encodeBackendValue(v: BackendValue): Buffer {
  const b = Buffer.alloc(20);
  encodeAddr(v.addr, b, 0);
  b.writeUInt16BE(v.port, 16);
  b[18] = BACKEND_STATE[v.state];
  b[19] = v.local ? BACKEND_FLAG.local : 0;
  return b;
}
export function decodeBackendValue(b: Buffer): BackendValue | null {
  if (b.subarray(0, 16).every((x) => x === 0)) return null;
  const state = (Object.keys(BACKEND_STATE) as BackendStateName[]).find((k) => BACKEND_STATE[k] === b[18]) ?? 'draining';
  return { addr: decodeAddr(b, 0) ?? '0.0.0.0', port: b.readUInt16BE(16), state, local: (b[19] & BACKEND_FLAG.local) !== 0 };
}

// ---- slots ----

export interface SlotKey { svcId: number; slot: number }
export function encodeSlotKey(k: SlotKey): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(k.svcId, 0);
  b.writeUInt32LE(k.slot, 4);
  return b;
}
export const decodeSlotKey = (b: Buffer): SlotKey => ({ svcId: b.readUInt32LE(0), slot: b.readUInt32LE(4) });
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

export interface RevnatValue { addr: string | null; port: number }
export const encodeRevnatKey = (svcId: number): Buffer => u32(svcId);
export const decodeRevnatKey = (b: Buffer): number => b.readUInt32LE(0);
export function encodeRevnatValue(v: RevnatValue): Buffer {
  const b = Buffer.alloc(20);
  encodeAddr(v.addr, b, 0);
  b.writeUInt16BE(v.port, 16);
  return b;
}
export const decodeRevnatValue = (b: Buffer): RevnatValue => ({ addr: decodeAddr(b, 0), port: b.readUInt16BE(16) });

// ---- conntrack ----

export interface CtKey { saddr: string; daddr: string; sport: number; dport: number; proto: Proto }
export interface CtValue {
  natAddr: string | null; origAddr: string | null; natPort: number; origPort: number;
  backendId: number; svcId: number; state: CtStateName; flags: number; lastSeen: bigint; created: bigint;
}
export function encodeCtKey(k: CtKey): Buffer {
  const b = Buffer.alloc(40);
  encodeAddr(k.saddr, b, 0);
  encodeAddr(k.daddr, b, 16);
  b.writeUInt16BE(k.sport, 32);
  b.writeUInt16BE(k.dport, 34);
  b[36] = PROTO_NUM[k.proto];
  return b;
}
export function decodeCtKey(b: Buffer): CtKey {
  return { saddr: decodeAddr(b, 0) ?? '0.0.0.0', daddr: decodeAddr(b, 16) ?? '0.0.0.0', sport: b.readUInt16BE(32), dport: b.readUInt16BE(34), proto: protoName(b[36]) };
}
export function encodeCtValue(v: CtValue): Buffer {
  const b = Buffer.alloc(64);
  encodeAddr(v.natAddr, b, 0);
  encodeAddr(v.origAddr, b, 16);
  b.writeUInt16BE(v.natPort, 32);
  b.writeUInt16BE(v.origPort, 34);
  b.writeUInt32LE(v.backendId, 36);
  b.writeUInt32LE(v.svcId, 40);
  b[44] = CT_STATES.indexOf(v.state);
  b[45] = v.flags;
  b.writeBigUInt64LE(v.lastSeen, 48);
  b.writeBigUInt64LE(v.created, 56);
  return b;
}
export function decodeCtValue(b: Buffer): CtValue {
  return {
    natAddr: decodeAddr(b, 0), origAddr: decodeAddr(b, 16), natPort: b.readUInt16BE(32), origPort: b.readUInt16BE(34),
    backendId: b.readUInt32LE(36), svcId: b.readUInt32LE(40), state: CT_STATES[b[44]] ?? 'closed', flags: b[45],
    lastSeen: b.readBigUInt64LE(48), created: b.readBigUInt64LE(56),
  };
}
export const encodeCtFillKey = (i: 0 | 1): Buffer => u32(i);
export const encodeCtFillValue = (n: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return b; };
export const decodeCtFillValue = (b: Buffer): bigint => b.readBigUInt64LE(0);

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
export function encodeAffinityKey(k: AffinityKey): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(k.svcId, 0);
  encodeAddr(k.client, b, 8);
  return b;
}
export const decodeAffinityKey = (b: Buffer): AffinityKey => ({ svcId: b.readUInt32LE(0), client: decodeAddr(b, 8) ?? '0.0.0.0' });
export function encodeAffinityValue(v: AffinityValue): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(v.backendId, 0);
  b.writeBigUInt64LE(v.lastUsed, 8);
  return b;
}
export const decodeAffinityValue = (b: Buffer): AffinityValue => ({ backendId: b.readUInt32LE(0), lastUsed: b.readBigUInt64LE(8) });

// ---- source ranges (LPM: svc_id's 32 bits + 96 bits of v4-mapped prefix + v4 length) ----

export interface SrcRangeKey { svcId: number; cidr: string }
export function encodeSrcRangeKey(k: SrcRangeKey): Buffer {
  const [addr, lenStr] = k.cidr.split('/');
  const len = lenStr === undefined ? 32 : Number(lenStr);
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new RangeError(`bad IPv4 CIDR '${k.cidr}'`);
  const b = Buffer.alloc(24);
  b.writeUInt32LE(32 + 96 + len, 0);
  b.writeUInt32LE(k.svcId, 4); // host order, as the datapath writes it; always inside the prefix
  encodeAddr(addr, b, 8);
  const host = b.readUInt32BE(20);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  b.writeUInt32BE((host & mask) >>> 0, 20);
  return b;
}
export function decodeSrcRangeKey(b: Buffer): SrcRangeKey {
  return { svcId: b.readUInt32LE(4), cidr: `${decodeAddr(b, 8)}/${b.readUInt32LE(0) - 128}` };
}
export const encodeSrcRangeValue = (allow = true): Buffer => Buffer.from([allow ? 1 : 0]);
export const decodeSrcRangeValue = (b: Buffer): boolean => b[0] !== 0;

// ---- node addresses ----

export const encodeNodeAddrKey = (addr: string): Buffer => encodeAddr(addr);
export const decodeNodeAddrKey = (b: Buffer): string => decodeAddr(b) ?? '0.0.0.0';
/** xlb_node_addr_flags: broadcast = a node device's subnet broadcast address (no NodePort, no reply) */
export const NODE_ADDR_FLAG = { broadcast: 1 } as const;
export const encodeNodeAddrValue = (flags = 0): Buffer => u32(flags);
export const decodeNodeAddrValue = (b: Buffer): { flags: number } => ({ flags: b.readUInt32LE(0) });

// ---- pod_ifs: host-side pod interfaces, by ifindex ----

/** xlb_pod_if_flags: peer = a veth, bpf_redirect_peer delivers into its pod */
export const POD_IF_FLAG = { peer: 1 } as const;
export const encodePodIfKey = (ifindex: number): Buffer => u32(ifindex);
export const decodePodIfKey = (b: Buffer): number => b.readUInt32LE(0);
export const encodePodIfValue = (flags: number): Buffer => u32(flags);
export const decodePodIfValue = (b: Buffer): { flags: number } => ({ flags: b.readUInt32LE(0) });

// ---- if_macs: an interface's own MAC by ifindex (source MAC of rejects and hairpin) ----

export const encodeIfMacKey = (ifindex: number): Buffer => u32(ifindex);
export const decodeIfMacKey = (b: Buffer): number => b.readUInt32LE(0);
export function encodeIfMacValue(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-f]{2}$/i.test(p))) throw new RangeError(`not a MAC address: '${mac}'`);
  const b = Buffer.alloc(8);
  parts.forEach((p, i) => { b[i] = parseInt(p, 16); });
  return b;
}
export const decodeIfMacValue = (b: Buffer): { mac: string } => ({ mac: [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':') });

// ---- snat_skip: SNAT ports the node uses, bit (port & 63) of word port >> 6 ----

export const SNAT_SKIP_WORDS = 65536 / 64;
/** The snat_skip words for a set of ports. */
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
export function decodeStatsValue(b: Buffer): SvcStats {
  const s: SvcStats = { packets: 0n, bytes: 0n, newFlows: 0n };
  for (let o = 0; o + 24 <= b.length; o += 24) {
    s.packets += b.readBigUInt64LE(o);
    s.bytes += b.readBigUInt64LE(o + 8);
    s.newFlows += b.readBigUInt64LE(o + 16);
  }
  return s;
}
/** Zeroed per-CPU value (to reset a reused svc_id's counters). */
export const encodeStatsValue = (cpus: number): Buffer => Buffer.alloc(24 * cpus);
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
export function encodeFragKey(k: FragKey): Buffer {
  const b = Buffer.alloc(12);
  encodeAddr(k.saddr).copy(b, 0, 12, 16);
  encodeAddr(k.daddr).copy(b, 4, 12, 16);
  b.writeUInt16BE(k.id, 8);
  b[10] = PROTO_NUM[k.proto];
  return b;
}
export function decodeFragKey(b: Buffer): FragKey {
  return { saddr: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, daddr: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, id: b.readUInt16BE(8), proto: protoName(b[10]) };
}
export const decodeFragValue = (b: Buffer): { sport: number; dport: number } => ({ sport: b.readUInt16BE(0), dport: b.readUInt16BE(2) });
export function encodeFragValue(v: { sport: number; dport: number }): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(v.sport, 0);
  b.writeUInt16BE(v.dport, 2);
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
}

/** flow_cache entries per CPU (XLB_FLOW_CACHE_SIZE in bpf/xlb_maps.h) */
export const DEFAULT_FLOW_CACHE_SIZE = 8192;

/** A new nonzero flow cache generation, different from `prev`. */
export function nextFlowCacheGen(prev = 0): number {
  let g = 0;
  while (g === 0 || g === prev) g = randomInt(1, 0xffffffff);
  return g;
}

export const DEFAULT_CONFIG: XlbConfig = {
  flags: CONFIG_FLAG.redirect,
  nodePortMin: 30000, nodePortMax: 32767,
  maglevM: MAGLEV_DEFAULT_M, ctLimit: 100_000, hashSeed: 0x9e3779b9,
  tcpSynTimeout: 60, tcpEstTimeout: 21600, tcpFinTimeout: 30, tcpCloseTimeout: 10, udpTimeout: 120,
  snatPortMin: 1024, snatPortMax: 65535,
  snatAddr: null, hairpinAddr: '169.254.42.1',
  flowCacheGen: 1, flowCacheMask: DEFAULT_FLOW_CACHE_SIZE - 1,
  udpNewTimeout: 30, sockFlags: 0, netnsCookie: 0,
};

export const encodeConfigKey = (): Buffer => u32(0);
export function encodeConfig(c: XlbConfig): Buffer {
  if (c.nodePortMin > c.nodePortMax || c.snatPortMin > c.snatPortMax) throw new RangeError('config: port range min > max');
  if (c.maglevM < 1) throw new RangeError('config: maglevM must be >= 1');
  const cacheSize = c.flowCacheMask + 1;
  if (!Number.isInteger(cacheSize) || cacheSize < 1 || (cacheSize & c.flowCacheMask) !== 0) throw new RangeError('config: flowCacheMask + 1 must be a power of two');
  const b = Buffer.alloc(104);
  b.writeUInt32LE(c.flags, 0);
  b.writeUInt16LE(c.nodePortMin, 4);
  b.writeUInt16LE(c.nodePortMax, 6);
  b.writeUInt32LE(c.maglevM, 8);
  b.writeUInt32LE(c.ctLimit, 12);
  b.writeUInt32LE(c.hashSeed >>> 0, 16);
  [c.tcpSynTimeout, c.tcpEstTimeout, c.tcpFinTimeout, c.tcpCloseTimeout, c.udpTimeout].forEach((t, i) => b.writeUInt32LE(t, 20 + 4 * i));
  b.writeUInt16LE(c.snatPortMin, 40);
  b.writeUInt16LE(c.snatPortMax, 42);
  encodeAddr(c.snatAddr, b, 44);
  encodeAddr(c.hairpinAddr, b, 60);
  b.writeUInt32LE(c.flowCacheGen >>> 0, 76);
  b.writeUInt32LE(c.flowCacheMask >>> 0, 80);
  b.writeUInt32LE(c.udpNewTimeout, 84);
  b.writeUInt32LE(c.sockFlags >>> 0, 88);
  b.writeBigUInt64LE(BigInt(c.netnsCookie), 96);
  return b;
}
export function decodeConfig(b: Buffer): XlbConfig {
  return {
    flags: b.readUInt32LE(0), nodePortMin: b.readUInt16LE(4), nodePortMax: b.readUInt16LE(6),
    maglevM: b.readUInt32LE(8), ctLimit: b.readUInt32LE(12), hashSeed: b.readUInt32LE(16),
    tcpSynTimeout: b.readUInt32LE(20), tcpEstTimeout: b.readUInt32LE(24), tcpFinTimeout: b.readUInt32LE(28),
    tcpCloseTimeout: b.readUInt32LE(32), udpTimeout: b.readUInt32LE(36),
    snatPortMin: b.readUInt16LE(40), snatPortMax: b.readUInt16LE(42),
    snatAddr: decodeAddr(b, 44), hairpinAddr: decodeAddr(b, 60),
    flowCacheGen: b.readUInt32LE(76), flowCacheMask: b.readUInt32LE(80), udpNewTimeout: b.readUInt32LE(84),
    sockFlags: b.readUInt32LE(88), netnsCookie: Number(b.readBigUInt64LE(96)),
  };
}

// ---- the datapath's flow hash (Maglev index = flowHash % maglevM) ----

function mix(h: number): number {
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
/** Mirrors lb_flow_hash() in bpf/include/lb.h (addresses/ports as the CPU loads them: little-endian reads of network bytes). */
export function flowHash(t: { saddr: string; daddr: string; sport: number; dport: number; proto: Proto }, seed: number): number {
  const le = (a: string) => encodeAddr(a).readUInt32LE(12);
  const sw = (p: number) => ((p & 0xff) << 8) | (p >>> 8);
  let h = seed >>> 0;
  h = mix(h ^ le(t.saddr));
  h = mix(h ^ le(t.daddr));
  h = mix(h ^ ((((sw(t.sport) << 16) | sw(t.dport)) >>> 0)));
  return mix(h ^ PROTO_NUM[t.proto]);
}

// ---- sock_rev (socket LB: per-socket reverse and forward entries) ----

export const SOCK_DIR = ['reverse', 'forward'] as const;
export interface SockKey { cookie: string; addr: string | null; port: number; proto: Proto; dir: (typeof SOCK_DIR)[number] }
export function decodeSockKey(b: Buffer): SockKey {
  return { cookie: b.readBigUInt64LE(0).toString(), addr: decodeAddr(b, 8), port: b.readUInt16BE(24), proto: protoName(b[26]), dir: SOCK_DIR[b[27]] ?? 'reverse' };
}
export function decodeSockValue(b: Buffer): { addr: string | null; port: number; svcId: number; backendId: number } {
  return { addr: decodeAddr(b, 0), port: b.readUInt16BE(16), svcId: b.readUInt32LE(20), backendId: b.readUInt32LE(24) };
}
