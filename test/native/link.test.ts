// XDP and tcx links on a veth pair inside namespaces this test creates. Attaching acts on
// the caller's netns, so child.js does it under `ip netns exec`; pinned maps on a bpffs of
// the test's own let this process read the counters after the child has exited.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BpfMap, Link, ifIndex, type BpfMap as Map } from '../../src/datapath/bpf.js';
import { NetnsSet, sweepStale, type Netns } from '../helpers/netns.js';
import { objPath, privateBpffs, runChild, sendUdp, sumPercpu, u32, vethPair, type StepResult } from './util.js';

const SLOT_XDP = 0, SLOT_XDP_V2 = 1, SLOT_TC_IN = 2, SLOT_TC_EG = 3;
const A_ADDR = '10.199.7.1', B_ADDR = '10.199.7.2';
const PACKETS = 20;

const set = new NetnsSet('nlink');
let a: Netns, b: Netns;
let fs: { path: string; cleanup: () => Promise<void> };
let counters: Map;
const prog = objPath('t_prog');

before(async () => {
  await sweepStale('nlink');
  ({ a, b } = await vethPair(set, A_ADDR, B_ADDR));
  fs = await privateBpffs(set.prefix);
});

after(async () => {
  counters?.close();
  await set.teardown();
  await fs?.cleanup();
});

function ok(r: StepResult | undefined): any {
  assert.ok(r, 'child printed no result');
  assert.equal(r.error, undefined, r.error?.message);
  return r.ok;
}

function count(slot: number): bigint {
  return sumPercpu(counters.lookup(u32(slot)));
}

test('XDP (native) and tc ingress/egress attached in a namespace count real packets', async () => {
  const maps = `${fs.path}/maps`;
  const common = { obj: prog, pinPath: maps, ifname: 'vb' } as const;
  const r = await runChild(b, [
    { op: 'attach', ...common, prog: 'xdp_count', kind: 'xdp', mode: 'native', linkPin: `${fs.path}/xdp` },
    { op: 'attach', ...common, prog: 'tc_ingress', kind: 'tc-ingress', linkPin: `${fs.path}/tc_in` },
    { op: 'attach', ...common, prog: 'tc_egress', kind: 'tc-egress', linkPin: `${fs.path}/tc_eg` },
  ]);
  const [xdp, tcIn, tcEg] = r.map(ok);
  assert.equal(xdp.mode, 'native');
  assert.equal(xdp.kind, 'xdp');
  assert.equal(xdp.progId, xdp.progIdOfProgram);
  assert.equal(tcIn.kind, 'tc-ingress');
  assert.equal(tcEg.kind, 'tc-egress');

  counters = BpfMap.openPinned(`${maps}/counters`);
  const before = [SLOT_XDP, SLOT_TC_IN, SLOT_TC_EG].map(count);
  await sendUdp(a, B_ADDR, PACKETS);
  const [dx, di, de] = [SLOT_XDP, SLOT_TC_IN, SLOT_TC_EG].map((s, i) => count(s) - before[i]);
  assert.ok(dx >= PACKETS, `xdp counted ${dx}`);
  assert.ok(di >= PACKETS, `tc ingress counted ${di}`);
  assert.ok(de >= 1n, `tc egress counted ${de} (ARP/ICMP replies)`);
});

test('pinned links stay attached after the attaching process exited; listAttached shows them', async () => {
  const [list] = (await runChild(b, [{ op: 'list', ifname: 'vb' }])).map(ok);
  const xdp = Link.openPinned(`${fs.path}/xdp`);
  const tcIn = Link.openPinned(`${fs.path}/tc_in`);
  try {
    assert.equal(xdp.kind, 'xdp');
    assert.equal(xdp.mode, undefined, 'the mode is only known inside the namespace');
    assert.equal(tcIn.kind, 'tc-ingress');
    assert.equal(list.xdp.length, 1);
    assert.deepEqual(list.xdp[0], { progId: xdp.progId(), mode: 'native', linkId: xdp.id });
    assert.deepEqual(list.tcIngress, [{ progId: tcIn.progId(), linkId: tcIn.id }]);
    assert.equal(list.tcEgress.length, 1);
    assert.equal(list.ifindex, xdp.ifindex);
  } finally {
    xdp.close();
    tcIn.close();
  }
  const before = count(SLOT_XDP);
  await sendUdp(a, B_ADDR, 5);
  assert.ok(count(SLOT_XDP) - before >= 5n, 'still counting with no process holding the link');
});

test('link update swaps the program atomically and counting continues', async () => {
  const [u] = (await runChild(b, [
    { op: 'update', obj: prog, pinPath: `${fs.path}/maps`, prog: 'xdp_count_v2', linkPin: `${fs.path}/xdp` },
  ])).map(ok);
  assert.notEqual(u.after, u.before);
  assert.equal(u.after, u.progIdOfProgram);
  const b0 = count(SLOT_XDP), b1 = count(SLOT_XDP_V2);
  await sendUdp(a, B_ADDR, PACKETS);
  assert.ok(count(SLOT_XDP) - b0 >= PACKETS, 'the shared counter keeps counting');
  assert.ok(count(SLOT_XDP_V2) - b1 >= PACKETS, 'the new program runs');
});

test('testRunLive pushes frames through the XDP path of the interface', async () => {
  // Broadcast frame with a local-experimental EtherType: no stack handler, so it goes nowhere.
  const frame = 'ffffffffffff02000000000188b5' + '00'.repeat(50);
  const before = count(SLOT_XDP);
  const [live] = (await runChild(b, [
    { op: 'live', obj: prog, pinPath: `${fs.path}/maps`, prog: 'xdp_count', ifname: 'vb', repeat: 100, frame },
  ])).map(ok);
  assert.equal(typeof live.durationNs, 'number');
  assert.ok(count(SLOT_XDP) - before >= 100n);
});

test('generic XDP when asked for explicitly', async () => {
  const maps = `${fs.path}/maps_a`;
  const [att, list] = (await runChild(a, [
    { op: 'attach', obj: prog, pinPath: maps, ifname: 'va', prog: 'xdp_count', kind: 'xdp', mode: 'generic', linkPin: `${fs.path}/xdp_a` },
    { op: 'list', ifname: 'va' },
  ])).map(ok);
  assert.equal(att.mode, 'generic');
  assert.deepEqual(list.xdp, [{ progId: att.progId, mode: 'generic', linkId: att.linkId }]);
  const ca = BpfMap.openPinned(`${maps}/counters`);
  try {
    const before = sumPercpu(ca.lookup(u32(SLOT_XDP)));
    await sendUdp(b, A_ADDR, 5);
    assert.ok(sumPercpu(ca.lookup(u32(SLOT_XDP))) - before >= 5n);
  } finally {
    ca.close();
  }
});

test("auto mode falls back to generic where native XDP is unsupported (lo); native-only fails", async () => {
  const common = { obj: prog, pinPath: `${fs.path}/maps_lo`, ifname: 'lo', prog: 'xdp_count', kind: 'xdp' } as const;
  const [native, auto] = await runChild(a, [
    { op: 'attach', ...common, mode: 'native' },
    { op: 'attach', ...common, mode: 'auto', linkPin: `${fs.path}/xdp_lo` },
  ]);
  assert.equal(native.error?.code, 'EOPNOTSUPP', JSON.stringify(native));
  assert.match(native.error?.message ?? '', /lo/);
  assert.equal(ok(auto).mode, 'generic');
  ok((await runChild(a, [{ op: 'detach', linkPin: `${fs.path}/xdp_lo`, unpin: true }]))[0]);
});

test('detach removes pinned links; listAttached is empty afterwards', async () => {
  const r = (await runChild(b, [
    { op: 'detach', linkPin: `${fs.path}/xdp`, unpin: true },
    { op: 'detach', linkPin: `${fs.path}/tc_in`, unpin: true },
    { op: 'detach', linkPin: `${fs.path}/tc_eg`, unpin: true },
    { op: 'list', ifname: 'vb' },
  ])).map(ok);
  assert.deepEqual(r[3], { ifindex: r[3].ifindex, xdp: [], tcIngress: [], tcEgress: [] });
  const before = count(SLOT_XDP);
  await sendUdp(a, B_ADDR, 5);
  assert.equal(count(SLOT_XDP), before, 'nothing counts after detach');
  ok((await runChild(a, [{ op: 'detach', linkPin: `${fs.path}/xdp_a`, unpin: true }]))[0]);
});

test('error: unknown interface is ENODEV naming it', async () => {
  const r = await runChild(b, [
    { op: 'attach', obj: prog, pinPath: `${fs.path}/maps`, ifname: 'nope0', prog: 'xdp_count', kind: 'xdp' },
    { op: 'attach', obj: prog, pinPath: `${fs.path}/maps`, ifname: 'nope0', prog: 'tc_ingress', kind: 'tc-ingress' },
    { op: 'list', ifname: 'nope0' },
  ]);
  for (const x of r) {
    assert.equal(x.error?.code, 'ENODEV');
    assert.equal(x.error?.target, 'nope0');
  }
  assert.throws(() => ifIndex('xlbt-nope0'), { code: 'ENODEV', target: 'xlbt-nope0' });
});

test('error: wrong program type for the hook and a map pin opened as a link are EINVAL', async () => {
  const r = await runChild(b, [
    { op: 'attach', obj: prog, pinPath: `${fs.path}/maps`, ifname: 'vb', prog: 'xdp_count', kind: 'tc-ingress' },
    { op: 'attach', obj: prog, pinPath: `${fs.path}/maps`, ifname: 'vb', prog: 'tc_ingress', kind: 'xdp' },
  ]);
  assert.equal(r[0].error?.code, 'EINVAL');
  assert.match(r[0].error?.message ?? '', /not a tc/);
  assert.equal(r[1].error?.code, 'EINVAL');
  assert.match(r[1].error?.message ?? '', /not an XDP program/);
  assert.throws(() => Link.openPinned(`${fs.path}/maps/counters`), { code: 'EINVAL' });
});
