// IPv6 twins of IPv4 fixture rows, without copying rows: a twin runs the IPv4 row as written,
// with the Datapath in IPv6 mode (harness.ts): every IPv4 address the row gives (map setup, CT
// keys, config) becomes its twin in 2001:db8:2001:f247::/96 (to6), every packet is converted
// to IPv6 on its way in (frame4to6) and back on its way out (frame6to4), so the row's own
// expectations (verdict, addresses, ports, checksums, CT entries, drops) hold for IPv6. The
// prefix is chosen so an address folds (addr_fold in bpf/include/addr.h) to the IPv4 address
// it stands for: flow hashes, hence Maglev picks and flow cache slots, are the IPv4 row's.
// Conversions keep every checksum's validity (a valid one stays valid, a broken one broken):
// TCP/UDP sums move by the pseudo-header change, ICMP(v6) sums are computed anew.
import { checksum, ip6String, ipBytes, ipString, onesSum, pseudoSum } from '../helpers/packet.js';
import type { Row } from './rows.js';

const PREFIX = Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0x20, 0x01, 0xf2, 0x47, 0, 0, 0, 0]);

/** The IPv6 twin of an IPv4 address (IPv6 addresses stay). */
export function to6(a: string): string {
  return a.includes(':') ? a : ip6String(Buffer.concat([PREFIX, ipBytes(a)]));
}
/** The IPv4 address an IPv6 twin stands for (other addresses stay). */
export function from6(a: string): string {
  if (!a.includes(':')) return a;
  const b = ipBytes(a);
  return b.subarray(0, 12).equals(PREFIX) ? ipString(b.subarray(12)) : a;
}
/** a.b.c.d/len -> its twin /96+len */
export function cidr6(c: string): string {
  const [a, len] = c.split('/');
  return `${to6(a)}/${96 + Number(len ?? 32)}`;
}

// ICMP <-> ICMPv6 (type, code) pairs used by the fixtures; echo, port/host/net unreachable,
// fragmentation needed <-> Packet Too Big, time exceeded, administratively prohibited.
const ICMP_4TO6: Array<[[number, number | null], [number, number | null]]> = [
  [[8, null], [128, null]], [[0, null], [129, null]], [[3, 4], [2, 0]], [[3, 3], [1, 4]], [[3, 0], [1, 0]],
  [[3, 1], [1, 3]], [[3, 13], [1, 1]], [[11, null], [3, null]],
];
function icmpMap(type: number, code: number, v6: boolean): [number, number] {
  for (const [a, b] of ICMP_4TO6) {
    const [from, to] = v6 ? [b, a] : [a, b];
    if (from[0] === type && (from[1] === null || from[1] === code)) return [to[0], to[1] ?? code];
  }
  throw new Error(`no IPv6 twin for ICMP type ${type} code ${code}`);
}

/** The checksum at off moved from the from-addresses' pseudo header to the to-addresses'. */
function moveSum(l4: Buffer, off: number, from: Buffer, to: Buffer, udp: boolean): void {
  if (l4.length < off + 2) return;
  const old = l4.readUInt16BE(off);
  if (udp && old === 0) return;
  let s = (~old & 0xffff) + (~onesSum(from) & 0xffff) + onesSum(to);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const v = ~s & 0xffff;
  l4.writeUInt16BE(udp && v === 0 ? 0xffff : v, off);
}

/** TCP/UDP checksums follow the addresses; the ICMP body's type, quote and sum are converted. */
function convertL4(l4: Buffer, proto: number, from: Buffer, to: Buffer, v6: boolean, whole: boolean): Buffer {
  if (proto === 6) moveSum(l4, 16, from, to, false);
  if (proto === 17) moveSum(l4, 6, from, to, true);
  if ((proto !== 1 && proto !== 58) || l4.length < 8) return l4;
  const wasOk = whole && checksum(l4, v6 ? pseudoSum(from.subarray(0, 16), from.subarray(16), 58, l4.length) : 0) === 0;
  const [type, code] = icmpMap(l4[0], l4[1], v6);
  const out = Buffer.from(l4.subarray(0, 8));
  out[0] = type;
  out[1] = code;
  if (!v6 && l4[0] === 3 && l4[1] === 4) out.writeUInt32BE(l4.readUInt16BE(6), 4); // next-hop MTU -> PTB MTU
  if (v6 && l4[0] === 2) out.writeUInt32BE(l4.readUInt32BE(4) & 0xffff, 4);
  const isError = v6 ? [1, 2, 3].includes(l4[0]) : [3, 11].includes(l4[0]);
  const body = isError ? quote(l4.subarray(8), v6) : l4.subarray(8);
  const msg = Buffer.concat([out, body]);
  msg.writeUInt16BE(0, 2);
  const to16 = to.length === 32;
  const sum = checksum(msg, to16 ? pseudoSum(to.subarray(0, 16), to.subarray(16), 58, msg.length) : 0);
  msg.writeUInt16BE(wasOk ? sum : sum ^ 1, 2);
  return msg;
}

/** A quoted header and its 8 bytes, to the other family (its length field says the original). */
function quote(q: Buffer, v6: boolean): Buffer {
  if (q.length < (v6 ? 40 : 20)) return Buffer.from(q);
  if (!v6) {
    if ((q[0] & 0x0f) !== 5) throw new Error('no IPv6 twin: quoted IPv4 header with options');
    const from = Buffer.concat([q.subarray(12, 16), q.subarray(16, 20)]);
    const to = Buffer.concat([ipBytes(to6(ipString(q.subarray(12)))), ipBytes(to6(ipString(q.subarray(16))))]);
    const h = ip6Header(q[1], q.readUInt16BE(2) - 20, q[9] === 1 ? 58 : q[9], q[8], to);
    return Buffer.concat([h, convertL4(Buffer.from(q.subarray(20)), q[9], from, to, false, false)]);
  }
  const from = Buffer.from(q.subarray(8, 40));
  const to = Buffer.concat([ipBytes(from6(ip6String(q.subarray(8, 24)))), ipBytes(from6(ip6String(q.subarray(24, 40))))]);
  const h = ip4Header(q.readUInt32BE(0) >>> 20 & 0xff, 20 + q.readUInt16BE(4), 0x1234, q[6] === 58 ? 1 : q[6], q[7], to, 0);
  return Buffer.concat([h, convertL4(Buffer.from(q.subarray(40)), q[6], from, to, true, false)]);
}

function ip6Header(tc: number, plen: number, nh: number, hop: number, addrs: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(((6 << 28) | (tc << 20)) >>> 0, 0);
  h.writeUInt16BE(plen, 4);
  h[6] = nh;
  h[7] = hop;
  addrs.copy(h, 8);
  return h;
}
function ip4Header(tos: number, tot: number, id: number, proto: number, ttl: number, addrs: Buffer, fo: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[1] = tos;
  h.writeUInt16BE(tot, 2);
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(fo, 6);
  h[8] = ttl;
  h[9] = proto;
  addrs.copy(h, 12);
  h.writeUInt16BE(checksum(h), 10);
  return h;
}

/** An IPv4 frame's IPv6 twin (other frames as they are). Throws for what has no twin. */
export function frame4to6(b: Buffer): Buffer {
  if (b.length < 14 || b.readUInt16BE(12) !== 0x0800) return Buffer.from(b);
  const ip = b.subarray(14);
  if (ip.length < 20 || ip[0] !== 0x45) throw new Error('no IPv6 twin: IPv4 header with options, or malformed');
  const tot = ip.readUInt16BE(2);
  if (tot < 20 || tot > ip.length) throw new Error('no IPv6 twin: IPv4 total length out of the frame');
  const fo = ip.readUInt16BE(6);
  const frag = (fo & 0x3fff) !== 0;
  const from = Buffer.from(ip.subarray(12, 20));
  const to = Buffer.concat([ipBytes(to6(ipString(ip.subarray(12)))), ipBytes(to6(ipString(ip.subarray(16))))]);
  const proto6 = ip[9] === 1 ? 58 : ip[9];
  let l4: Buffer = Buffer.from(ip.subarray(20, tot));
  if ((fo & 0x1fff) === 0) l4 = convertL4(l4, ip[9], from, to, false, !frag);
  const fh = Buffer.alloc(frag ? 8 : 0);
  if (frag) {
    fh[0] = proto6;
    fh.writeUInt16BE(((fo & 0x1fff) << 3) | (fo & 0x2000 ? 1 : 0), 2);
    fh.writeUInt32BE(ip.readUInt16BE(4), 4);
  }
  const h = ip6Header(ip[1], fh.length + l4.length, frag ? 44 : proto6, ip[8], to);
  const e = Buffer.from(b.subarray(0, 14));
  e.writeUInt16BE(0x86dd, 12);
  return Buffer.concat([e, h, fh, l4, ip.subarray(tot)]);
}

/** The IPv4 frame an IPv6 twin stands for (other frames as they are). */
export function frame6to4(b: Buffer): Buffer {
  if (b.length < 54 || b.readUInt16BE(12) !== 0x86dd) return Buffer.from(b);
  const ip = b.subarray(14);
  const end = 40 + ip.readUInt16BE(4);
  let nh = ip[6];
  let off = 40;
  let fo = 0;
  let id = 0x1234;
  if (nh === 44 && ip.length >= 48) {
    const f = ip.readUInt16BE(42);
    fo = (f >> 3) | (f & 1 ? 0x2000 : 0);
    id = ip.readUInt32BE(44) & 0xffff;
    nh = ip[40];
    off = 48;
  }
  const from = Buffer.from(ip.subarray(8, 40));
  const to = Buffer.concat([ipBytes(from6(ip6String(ip.subarray(8, 24)))), ipBytes(from6(ip6String(ip.subarray(24, 40))))]);
  if (to.length !== 8) throw new Error(`IPv6 output with an address that is no twin: ${ip6String(ip.subarray(8, 24))} -> ${ip6String(ip.subarray(24, 40))}`);
  let l4: Buffer = Buffer.from(ip.subarray(off, Math.min(end, ip.length)));
  if ((fo & 0x1fff) === 0) l4 = convertL4(l4, nh, from, to, true, (fo & 0x2000) === 0);
  const h = ip4Header(ip.readUInt32BE(0) >>> 20 & 0xff, 20 + l4.length, id, nh === 58 ? 1 : nh, ip[7], to, fo);
  const e = Buffer.from(b.subarray(0, 14));
  e.writeUInt16BE(0x0800, 12);
  return Buffer.concat([e, h, l4, ip.subarray(end)]);
}

const V4_HEADER = 'the IPv4 header itself (IHL, options, version, total length): v6.fixtures.ts has IPv6 header rows';
const V4_SOURCE = 'an IPv4-only special source; v6.fixtures.ts has the IPv6 ones (::, ::1, multicast, v4-mapped)';
const UDP0 = 'UDP without a checksum is valid only in IPv4: v6.fixtures.ts drops it (bad_csum)';
/** Rows without an IPv6 meaning, by name (tc device rows: the XDP row's name), and why. */
export const NO_TWIN: Record<string, string> = {
  'IPv6 ethertype with IP version 0: bad_ihl drop': 'not an IPv4 row',
  'IPv4 header cut short: truncated drop': V4_HEADER,
  'IHL 4: bad_ihl drop': V4_HEADER,
  'version 6 inside an IPv4 ethertype: bad_ihl drop': V4_HEADER,
  'IHL 15 beyond a short packet: truncated drop': V4_HEADER,
  'total length beyond the frame: truncated drop': V4_HEADER,
  'IPv4 options: translated, options kept, checksums valid': V4_HEADER,
  'no endpoints, packet with IP options: dropped, counted once as reject_failed (no reject)': V4_HEADER,
  'pod packet with IHL 3: bad_ihl drop': V4_HEADER,
  'pod packet with total length beyond the frame: truncated drop': V4_HEADER,
  'pod packet with IP options: translated, checksums valid': V4_HEADER,
  'UDP without checksum: stays zero after DNAT': UDP0,
  'pod UDP without checksum: stays zero (BPF_F_MARK_MANGLED_0)': UDP0,
  'flow cache: UDP without a checksum stays without on the cached path': UDP0,
  'no endpoints, TCP SYN from 0.0.0.0: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, TCP SYN from 0.1.2.3: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, TCP SYN from 127.0.0.1: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, TCP SYN from 224.0.0.1: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, TCP SYN from 239.255.255.250: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, TCP SYN from 240.0.0.1: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, TCP SYN from 255.255.255.255: bad_source drop, no RST': V4_SOURCE,
  'no endpoints, UDP from 224.0.0.1: bad_source drop, no ICMP unreachable': V4_SOURCE,
  'no endpoints, TCP SYN from a node subnet broadcast address: bad_source drop': 'IPv6 has no broadcast address',
  'SYN from 255.255.255.255 to a frontend with endpoints: bad_source drop, no flow': V4_SOURCE,
  'pod -> ClusterIP without endpoints from source 127.0.0.1: bad_source drop, nothing back into the pod': V4_SOURCE,
  'pod -> ClusterIP without endpoints, UDP from 255.255.255.255: bad_source drop': V4_SOURCE,
  'backend with address 0.0.0.0: no_backend drop, never forwarded to it': 'the IPv6 twin of 0.0.0.0 is an ordinary address',
};

const baseName = (n: string): string => n.replace(/ \[tc device\]$/, '');

/** The IPv6 twins of rows, but those NO_TWIN names. Per-service byte counts grow by the 20
 *  bytes an IPv6 header is longer than an IPv4 one. */
export function twins(rows: Row[]): Row[] {
  return rows.filter((r) => !(baseName(r.name) in NO_TWIN)).map((r) => ({
    ...r, name: `${r.name} [IPv6]`, v6: true,
    stats: r.stats && { ...r.stats, bytes: r.stats.bytes === undefined ? undefined : r.stats.bytes + 20 * (r.stats.packets ?? 1) },
  }));
}

/** NO_TWIN names that name no row (a renamed row would silently get a twin again). */
export function unknownNoTwin(rows: Row[]): string[] {
  const names = new Set(rows.map((r) => baseName(r.name)));
  return Object.keys(NO_TWIN).filter((n) => !names.has(n));
}
