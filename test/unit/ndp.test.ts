// Neighbour discovery frames (src/datapath/ndp.ts): the takeover news the agent sends, byte for
// byte where neighbours read it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_NODES, ALL_NODES_MAC, NA_FLAG, ND_TYPE, ndFrame, parseNd, takeoverFrame, unsolicitedNa } from '../../src/datapath/ndp.js';
import { ARP_OP, parseArp } from '../../src/datapath/arp.js';

const MAC = '02:00:00:00:00:07';
const ADDR = '2001:db8:18::200';

test('unsolicited neighbour advertisement: to all nodes from the address, Override (not Solicited), target option with the MAC, hop limit 255, checksum right', () => {
  const f = unsolicitedNa(MAC, ADDR);
  assert.equal(f.length, 86);
  assert.deepEqual(parseNd(f), {
    dstMac: ALL_NODES_MAC, srcMac: MAC, src: ADDR, dst: ALL_NODES, hopLimit: 255, type: ND_TYPE.advertisement, code: 0,
    flags: NA_FLAG.override, target: ADDR, lladdr: MAC, checksumOk: true,
  });
  // RFC 4861 4.4: type 136, code 0, O bit, then the target; option type 2 (target link-layer), length 1
  assert.equal(f.subarray(54, 62).toString('hex'), '8800' + f.subarray(56, 58).toString('hex') + '20000000');
  assert.equal(f.subarray(78, 86).toString('hex'), '0201020000000007');
});

test('a frame whose bytes changed fails the checksum check; a non-ND frame parses as null', () => {
  const f = unsolicitedNa(MAC, ADDR);
  f[70] ^= 1;
  assert.equal(parseNd(f)?.checksumOk, false);
  assert.equal(parseNd(Buffer.alloc(90)), null);
});

test('takeover news: gratuitous ARP for IPv4, unsolicited NA for IPv6', () => {
  assert.equal(parseArp(takeoverFrame(MAC, '198.18.0.200'))?.op, ARP_OP.request);
  assert.equal(parseNd(takeoverFrame(MAC, ADDR))?.type, ND_TYPE.advertisement);
});

test('ndFrame refuses an IPv4 address where IPv6 belongs', () => {
  assert.throws(() => ndFrame({ dstMac: MAC, srcMac: MAC, src: '192.0.2.1', dst: ALL_NODES, hopLimit: 255, type: 135, code: 0, flags: 0, target: ADDR, lladdr: null }), /not an IPv6 address/);
});
