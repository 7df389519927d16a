// Row format and runner for datapath fixtures: each row is a description, map setup, the
// packets sent before it (to establish a flow), the input packet, the expected verdict, the
// expected output fields/bytes, and the expected map side effects. Every row also checks
// that IPv4 output carries valid IP and L4 checksums and that no drop reason it did not
// name was counted.
import assert from 'node:assert/strict';
import type * as C from '../../src/datapath/codecs.js';
import { parsePacket, type Parsed } from '../helpers/packet.js';
import { TC, XDP, type Datapath } from './harness.js';

/** tchost: xlb_tc_host, at tc egress of a pod's host-side veth (replies the node sends). */
export type Prog = 'xdp' | 'tc' | 'tcdev' | 'tchost';
export type Verdict = 'PASS' | 'DROP' | 'TX' | 'REDIRECT' | 'OK' | 'SHOT' | 'TC_REDIRECT';
const CODE: Record<Verdict, number> = {
  PASS: XDP.PASS, DROP: XDP.DROP, TX: XDP.TX, REDIRECT: XDP.REDIRECT, OK: TC.OK, SHOT: TC.SHOT, TC_REDIRECT: TC.REDIRECT,
};

export interface OutExpect {
  src?: string; dst?: string; sport?: number; dport?: number; ttl?: number; len?: number;
  tcpFlags?: string; seq?: number; ack?: number;
  srcMac?: string; dstMac?: string;
  icmpType?: number; icmpCode?: number;
  /** UDP checksum field (0 = none) */
  udpCsum?: number;
}

/** A packet sent before the row's own (pkt may read state, e.g. a chosen SNAT port), or a
 *  map change between packets (act). */
export interface Step { prog?: Prog; pkt?: Buffer | ((d: Datapath) => Buffer); verdict?: Verdict; act?: (d: Datapath) => void; ingress?: number }

export interface Row {
  name: string;
  prog: Prog;
  setup?: (d: Datapath) => void;
  before?: Step[];
  pkt: Buffer | ((d: Datapath) => Buffer);
  verdict: Verdict;
  /** output bytes equal to the input */
  unchanged?: boolean;
  out?: OutExpect;
  check?: (o: Parsed, d: Datapath, raw: Buffer) => void;
  /** exact drop counters after the row; unnamed reasons must be 0 */
  drops?: Partial<Record<C.DropKey, number>>;
  /** CT entries: value fields to match, or null when the entry must be absent */
  ct?: Array<{ key: C.CtKey; value: Partial<C.CtValue> | null }>;
  stats?: { svcId: number; packets?: number; newFlows?: number; bytes?: number };
  config?: Partial<C.XlbConfig>;
  /** XDP / tc device: ingress ifindex for BPF_PROG_TEST_RUN (FIB lookups need a real device) */
  ingress?: number | ((d: Datapath) => number);
  /** run as the IPv6 twin of the row as written (twin.ts) */
  v6?: boolean;
}

/** struct xdp_md for test runs: data 0, data_end len, ingress_ifindex. */
export function xdpCtx(len: number, ifindex: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(len, 4);
  b.writeUInt32LE(ifindex, 12);
  return b;
}

/** struct __sk_buff for tc test runs: the receiving device (ifindex; FIB lookups use it). */
export function skbCtx(ifindex: number): Buffer {
  const b = Buffer.alloc(192); // sizeof(struct __sk_buff)
  b.writeUInt32LE(ifindex, 40);
  return b;
}

function ctxOf(prog: Prog, len: number, ifindex: number): Buffer | undefined {
  if (prog === 'xdp') return xdpCtx(len, ifindex);
  return prog === 'tcdev' || prog === 'tc' ? skbCtx(ifindex) : undefined;
}

function ctxFor(d: Datapath, row: Row, prog: Prog, pkt: Buffer): Buffer | undefined {
  if (row.ingress === undefined) return undefined;
  return ctxOf(prog, pkt.length, typeof row.ingress === 'function' ? row.ingress(d) : row.ingress);
}

const XDP_VERDICTS: Verdict[] = ['PASS', 'DROP', 'TX', 'REDIRECT'];
function code(prog: Prog, v: number): string {
  const names = prog === 'xdp' ? XDP_VERDICTS : (['OK', 'SHOT', 'TC_REDIRECT'] as Verdict[]);
  return names.find((k) => CODE[k] === v) ?? `${prog} code ${v}`;
}

export function checkChecksums(o: Parsed, where: string): void {
  if (!o.ip) return;
  assert.equal(o.ip.csumOk, true, `${where}: IPv4 header checksum`);
  for (const l4 of [o.tcp, o.udp]) if (l4) assert.notEqual(l4.csumOk, false, `${where}: L4 checksum`);
  if (o.icmp) assert.equal(o.icmp.csumOk, true, `${where}: ICMP checksum`);
  if (o.icmp?.inner) assert.equal(o.icmp.inner.ip.csumOk, true, `${where}: quoted IPv4 header checksum`);
}

function checkOut(o: Parsed, e: OutExpect): void {
  const l4 = o.tcp ?? o.udp;
  const got: Record<string, unknown> = {
    src: o.ip?.src, dst: o.ip?.dst, sport: l4?.sport, dport: l4?.dport, ttl: o.ip?.ttl, len: o.len,
    tcpFlags: o.tcp?.flags, seq: o.tcp?.seq, ack: o.tcp?.ack, srcMac: o.srcMac, dstMac: o.dstMac,
    icmpType: o.icmp?.type, icmpCode: o.icmp?.code, udpCsum: o.udp?.csum,
  };
  for (const [k, v] of Object.entries(e)) assert.deepEqual(got[k], v, `output ${k}`);
}

export function runRow(d: Datapath, row: Row): void {
  d.v6 = !!row.v6;
  d.reset(row.config);
  row.setup?.(d);
  for (const [i, s] of (row.before ?? []).entries()) {
    s.act?.(d);
    if (!s.pkt) continue;
    const pkt = typeof s.pkt === 'function' ? s.pkt(d) : s.pkt;
    const prog = s.prog ?? row.prog;
    const r = d.run(prog, pkt, s.ingress !== undefined ? ctxOf(prog, pkt.length, s.ingress) : ctxFor(d, row, prog, pkt));
    if (s.verdict) assert.equal(code(s.prog ?? row.prog, r.retval), s.verdict, `before[${i}] verdict`);
    checkChecksums(parsePacket(r.data), `before[${i}]`);
  }
  const input = typeof row.pkt === 'function' ? row.pkt(d) : row.pkt;
  const r = d.run(row.prog, input, ctxFor(d, row, row.prog, input));
  assert.equal(code(row.prog, r.retval), row.verdict, 'verdict');
  if (row.unchanged) assert.deepEqual(r.data, input, 'output bytes must equal the input');
  const o = parsePacket(r.data);
  if (!(row.prog === 'xdp' ? r.retval === XDP.DROP : r.retval === TC.SHOT)) checkChecksums(o, 'output');
  if (row.out) checkOut(o, row.out);
  row.check?.(o, d, r.data);
  const drops = d.drops();
  for (const [k, v] of Object.entries(drops)) assert.equal(v, (row.drops as Record<string, number> | undefined)?.[k] ?? 0, `drop counter ${k}`);
  for (const c of row.ct ?? []) {
    const got = d.ct(c.key);
    if (c.value === null) {
      assert.equal(got, null, `CT entry ${JSON.stringify(c.key)} must be absent`);
      continue;
    }
    assert.ok(got, `CT entry ${JSON.stringify(c.key)} missing; have ${JSON.stringify(d.ctEntries().map(([k]) => k))}`);
    for (const [k, v] of Object.entries(c.value)) assert.deepEqual((got as unknown as Record<string, unknown>)[k], v, `CT ${k}`);
  }
  if (row.stats) {
    const s = d.stats(row.stats.svcId);
    if (row.stats.packets !== undefined) assert.equal(Number(s.packets), row.stats.packets, 'stats.packets');
    if (row.stats.newFlows !== undefined) assert.equal(Number(s.newFlows), row.stats.newFlows, 'stats.new_flows');
    if (row.stats.bytes !== undefined) assert.equal(Number(s.bytes), row.stats.bytes, 'stats.bytes');
  }
}
