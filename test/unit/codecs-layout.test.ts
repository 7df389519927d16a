// The codecs write and read exactly the members LAYOUT declares (the table verifyLayout checks
// against the object's BTF at start), so that check covers every byte the agent writes.
// Each struct is encoded with distinct values per member and read back here by LAYOUT offsets
// and sizes, independently of the codecs' decoders; bytes outside every member must be zero.
// Decoders are fed buffers built by LAYOUT offsets with garbage in the bytes between members.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctFlowId } from '../../src/datapath/ctgc.js';
import * as C from '../../src/datapath/codecs.js';

const le32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const le16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
const be16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const le64 = (n: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigUInt64LE(n); return b; };
const u8 = (n: number): Buffer => Buffer.from([n]);
const v4 = (a: string): Buffer => Buffer.from(a.split('.').map(Number));
/** ::ffff:a.b.c.d, as struct xlb_addr holds an IPv4 address */
const mapped = (a: string): Buffer => Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), v4(a)]);

interface Row {
  struct: C.StructName;
  /** bytes of every member LAYOUT declares, by member name */
  bytes: Record<string, Buffer>;
  encode?: () => Buffer;
  /** decoder and what it must return for `bytes` */
  decode?: [(b: Buffer) => unknown, unknown];
}

const ct = { saddr: '10.0.0.7', daddr: '10.96.0.10', sport: 40001, dport: 53, proto: 'UDP' as const };
const ctValue: C.CtValue = {
  natAddr: '10.96.0.11', origAddr: '10.0.0.8', natPort: 8053, origPort: 40002, backendId: 0x0a0b0c,
  svcId: 0x0d0e, state: 'fin', flags: 0x1b, lastSeen: 0x0102030405060708n, created: 0x1112131415161718n,
};
const config: C.XlbConfig = {
  flags: 6, nodePortMin: 30000, nodePortMax: 32767, maglevM: 16381, ctLimit: 100_000, hashSeed: 0x9e3779b9,
  tcpSynTimeout: 60, tcpEstTimeout: 21600, tcpFinTimeout: 29, tcpCloseTimeout: 10, udpTimeout: 120,
  snatPortMin: 1024, snatPortMax: 65000, snatAddr: '10.0.0.2', hairpinAddr: '169.254.42.1',
  flowCacheGen: 0xabcdef01, flowCacheMask: 8191, udpNewTimeout: 31, sockFlags: 1, netnsCookie: 4097, carryUntil: 0x12345678,
  snatAddr6: '2001:db8::2', hairpinAddr6: '100::42:1',
};
/** 2001:db8::N */
const v6 = (n: number): Buffer => Buffer.concat([Buffer.from([0x20, 0x01, 0x0d, 0xb8]), Buffer.alloc(10), Buffer.from([n >> 8, n & 0xff])]);

const ROWS: Row[] = [
  {
    struct: 'xlb_addr', bytes: { w: mapped('10.1.2.3') },
    encode: () => C.encodeAddr('10.1.2.3'), decode: [(b) => C.decodeAddr(b), '10.1.2.3'],
  },
  {
    struct: 'xlb_svc_key', bytes: { addr: mapped('10.96.0.10'), port: be16(53), proto: u8(17), scope: u8(1) },
    encode: () => C.encodeSvcKey({ addr: '10.96.0.10', port: 53, proto: 'UDP', scope: 'internal' }),
    decode: [C.decodeSvcKey, { addr: '10.96.0.10', port: 53, proto: 'UDP', scope: 'internal' }],
  },
  {
    struct: 'xlb_svc_value', bytes: { svc_id: le32(11), count: le32(22), flags: le32(5), affinity_timeout: le32(10800) },
    encode: () => C.encodeSvcValue({ svcId: 11, count: 22, flags: 5, affinityTimeout: 10800 }),
    decode: [C.decodeSvcValue, { svcId: 11, count: 22, flags: 5, affinityTimeout: 10800 }],
  },
  {
    struct: 'xlb_backend', bytes: { addr: mapped('10.244.1.5'), port: be16(8080), state: u8(2), flags: u8(1) },
    encode: () => C.encodeBackendValue({ addr: '10.244.1.5', port: 8080, state: 'draining', local: true }),
    decode: [C.decodeBackendValue, { addr: '10.244.1.5', port: 8080, state: 'draining', local: true }],
  },
  {
    struct: 'xlb_slot_key', bytes: { svc_id: le32(3), slot: le32(9) },
    encode: () => C.encodeSlotKey({ svcId: 3, slot: 9 }), decode: [C.decodeSlotKey, { svcId: 3, slot: 9 }],
  },
  {
    struct: 'xlb_revnat', bytes: { addr: mapped('10.96.0.1'), port: be16(443) },
    encode: () => C.encodeRevnatValue({ addr: '10.96.0.1', port: 443 }),
    decode: [C.decodeRevnatValue, { addr: '10.96.0.1', port: 443 }],
  },
  {
    struct: 'xlb_ct_key',
    bytes: { saddr: mapped(ct.saddr), daddr: mapped(ct.daddr), sport: be16(ct.sport), dport: be16(ct.dport), proto: u8(17) },
    encode: () => C.encodeCtKey(ct), decode: [C.decodeCtKey, ct],
  },
  {
    struct: 'xlb_ct_value',
    bytes: {
      nat_addr: mapped('10.96.0.11'), orig_addr: mapped('10.0.0.8'), nat_port: be16(8053), orig_port: be16(40002),
      backend_id: le32(0x0a0b0c), svc_id: le32(0x0d0e), state: u8(2), flags: u8(0x1b),
      last_seen: le64(0x0102030405060708n), created: le64(0x1112131415161718n),
    },
    encode: () => C.encodeCtValue(ctValue), decode: [C.decodeCtValue, ctValue],
  },
  {
    struct: 'xlb_ct_fill', bytes: { count: le64(0x1122334455n) },
    encode: () => C.encodeCtFillValue(0x1122334455n), decode: [C.decodeCtFillValue, 0x1122334455n],
  },
  {
    struct: 'xlb_affinity_key', bytes: { svc_id: le32(12), client: mapped('192.0.2.9') },
    encode: () => C.encodeAffinityKey({ svcId: 12, client: '192.0.2.9' }),
    decode: [C.decodeAffinityKey, { svcId: 12, client: '192.0.2.9' }],
  },
  {
    struct: 'xlb_affinity_value', bytes: { backend_id: le32(13), last_used: le64(0x2122232425262728n) },
    encode: () => C.encodeAffinityValue({ backendId: 13, lastUsed: 0x2122232425262728n }),
    decode: [C.decodeAffinityValue, { backendId: 13, lastUsed: 0x2122232425262728n }],
  },
  {
    struct: 'xlb_src_range_key', bytes: { prefixlen: le32(128 + 16), svc_id: le32(77), addr: mapped('192.168.0.0') },
    encode: () => C.encodeSrcRangeKey({ svcId: 77, cidr: '192.168.0.0/16' }),
    decode: [C.decodeSrcRangeKey, { svcId: 77, cidr: '192.168.0.0/16' }],
  },
  {
    // IPv6: 32 + the prefix length over all 128 bits, host bits cleared
    struct: 'xlb_src_range_key', bytes: { prefixlen: le32(32 + 32), svc_id: le32(77), addr: Buffer.concat([Buffer.from([0x20, 0x01, 0x0d, 0xb8]), Buffer.alloc(12)]) },
    encode: () => C.encodeSrcRangeKey({ svcId: 77, cidr: '2001:db8::ff/32' }),
    decode: [C.decodeSrcRangeKey, { svcId: 77, cidr: '2001:db8::/32' }],
  },
  {
    struct: 'xlb_node_addr_value', bytes: { flags: le32(C.NODE_ADDR_FLAG.broadcast) },
    encode: () => C.encodeNodeAddrValue(C.NODE_ADDR_FLAG.broadcast), decode: [C.decodeNodeAddrValue, { flags: 1 }],
  },
  {
    struct: 'xlb_pod_if_value', bytes: { flags: le32(C.POD_IF_FLAG.peer) },
    encode: () => C.encodePodIfValue(C.POD_IF_FLAG.peer), decode: [C.decodePodIfValue, { flags: 1 }],
  },
  {
    struct: 'xlb_announce_value', bytes: { ifindex: le32(7), flags: le32(C.ANNOUNCE_FLAG.arp), expires: le64(0x0102030405060708n) },
    encode: () => C.encodeAnnounceValue({ ifindex: 7, flags: C.ANNOUNCE_FLAG.arp, expires: 0x0102030405060708n }),
    decode: [C.decodeAnnounceValue, { ifindex: 7, flags: 1, expires: 0x0102030405060708n }],
  },
  {
    struct: 'xlb_if_mac', bytes: { mac: Buffer.from([2, 0x11, 0x22, 0x33, 0x44, 0x55]) },
    encode: () => C.encodeIfMacValue('02:11:22:33:44:55'), decode: [C.decodeIfMacValue, { mac: '02:11:22:33:44:55' }],
  },
  {
    // per-CPU: one CPU's copy (24 bytes, already a multiple of 8)
    struct: 'xlb_svc_stats', bytes: { packets: le64(3n), bytes: le64(4000n), new_flows: le64(2n) },
    decode: [C.decodeStatsValue, { packets: 3n, bytes: 4000n, newFlows: 2n }],
  },
  {
    // IPv4: the 16-bit id in the first two bytes of the 32-bit field
    struct: 'xlb_frag_key', bytes: { saddr: mapped('10.0.0.7'), daddr: mapped('10.96.0.10'), id: Buffer.from([0x43, 0x21, 0, 0]), proto: u8(17) },
    encode: () => C.encodeFragKey({ saddr: '10.0.0.7', daddr: '10.96.0.10', id: 0x4321, proto: 'UDP' }),
    decode: [C.decodeFragKey, { saddr: '10.0.0.7', daddr: '10.96.0.10', id: 0x4321, proto: 'UDP' }],
  },
  {
    // IPv6: the fragment header's 32-bit id
    struct: 'xlb_frag_key', bytes: { saddr: v6(7), daddr: v6(10), id: Buffer.from([0x87, 0x65, 0x43, 0x21]), proto: u8(17) },
    encode: () => C.encodeFragKey({ saddr: '2001:db8::7', daddr: '2001:db8::a', id: 0x87654321, proto: 'UDP' }),
    decode: [C.decodeFragKey, { saddr: '2001:db8::7', daddr: '2001:db8::a', id: 0x87654321, proto: 'UDP' }],
  },
  {
    struct: 'xlb_frag_value', bytes: { sport: be16(40001), dport: be16(53) },
    encode: () => C.encodeFragValue({ sport: 40001, dport: 53 }), decode: [C.decodeFragValue, { sport: 40001, dport: 53 }],
  },
  {
    struct: 'xlb_sock_key',
    bytes: { cookie: le64(0x3132333435n), addr: mapped('10.244.1.5'), port: be16(8080), proto: u8(6), dir: u8(1) },
    decode: [C.decodeSockKey, { cookie: String(0x3132333435n), addr: '10.244.1.5', port: 8080, proto: 'TCP', dir: 'forward' }],
  },
  {
    struct: 'xlb_sock_value', bytes: { addr: mapped('10.96.0.10'), port: be16(80), svc_id: le32(14), backend_id: le32(15) },
    decode: [C.decodeSockValue, { addr: '10.96.0.10', port: 80, svcId: 14, backendId: 15 }],
  },
  {
    struct: 'xlb_config',
    bytes: {
      flags: le32(6), nodeport_min: le16(30000), nodeport_max: le16(32767), maglev_m: le32(16381), ct_limit: le32(100_000),
      hash_seed: le32(0x9e3779b9), tcp_syn_timeout: le32(60), tcp_est_timeout: le32(21600), tcp_fin_timeout: le32(29),
      tcp_close_timeout: le32(10), udp_timeout: le32(120), snat_port_min: le16(1024), snat_port_max: le16(65000),
      snat_addr: mapped('10.0.0.2'), hairpin_addr: mapped('169.254.42.1'), flow_cache_gen: le32(0xabcdef01),
      flow_cache_mask: le32(8191), udp_new_timeout: le32(31), sock_flags: le32(1), carry_until: le32(0x12345678), netns_cookie: le64(4097n),
      snat_addr6: v6(2), hairpin_addr6: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 0, 1]),
    },
    encode: () => C.encodeConfig(config), decode: [C.decodeConfig, config],
  },
];

/** Byte ranges of the struct's declared members. */
function spans(name: C.StructName): { member: string; off: number; size: number }[] {
  const l: C.StructLayout = C.LAYOUT[name];
  return Object.keys(l.members).map((member) => ({ member, off: l.members[member], size: l.sizes[member] }));
}

test('LAYOUT: members lie inside their struct and do not overlap', () => {
  for (const name of Object.keys(C.LAYOUT) as C.StructName[]) {
    const used = new Set<number>();
    for (const { member, off, size } of spans(name)) {
      assert.ok(size > 0 && off + size <= C.LAYOUT[name].size, `${name}.${member} ends past the struct`);
      for (let i = off; i < off + size; i++) {
        assert.ok(!used.has(i), `${name}.${member} overlaps another member at byte ${i}`);
        used.add(i);
      }
    }
  }
});

test('every LAYOUT struct has a row here, with distinct nonzero bytes for every member', () => {
  // (a struct with a second family's row appears twice)
  assert.deepEqual([...new Set(ROWS.map((r) => r.struct))].sort(), Object.keys(C.LAYOUT).sort());
  for (const r of ROWS) {
    assert.deepEqual(Object.keys(r.bytes).sort(), Object.keys(C.LAYOUT[r.struct].members).sort(), r.struct);
    const seen = new Set<string>();
    for (const { member, size } of spans(r.struct)) {
      const b = r.bytes[member];
      assert.equal(b.length, size, `${r.struct}.${member}: test bytes are not the member's size`);
      assert.ok(b.some((x) => x !== 0), `${r.struct}.${member}: an all-zero value cannot show where it was written`);
      assert.ok(!seen.has(b.toString('hex')), `${r.struct}.${member}: value not distinct from another member's`);
      seen.add(b.toString('hex'));
    }
  }
});

test('encoders write every member at its LAYOUT offset and nothing outside the members', () => {
  for (const r of ROWS) {
    if (!r.encode) continue;
    const buf = r.encode();
    assert.equal(buf.length, C.LAYOUT[r.struct].size, `${r.struct}: encoded size`);
    const covered = new Set<number>();
    for (const { member, off, size } of spans(r.struct)) {
      assert.deepEqual(buf.subarray(off, off + size), r.bytes[member], `${r.struct}.${member} at offset ${off}`);
      for (let i = off; i < off + size; i++) covered.add(i);
    }
    for (let i = 0; i < buf.length; i++) {
      if (!covered.has(i)) assert.equal(buf[i], 0, `${r.struct}: byte ${i} lies in no LAYOUT member but was written`);
    }
  }
});

test('decoders read every member at its LAYOUT offset and nothing outside the members', () => {
  for (const r of ROWS) {
    if (!r.decode) continue;
    const buf = Buffer.alloc(C.LAYOUT[r.struct].size, 0xa5); // garbage where no member is
    for (const { member, off } of spans(r.struct)) r.bytes[member].copy(buf, off);
    const [decode, want] = r.decode;
    assert.deepEqual(decode(buf), want, r.struct);
  }
});

test('a reply ct entry names the flow of its forward entry (LAYOUT offsets); another tuple names another flow', () => {
  const id = (k: C.CtKey, v: Partial<C.CtValue>): string => ctFlowId(C.encodeCtKey(k), 0, C.encodeCtValue({ ...ctValue, ...v }), 0);
  const fwd = { saddr: '192.0.2.9', daddr: '10.96.0.10', sport: 40000, dport: 80, proto: 'TCP' as const };
  const reply = { saddr: '10.244.1.5', daddr: '10.0.0.2', sport: 8080, dport: 61000, proto: 'TCP' as const };
  const replyValue = { natAddr: '10.96.0.10', natPort: 80, origAddr: '192.0.2.9', origPort: 40000, flags: C.CT_FLAG.reply };
  assert.equal(id(reply, replyValue), id(fwd, { flags: 0 }));
  assert.notEqual(id(reply, { ...replyValue, origPort: 40001 }), id(fwd, { flags: 0 }));
  assert.notEqual(id(reply, replyValue), id({ ...fwd, proto: 'UDP' }, { flags: 0 }));
  assert.notEqual(id(reply, { ...replyValue, flags: 0 }), id(fwd, { flags: 0 }), 'a forward entry is named by its own key');
});

test('verifyLayout names a member whose offset or size differs from BTF', () => {
  const btf = (edit?: { struct: string; member: string; offset?: number; size?: number }) => ({
    btfStruct: (name: string) => {
      const l: C.StructLayout = C.LAYOUT[name as C.StructName];
      return {
        name, size: l.size,
        members: Object.keys(l.members).map((m) => {
          const e: { offset?: number; size?: number } = edit && edit.struct === name && edit.member === m ? edit : {};
          return { name: m, offset: e.offset ?? l.members[m], size: e.size ?? l.sizes[m] };
        }),
      };
    },
  });
  C.verifyLayout(btf());
  assert.throws(() => C.verifyLayout(btf({ struct: 'xlb_backend', member: 'port', size: 4 })), /xlb_backend\.port is 4 bytes in BTF, codecs expect 2/);
  assert.throws(() => C.verifyLayout(btf({ struct: 'xlb_config', member: 'netns_cookie', offset: 92 })), /xlb_config\.netns_cookie is at offset 92/);
});
