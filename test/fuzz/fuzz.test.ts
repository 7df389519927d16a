// The datapath fuzzer in CI: 100,000 generated packets through the four packet programs with every
// invariant checked (test/fuzz/fuzz.ts), the same generation in IPv6 (50,000 packets, converted
// by test/bpf/twin.ts), and proof that each invariant fires on a bad outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPacket, parsePacket } from '../helpers/packet.js';
import { CLIENT, LB_IP, POD_A, TC, XDP } from '../bpf/harness.js';
import { checkOutcome, runFuzz } from './fuzz.js';

const SEED = Number(process.env.XLB_FUZZ_SEED ?? 20261204);

test('the invariants catch each kind of bad outcome', () => {
  const inPkt = buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport: 40000, dport: 80, flags: 'S' });
  const i = parsePacket(inPkt);
  const good = buildPacket({ src: CLIENT, dst: POD_A, proto: 'TCP', sport: 40000, dport: 8080, flags: 'S' });
  const o = parsePacket(good);
  assert.equal(checkOutcome('xdp', i, XDP.PASS, o, false, { dropDelta: 0 }), null, 'a DNAT to a backend is fine');
  assert.match(checkOutcome('xdp', i, 0, o, false, {})!, /verdict 0 is not one xdp may return/);
  assert.match(checkOutcome('tc', i, 9, o, false, {})!, /verdict 9/);
  assert.match(checkOutcome('xdp', i, XDP.DROP, i, true, { dropDelta: 2 })!, /counted 2 times/);
  assert.match(checkOutcome('xdp', i, XDP.DROP, i, true, { dropDelta: 0 })!, /counted 0 times/);
  assert.match(checkOutcome('xdp', i, XDP.PASS, i, true, { dropDelta: 1 })!, /counted for a packet that went on/);
  const elsewhere = parsePacket(buildPacket({ src: CLIENT, dst: '192.0.2.99', proto: 'TCP', sport: 40000, dport: 8080, flags: 'S' }));
  assert.match(checkOutcome('xdp', i, XDP.PASS, elsewhere, false, { ctOrig: () => null })!, /rewritten destination 192\.0\.2\.99/);
  const broken = Buffer.from(good);
  broken[14 + 10] ^= 0xff; // IP checksum
  assert.match(checkOutcome('xdp', i, XDP.PASS, parsePacket(broken), false, {})!, /IP checksum broken/);
  const badL4 = Buffer.from(good);
  badL4[14 + 20 + 16] ^= 0xff; // TCP checksum
  assert.match(checkOutcome('tcdev', i, TC.OK, parsePacket(badL4), false, {})!, /L4 checksum broken/);
  assert.match(checkOutcome('xdp', i, XDP.PASS, o, false, { ctBackends: () => [7], backendOk: () => false })!, /backend 7, which does not exist/);
});

test(`100,000 fuzzed packets through xlb_xdp, xlb_tc_dev, xlb_tc and xlb_tc_host break no invariant (seed ${SEED})`, async () => {
  const r = await runFuzz({ packets: 100_000, seed: SEED });
  const report = r.failures.map((f) => `seed ${f.seed} packet ${f.index} ${f.prog} (${f.kind}): ${f.problem}\n  ${f.hex}`).join('\n');
  assert.equal(r.failures.length, 0, report);
  assert.equal(r.packets, 100_000);
  // Every generator ran and every program gave more than one verdict: the run exercised the datapath.
  for (const k of ['client->frontend', 'pod->frontend', 'local reply', 'SNAT reply', 'fragment', 'ICMP error', 'VLAN', 'mutated', 'random bytes']) {
    assert.ok((r.kinds[k] ?? 0) > 1000, `${k}: ${r.kinds[k]}`);
  }
  for (const p of ['xdp', 'tcdev', 'tc']) assert.ok(Object.keys(r.verdicts).filter((v) => v.startsWith(`${p}:`)).length >= 3, JSON.stringify(r.verdicts));
  // the egress (two verdicts at most) took its share: local replies, ICMP errors, random bytes
  assert.ok(Object.entries(r.verdicts).filter(([v]) => v.startsWith('tchost:')).reduce((a, [, n]) => a + n, 0) > 1000, JSON.stringify(r.verdicts));
});

test(`50,000 fuzzed packets in IPv6 (twins of the generated IPv4 ones) break no invariant (seed ${SEED})`, async () => {
  const r = await runFuzz({ packets: 50_000, seed: SEED, ipv6: true });
  const report = r.failures.map((f) => `seed ${f.seed} packet ${f.index} ${f.prog} (${f.kind}): ${f.problem}\n  ${f.hex}`).join('\n');
  assert.equal(r.failures.length, 0, report);
  for (const k of ['client->frontend', 'pod->frontend', 'local reply', 'SNAT reply', 'fragment', 'ICMP error', 'mutated']) {
    assert.ok((r.kinds[k] ?? 0) > 1000, `${k}: ${r.kinds[k]}`);
  }
  // most generated frames have an IPv6 twin: the run is an IPv6 run
  assert.ok((r.kinds['no IPv6 twin'] ?? 0) < 50_000 / 4, `no IPv6 twin: ${r.kinds['no IPv6 twin']}`);
  for (const p of ['xdp', 'tcdev', 'tc']) assert.ok(Object.keys(r.verdicts).filter((v) => v.startsWith(`${p}:`)).length >= 3, JSON.stringify(r.verdicts));
  // the egress (two verdicts at most) took its share: local replies, ICMP errors, random bytes
  assert.ok(Object.entries(r.verdicts).filter(([v]) => v.startsWith('tchost:')).reduce((a, [, n]) => a + n, 0) > 1000, JSON.stringify(r.verdicts));
});
