// IPv6 in the map codecs (issue 15): struct xlb_addr holds an IPv6 address as itself and an
// IPv4 one v4-mapped; an IPv6 NodePort has its own wildcard key; IPv6 source ranges are LPM
// keys of 32 (svc_id) + the prefix length over the full 128-bit address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';

const hex = (b: Buffer, off = 0, len = 16): string => b.subarray(off, off + len).toString('hex');
const SK = C.LAYOUT.xlb_svc_key.members;
const SR = C.LAYOUT.xlb_src_range_key.members;

test('an IPv6 address is stored as its 16 bytes and read back in canonical form', () => {
  assert.equal(hex(C.encodeAddr('FD00:10:96:0:0:0:0:A')), 'fd00001000960000000000000000000a');
  assert.equal(C.decodeAddr(C.encodeAddr('fd00:10:96:0:0:0:0:a')), 'fd00:10:96::a');
  assert.equal(C.decodeAddr(C.encodeAddr('2001:db8::1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(hex(C.encodeAddr('10.1.2.3')), '00000000000000000000ffff0a010203', 'IPv4 stays v4-mapped');
  assert.throws(() => C.encodeAddr('fd00::g'), /not an IP address: 'fd00::g'/);
});

test('NodePort keys: IPv4 keeps the all-zero address, IPv6 has the all-ones one; both read back', () => {
  const k4: C.SvcKey = { addr: null, port: 30080, proto: 'TCP', scope: 'external' };
  const k6: C.SvcKey = { ...k4, family: 6 };
  assert.equal(hex(C.encodeSvcKey(k4), SK.addr), '0'.repeat(32));
  assert.equal(hex(C.encodeSvcKey(k6), SK.addr), 'f'.repeat(32));
  assert.deepEqual(C.decodeSvcKey(C.encodeSvcKey(k4)), k4);
  assert.deepEqual(C.decodeSvcKey(C.encodeSvcKey(k6)), k6);
  const exact: C.SvcKey = { addr: 'fd00:10:96::a', port: 80, proto: 'UDP', scope: 'internal' };
  assert.deepEqual(C.decodeSvcKey(C.encodeSvcKey(exact)), exact);
  assert.deepEqual(C.decodeRevnatValue(C.encodeRevnatValue({ addr: null, port: 30080, family: 6 })), { addr: null, port: 30080, family: 6 });
});

test('IPv6 source ranges: prefixlen 32 + length over 128 bits, host bits masked; IPv4 unchanged', () => {
  const k6 = C.encodeSrcRangeKey({ svcId: 7, cidr: '2001:db8:c::ff/48' });
  assert.equal(k6.readUInt32LE(SR.prefixlen), 32 + 48);
  assert.equal(hex(k6, SR.addr), '20010db8000c00000000000000000000');
  assert.deepEqual(C.decodeSrcRangeKey(k6), { svcId: 7, cidr: '2001:db8:c::/48' });
  assert.deepEqual(C.decodeSrcRangeKey(C.encodeSrcRangeKey({ svcId: 7, cidr: '::/0' })), { svcId: 7, cidr: '::/0' });
  const k4 = C.encodeSrcRangeKey({ svcId: 7, cidr: '192.0.2.9/24' });
  assert.equal(k4.readUInt32LE(SR.prefixlen), 32 + 96 + 24);
  assert.deepEqual(C.decodeSrcRangeKey(k4), { svcId: 7, cidr: '192.0.2.0/24' });
  assert.throws(() => C.encodeSrcRangeKey({ svcId: 7, cidr: '2001:db8::/129' }), /bad CIDR/);
});
