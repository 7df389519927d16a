// Address parsing the model relies on for every endpoint: strict canonical IPv4, the canonical
// form of both families, and CIDR membership (endpointAddressProblem's special ranges).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIP, cidrMatcher, inCidr, ipFamily, ipv4ToNumber } from '../../src/model/ip.js';
import { endpointAddressProblem } from '../../src/model/validate.js';

/** The strict dotted quad by its definition: four decimal parts 0-255 without leading zeros. */
function reference(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

test('ipv4ToNumber: canonical dotted quads only, as the definition says, on listed and random strings', () => {
  const listed = ['0.0.0.0', '255.255.255.255', '10.0.0.1', '1.2.3.4', '01.2.3.4', '1.2.3.04', '1.2.3.256', '1.2.3', '1.2.3.4.5',
    '1..3.4', '.1.2.3', '1.2.3.', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4/8', '1.2.3.a', '1000.2.3.4', '', '::1', '1.2.3.-4', '+1.2.3.4', '00.0.0.0'];
  for (const s of listed) assert.equal(ipv4ToNumber(s), reference(s), JSON.stringify(s));
  let seed = 7;
  const next = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  const alphabet = '0123456789.. 0a';
  for (let i = 0; i < 20_000; i++) {
    const s = Array.from({ length: 1 + next(16) }, () => alphabet[next(alphabet.length)]).join('');
    assert.equal(ipv4ToNumber(s), reference(s), JSON.stringify(s));
  }
});

test('canonicalIP and ipFamily: an IPv4 address is its own form, IPv6 is compressed; anything else is null', () => {
  assert.equal(canonicalIP('10.1.2.3'), '10.1.2.3');
  assert.equal(canonicalIP('010.1.2.3'), null);
  assert.equal(canonicalIP('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalIP('::ffff:1.2.3.4'), '::ffff:102:304');
  assert.equal(canonicalIP('nope'), null);
  assert.equal(ipFamily('10.1.2.3'), 4);
  assert.equal(ipFamily('fd00::1'), 6);
  assert.equal(ipFamily('1.2.3.256'), null);
});

test('cidrMatcher and inCidr: the first range holding the address, by family; prefix lengths 0 to full', () => {
  const m = cidrMatcher(['10.0.0.0/8', 'bad', '10.1.0.0/16', '0.0.0.0/0', 'fd00::/8', '192.0.2.7/32', '::/0']);
  assert.equal(m('10.1.2.3'), 0);
  assert.equal(m('11.1.2.3'), 3);
  assert.equal(m('192.0.2.7'), 3);
  assert.equal(m('fd12::1'), 4);
  assert.equal(m('2001:db8::1'), 6);
  assert.equal(m('not an address'), -1);
  assert.equal(inCidr('192.0.2.7', '192.0.2.7/32'), true);
  assert.equal(inCidr('192.0.2.8', '192.0.2.7/32'), false);
  assert.equal(inCidr('255.255.255.255', '128.0.0.0/1'), true);
  assert.equal(inCidr('127.255.255.255', '128.0.0.0/1'), false);
  assert.equal(inCidr('10.1.2.3', 'fd00::/8'), false);
  assert.equal(inCidr('10.1.2.3', '10.1.2.3'), false, 'a malformed CIDR holds nothing');
});

test('endpointAddressProblem: the addresses no pod holds are refused by name, pod addresses pass', () => {
  assert.equal(endpointAddressProblem('10.244.1.5'), null);
  assert.equal(endpointAddressProblem('fd00:10:244::5'), null);
  assert.match(endpointAddressProblem('127.0.0.1')!, /loopback \(127\.0\.0\.0\/8\)/);
  assert.match(endpointAddressProblem('169.254.10.1')!, /link-local/);
  assert.match(endpointAddressProblem('224.1.1.1')!, /multicast \(224\.0\.0\.0\/4\)/);
  assert.match(endpointAddressProblem('239.255.255.255')!, /multicast/);
  assert.equal(endpointAddressProblem('240.0.0.1'), null);
  assert.match(endpointAddressProblem('255.255.255.255')!, /broadcast/);
  assert.match(endpointAddressProblem('0.1.2.3')!, /unspecified/);
  assert.match(endpointAddressProblem('::1')!, /loopback/);
  assert.match(endpointAddressProblem('fe80::1')!, /link-local/);
  assert.match(endpointAddressProblem('ff02::1')!, /multicast/);
  assert.match(endpointAddressProblem('::ffff:10.1.2.3')!, /IPv4-mapped/);
  assert.equal(endpointAddressProblem('10.1.2'), 'is not an IP address');
});
