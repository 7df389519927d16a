// Packet builder and parser for datapath fixtures: Ethernet / IPv4 (options, fragments) or
// IPv6 (extension headers, fragments; chosen by an IPv6 source address) / TCP / UDP / ICMP or
// ICMPv6 with correct checksums, plus deliberate damage (truncation, bad IHL, wrong lengths).
// The parser reports every field fixtures assert on and whether each checksum verifies.
import { SocketAddress } from 'node:net';

export type L4Proto = 'TCP' | 'UDP' | 'ICMP';
const PROTO: Record<L4Proto, number> = { TCP: 6, UDP: 17, ICMP: 1 };

export interface PacketSpec {
  srcMac?: string;
  dstMac?: string;
  /** default 0x0800 (IPv4) */
  ethType?: number;
  src: string;
  dst: string;
  proto: L4Proto | number;
  ttl?: number;
  id?: number;
  tos?: number;
  /** IPv4 options (padded to 4 bytes) */
  options?: Buffer;
  df?: boolean;
  sport?: number;
  dport?: number;
  /** TCP flags as letters: S, A, F, R, P (e.g. 'SA') */
  flags?: string;
  seq?: number;
  ack?: number;
  payload?: Buffer;
  /** UDP: send checksum 0 ("none") */
  udpNoChecksum?: boolean;
  icmpType?: number;
  icmpCode?: number;
  /** ICMP bytes 4..7 (e.g. next-hop MTU for frag needed) */
  icmpRest?: number;
  /** IPv6: extension headers before the upper-layer header (or the fragment header), in order:
   *  0 hop-by-hop, 43 routing (segLeft: segments left), 60 destination options; len8: the
   *  header's length field (its size is (len8 + 1) * 8 bytes) */
  ext?: Array<{ type: 0 | 43 | 60; len8?: number; segLeft?: number }>;
  /** IPv6: a fragment header (offset in 8-byte units) */
  frag6?: { offset8: number; mf: boolean; id: number };
  /** overrides written after checksums (malformed packets); IPv6: totLen sets 40 + payload length */
  ihl?: number;
  version?: number;
  totLen?: number;
}

export const MAC_A = '02:00:00:00:00:0a';
export const MAC_B = '02:00:00:00:00:0b';

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}
export function macString(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
export const isV6 = (ip: string): boolean => ip.includes(':');
/** 4 bytes (IPv4) or 16 (IPv6). */
export function ipBytes(ip: string): Buffer {
  if (!isV6(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = new SocketAddress({ address: ip, family: 'ipv6' }).address.split('::') as [string, string?];
  // a dotted quad as the last two words (::ffff:a.b.c.d)
  const words = (x?: string) => (x ? x.split(':').flatMap((w) => (w.includes('.') ? [...ipBytes(w)].reduce<number[]>((a, v, i) => (i % 2 ? [...a.slice(0, -1), (a[a.length - 1] << 8) | v] : [...a, v]), []) : [parseInt(w, 16)])) : []);
  const hw = words(head);
  const tw = words(tail);
  const b = Buffer.alloc(16);
  [...hw, ...Array<number>(8 - hw.length - tw.length).fill(0), ...tw].forEach((w, i) => b.writeUInt16BE(w, 2 * i));
  return b;
}
export function ipString(b: Buffer): string {
  return [...b.subarray(0, 4)].join('.');
}
/** An IPv6 address in its RFC 5952 form (as codecs decode them). */
export function ip6String(b: Buffer): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i).toString(16));
  return new SocketAddress({ address: words.join(':'), family: 'ipv6' }).address;
}

/** Ones'-complement sum folded to 16 bits (not inverted). */
export function onesSum(buf: Buffer, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length % 2) s += buf[buf.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
export function checksum(buf: Buffer, init = 0): number {
  return ~onesSum(buf, init) & 0xffff;
}
/** The pseudo header's sum, IPv4 (12 bytes) or IPv6 (40) by the address size. */
export function pseudoSum(src: Buffer, dst: Buffer, proto: number, len: number): number {
  if (src.length === 16) {
    const ph = Buffer.alloc(40);
    src.copy(ph, 0);
    dst.copy(ph, 16);
    ph.writeUInt32BE(len, 32);
    ph[39] = proto;
    return onesSum(ph);
  }
  const ph = Buffer.alloc(12);
  src.copy(ph, 0);
  dst.copy(ph, 4);
  ph[9] = proto;
  ph.writeUInt16BE(len, 10);
  return onesSum(ph);
}

/** Upper-layer protocol number: ICMP is ICMPv6 (58) over IPv6. */
function protoNum(s: PacketSpec): number {
  const n = typeof s.proto === 'number' ? s.proto : PROTO[s.proto];
  return n === 1 && isV6(s.src) ? 58 : n;
}

function tcpFlagBits(f = ''): number {
  const bits: Record<string, number> = { F: 1, S: 2, R: 4, P: 8, A: 16 };
  return [...f].reduce((a, c) => a | (bits[c] ?? 0), 0);
}

/** The L4 segment (header + payload) with its checksum over the whole datagram. */
export function buildL4(s: PacketSpec): Buffer {
  const payload = s.payload ?? Buffer.alloc(0);
  const proto = protoNum(s);
  let seg: Buffer;
  if (proto === 6) {
    seg = Buffer.alloc(20 + payload.length);
    seg.writeUInt16BE(s.sport ?? 40000, 0);
    seg.writeUInt16BE(s.dport ?? 80, 2);
    seg.writeUInt32BE((s.seq ?? 1000) >>> 0, 4);
    seg.writeUInt32BE((s.ack ?? 0) >>> 0, 8);
    seg[12] = 5 << 4;
    seg[13] = tcpFlagBits(s.flags ?? 'S');
    seg.writeUInt16BE(65535, 14);
    payload.copy(seg, 20);
    const sum = checksum(seg, pseudoSum(ipBytes(s.src), ipBytes(s.dst), 6, seg.length));
    seg.writeUInt16BE(sum, 16);
  } else if (proto === 17) {
    seg = Buffer.alloc(8 + payload.length);
    seg.writeUInt16BE(s.sport ?? 40000, 0);
    seg.writeUInt16BE(s.dport ?? 53, 2);
    seg.writeUInt16BE(seg.length, 4);
    payload.copy(seg, 8);
    if (!s.udpNoChecksum) {
      const sum = checksum(seg, pseudoSum(ipBytes(s.src), ipBytes(s.dst), 17, seg.length));
      seg.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
    }
  } else if (proto === 1 || proto === 58) {
    seg = Buffer.alloc(8 + payload.length);
    seg[0] = s.icmpType ?? (proto === 58 ? 128 : 8);
    seg[1] = s.icmpCode ?? 0;
    seg.writeUInt32BE((s.icmpRest ?? 0) >>> 0, 4);
    payload.copy(seg, 8);
    // ICMPv6 covers the pseudo header, ICMP does not
    seg.writeUInt16BE(checksum(seg, proto === 58 ? pseudoSum(ipBytes(s.src), ipBytes(s.dst), 58, seg.length) : 0), 2);
  } else {
    seg = Buffer.from(payload);
  }
  return seg;
}

function ipHeader(s: PacketSpec, payloadLen: number, fragOffset8: number, mf: boolean): Buffer {
  const opts = s.options ?? Buffer.alloc(0);
  const optLen = Math.ceil(opts.length / 4) * 4;
  const h = Buffer.alloc(20 + optLen);
  h[0] = ((s.version ?? 4) << 4) | ((20 + optLen) / 4);
  h[1] = s.tos ?? 0;
  h.writeUInt16BE(h.length + payloadLen, 2);
  h.writeUInt16BE(s.id ?? 0x1234, 4);
  h.writeUInt16BE((s.df ? 0x4000 : 0) | (mf ? 0x2000 : 0) | fragOffset8, 6);
  h[8] = s.ttl ?? 64;
  h[9] = typeof s.proto === 'number' ? s.proto : PROTO[s.proto];
  ipBytes(s.src).copy(h, 12);
  ipBytes(s.dst).copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(checksum(h), 10);
  if (s.ihl !== undefined) h[0] = (h[0] & 0xf0) | s.ihl;
  if (s.totLen !== undefined) h.writeUInt16BE(s.totLen, 2);
  return h;
}

function eth(s: PacketSpec): Buffer {
  const e = Buffer.alloc(14);
  macBytes(s.dstMac ?? MAC_B).copy(e, 0);
  macBytes(s.srcMac ?? MAC_A).copy(e, 6);
  e.writeUInt16BE(s.ethType ?? 0x0800, 12);
  return e;
}

/** IPv6 header, extension headers and (frag) a fragment header, for payloadLen bytes after them. */
function ip6Headers(s: PacketSpec, payloadLen: number, frag?: { offset8: number; mf: boolean; id: number }): Buffer {
  const upper = protoNum(s);
  const kinds = [...(s.ext ?? []).map((e) => e.type as number), ...(frag ? [44] : [])];
  const exts = (s.ext ?? []).map((e, i) => {
    const h = Buffer.alloc(((e.len8 ?? 0) + 1) * 8);
    h[0] = kinds[i + 1] ?? upper;
    h[1] = e.len8 ?? 0;
    if (e.type === 43) { h[2] = 4; h[3] = e.segLeft ?? 0; }
    else { h[2] = 1; h[3] = h.length - 4; } // one PadN option filling the header
    return h;
  });
  if (frag) {
    const f = Buffer.alloc(8);
    f[0] = upper;
    f.writeUInt16BE((frag.offset8 << 3) | (frag.mf ? 1 : 0), 2);
    f.writeUInt32BE(frag.id >>> 0, 4);
    exts.push(f);
  }
  const extBytes = Buffer.concat(exts);
  const h = Buffer.alloc(40);
  h.writeUInt32BE((((s.version ?? 6) << 28) | ((s.tos ?? 0) << 20)) >>> 0, 0);
  h.writeUInt16BE(s.totLen !== undefined ? s.totLen - 40 : extBytes.length + payloadLen, 4);
  h[6] = kinds[0] ?? upper;
  h[7] = s.ttl ?? 64;
  ipBytes(s.src).copy(h, 8);
  ipBytes(s.dst).copy(h, 24);
  return Buffer.concat([h, extBytes]);
}

/** A whole Ethernet frame; IPv6 when the source address is. */
export function buildPacket(s: PacketSpec): Buffer {
  const l4 = buildL4(s);
  if (isV6(s.src)) return Buffer.concat([eth({ ethType: 0x86dd, ...s }), ip6Headers(s, l4.length, s.frag6), l4]);
  return Buffer.concat([eth(s), ipHeader(s, l4.length, 0, false), l4]);
}

/** The datagram split into IPv4 fragments of at most fragBytes payload (multiple of 8). */
export function buildFragments(s: PacketSpec, fragBytes: number): Buffer[] {
  if (fragBytes % 8) throw new RangeError('fragment payload size must be a multiple of 8');
  const l4 = buildL4(s);
  const out: Buffer[] = [];
  for (let off = 0; off < l4.length; off += fragBytes) {
    const part = l4.subarray(off, off + fragBytes);
    const mf = off + fragBytes < l4.length;
    if (isV6(s.src)) {
      const frag = { offset8: off / 8, mf, id: s.id ?? 0x1234 };
      out.push(Buffer.concat([eth({ ethType: 0x86dd, ...s }), ip6Headers(s, part.length, frag), part]));
    } else {
      out.push(Buffer.concat([eth(s), ipHeader(s, part.length, off / 8, mf), part]));
    }
  }
  return out;
}

/** A frame that is not IPv4 (ARP request, or any ethertype with raw bytes). */
export function buildRawFrame(ethType: number, body: Buffer): Buffer {
  return Buffer.concat([eth({ src: '0.0.0.0', dst: '0.0.0.0', proto: 0, ethType }), body]);
}

export interface ParsedIp {
  version: number; ihl: number; totLen: number; id: number; df: boolean; mf: boolean; fragOffset: number;
  ttl: number; proto: number; src: string; dst: string; csumOk: boolean; options: Buffer;
}
export interface ParsedL4 {
  sport: number; dport: number;
  /** TCP only */
  seq?: number; ack?: number; flags?: string;
  /** raw checksum field */
  csum: number;
  /** full checksum verified (null: not verifiable, e.g. a fragment or UDP without checksum) */
  csumOk: boolean | null;
}
export interface ParsedIcmp {
  type: number; code: number; rest: number; csumOk: boolean;
  /** the quoted header of an error */
  inner?: { ip: ParsedIp; sport?: number; dport?: number; l4csum?: number };
}
export interface Parsed {
  dstMac: string; srcMac: string; ethType: number; len: number;
  ip?: ParsedIp; tcp?: ParsedL4; udp?: ParsedL4; icmp?: ParsedIcmp; payload?: Buffer;
}

function parseIp(b: Buffer): ParsedIp | undefined {
  if (b.length >= 1 && b[0] >> 4 === 6) return parseIp6(b);
  if (b.length < 20) return undefined;
  const ihl = (b[0] & 0x0f) * 4;
  const hdr = b.subarray(0, Math.min(ihl, b.length));
  const fo = b.readUInt16BE(6);
  return {
    version: b[0] >> 4, ihl, totLen: b.readUInt16BE(2), id: b.readUInt16BE(4), df: !!(fo & 0x4000), mf: !!(fo & 0x2000),
    fragOffset: (fo & 0x1fff) * 8, ttl: b[8], proto: b[9], src: ipString(b.subarray(12)), dst: ipString(b.subarray(16)),
    csumOk: hdr.length === ihl && checksum(hdr) === 0, options: Buffer.from(b.subarray(20, ihl)),
  };
}

/** IPv6 in ParsedIp's terms: ihl = the header and its extension headers, totLen = 40 +
 *  payload length, proto = the upper-layer header, id/mf/fragOffset from a fragment header,
 *  ttl = hop limit; no header checksum (csumOk true). */
function parseIp6(b: Buffer): ParsedIp | undefined {
  if (b.length < 40) return undefined;
  let nh = b[6];
  let off = 40;
  const frag = { id: 0, mf: false, offset: 0 };
  while ([0, 43, 44, 60].includes(nh) && off + 8 <= b.length) {
    const next = b[off];
    if (nh === 44) {
      const fo = b.readUInt16BE(off + 2);
      Object.assign(frag, { id: b.readUInt32BE(off + 4), mf: !!(fo & 1), offset: fo & 0xfff8 });
      off += 8;
    } else {
      off += (b[off + 1] + 1) * 8;
    }
    nh = next;
  }
  return {
    version: b[0] >> 4, ihl: off, totLen: 40 + b.readUInt16BE(4), id: frag.id, df: false, mf: frag.mf, fragOffset: frag.offset,
    ttl: b[7], proto: nh, src: ip6String(b.subarray(8, 24)), dst: ip6String(b.subarray(24, 40)), csumOk: true, options: Buffer.alloc(0),
  };
}

const ICMP_ERRORS: Record<number, number[]> = { 1: [3, 11], 58: [1, 2, 3] };

function flagLetters(bits: number): string {
  return [['S', 2], ['A', 16], ['F', 1], ['R', 4], ['P', 8]].filter(([, v]) => bits & (v as number)).map(([k]) => k).join('');
}

export function parsePacket(buf: Buffer): Parsed {
  const p: Parsed = { dstMac: macString(buf.subarray(0, 6)), srcMac: macString(buf.subarray(6, 12)), ethType: buf.readUInt16BE(12), len: buf.length };
  if (p.ethType !== 0x0800 && p.ethType !== 0x86dd) return p;
  const ip = parseIp(buf.subarray(14));
  if (!ip) return p;
  p.ip = ip;
  const l4 = buf.subarray(14 + ip.ihl, 14 + ip.totLen);
  const whole = !ip.mf && ip.fragOffset === 0;
  if (ip.fragOffset > 0) {
    p.payload = Buffer.from(l4);
    return p;
  }
  const ps = pseudoSum(ipBytes(ip.src), ipBytes(ip.dst), ip.proto, l4.length);
  if (ip.proto === 6 && l4.length >= 20) {
    p.tcp = {
      sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), seq: l4.readUInt32BE(4), ack: l4.readUInt32BE(8),
      flags: flagLetters(l4[13]), csum: l4.readUInt16BE(16), csumOk: whole ? checksum(l4, ps) === 0 : null,
    };
    p.payload = Buffer.from(l4.subarray((l4[12] >> 4) * 4));
  } else if (ip.proto === 17 && l4.length >= 8) {
    const csum = l4.readUInt16BE(6);
    const ok = csum === 0 ? null : whole ? checksum(l4, ps) === 0 : null;
    p.udp = { sport: l4.readUInt16BE(0), dport: l4.readUInt16BE(2), csum, csumOk: ok };
    p.payload = Buffer.from(l4.subarray(8));
  } else if ((ip.proto === 1 || ip.proto === 58) && l4.length >= 8) {
    p.icmp = { type: l4[0], code: l4[1], rest: l4.readUInt32BE(4), csumOk: checksum(l4, ip.proto === 58 ? ps : 0) === 0 };
    if (ICMP_ERRORS[ip.proto].includes(l4[0])) {
      const iip = parseIp(l4.subarray(8));
      if (iip) {
        const il4 = l4.subarray(8 + iip.ihl);
        p.icmp.inner = { ip: iip };
        if (il4.length >= 4) {
          p.icmp.inner.sport = il4.readUInt16BE(0);
          p.icmp.inner.dport = il4.readUInt16BE(2);
        }
        const co = iip.proto === 6 ? 16 : iip.proto === 17 ? 6 : -1;
        if (co >= 0 && il4.length >= co + 2) p.icmp.inner.l4csum = il4.readUInt16BE(co);
      }
    }
  }
  return p;
}
