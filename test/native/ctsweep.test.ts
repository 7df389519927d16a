// The conntrack sweep in the kernel (bpf/ct_sweep.c, KernelCtSweep) against the JS sweep
// (sweepConntrack) on the same tables: same entries left, same flows released, same live
// backends and SNAT ports; and the cases it leaves to the JS sweep.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { loadObject, type BpfMap, type BpfObject, type LoadOptions } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { KernelCtSweep, sweepConntrack, sweepLayout, type SweepResult } from '../../src/datapath/ctgc.js';
import { bpffsDir, objPath } from './util.js';

const SIZES: LoadOptions['maxEntries'] = { backends: 4096, ct: 16384 };
let seq = 0;

async function datapath(t: TestContext): Promise<{ obj: BpfObject; pin: string }> {
  const dir = bpffsDir(`ctsw${seq++}`);
  const obj = await loadObject(objPath('xlb'), { pinPath: dir.path, maxEntries: SIZES });
  t.after(() => { obj.close(); dir.cleanup(); });
  return { obj, pin: dir.path };
}

async function kernelSweep(t: TestContext, obj: BpfObject, pin: string): Promise<KernelCtSweep> {
  const k = await KernelCtSweep.open(objPath('ct_sweep'), { pinPath: pin, maxEntries: SIZES });
  t.after(() => k.close());
  return k;
}

const cfg: C.XlbConfig = { ...C.DEFAULT_CONFIG, tcpEstTimeout: 300, tcpFinTimeout: 10, tcpCloseTimeout: 10, udpTimeout: 30 };
const NOW = 5_000_000_000_000n;
const SEC = 1_000_000_000n;

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Table { keys: Buffer[]; values: Buffer[]; backends: Map<number, C.BackendValue> }

/**
 * Flows of every kind: both families, TCP and UDP states, SNAT or not, each half live, idle,
 * retired (last_seen 0) or missing, and reply entries of another flow on a retired flow's tuple.
 * Backends 1..nBackends are in the backends map; ids above it only with `missing`.
 */
function makeTable(seed: number, flows: number, missing: boolean): Table {
  const r = rng(seed);
  const keys: Buffer[] = [], values: Buffer[] = [];
  const backends = new Map<number, C.BackendValue>();
  const NB = 40;
  for (let i = 1; i <= NB; i++) backends.set(i, { addr: i % 3 ? `10.244.1.${i}` : `fd00:244::${i}`, port: 8080, state: 'active', local: false });
  const age = (): bigint | null => {
    const x = r();
    if (x < 0.12) return null;            // missing (evicted, retired)
    if (x < 0.45) return NOW - 400n * SEC; // idle past every timeout
    if (x < 0.5) return 0n;               // retired by ct_retire
    if (x < 0.55) return NOW + SEC;       // stamped after the pass began
    return NOW - BigInt(Math.floor(r() * 40)) * SEC; // 0..39 s: live or not by state
  };
  for (let n = 0; n < flows; n++) {
    let bid = 1 + Math.floor(r() * NB);
    if (missing && r() < 0.1) bid = NB + 1 + Math.floor(r() * 5);
    const be = backends.get(bid) ?? { addr: bid % 3 ? `10.244.9.${bid}` : `fd00:999::${bid}`, port: 8080, state: 'active' as const, local: false };
    const v6 = be.addr.includes(':');
    const client = v6 ? `fd00:10::${(n >> 8) & 255}:${n & 255}` : `10.0.${(n >> 8) & 255}.${n & 255}`;
    const fe = v6 ? 'fd00:96::10' : '10.96.0.10';
    const node = v6 ? 'fd00:1::10' : '192.0.2.10';
    const tcp = r() < 0.7;
    const state: C.CtStateName = tcp ? (['established', 'fin', 'closed', 'syn', 'syn_recv'] as const)[Math.floor(r() * 5)]! : (r() < 0.5 ? 'udp' : 'udp_new');
    const proto = tcp ? 'TCP' : 'UDP';
    const snat = r() < 0.4;
    const sport = 20000 + (n % 30000), snatPort = 40000 + (n % 20000);
    const base = { svcId: 7, backendId: bid, state, created: 1n };
    const fwd = age(), rep = age();
    if (fwd !== null) {
      keys.push(C.encodeCtKey({ saddr: client, daddr: fe, sport, dport: 80, proto }));
      values.push(C.encodeCtValue({ ...base, natAddr: snat ? node : be.addr, origAddr: fe, natPort: snat ? snatPort : 8080, origPort: 80,
        flags: snat ? C.CT_FLAG.snat : 0, lastSeen: fwd }));
    }
    if (rep !== null) {
      // now and then the reply tuple belongs to another client (its SNAT port taken since)
      const other = r() < 0.05;
      keys.push(C.encodeCtKey({ saddr: be.addr, daddr: snat ? node : client, sport: 8080, dport: snat ? snatPort : sport, proto }));
      values.push(C.encodeCtValue({ ...base, natAddr: fe, origAddr: other ? (v6 ? 'fd00:11::1' : '10.1.0.1') : client, natPort: 80, origPort: sport,
        flags: C.CT_FLAG.reply | (snat ? C.CT_FLAG.snat : 0), lastSeen: rep }));
    }
  }
  return { keys, values, backends };
}

function fill(obj: BpfObject, tb: Table): void {
  const ct = obj.map(C.MAP.ct);
  tb.keys.forEach((k, i) => ct.update(k, tb.values[i]!));
  const bm = obj.map(C.MAP.backends);
  for (const [id, v] of tb.backends) bm.update(C.encodeBackendKey(id), C.encodeBackendValue(v));
  const ctFill = obj.map(C.MAP.ctFill);
  ctFill.update(C.encodeCtFillKey(0), C.encodeCtFillValue(1_000_000n));
  ctFill.update(C.encodeCtFillKey(1), C.encodeCtFillValue(0n));
}

const left = (ct: BpfMap): string[] => ct.keys().map((k) => k.toString('hex')).sort();
const credited = (obj: BpfObject): bigint => C.decodeCtFillValue(obj.map(C.MAP.ctFill).lookup(C.encodeCtFillKey(1))!);
const norm = (r: SweepResult): object => ({ ...r, liveBackends: [...r.liveBackends].sort((a, b) => a - b) });

for (const [name, missing] of [['every backend known', false], ['some backends reaped (the JS sweep finishes)', true]] as const) {
  test(`the kernel sweep leaves, releases and reports what the JS sweep does: ${name}`, async (t) => {
    for (const seed of [1, 2, 3]) {
      const a = await datapath(t), b = await datapath(t);
      const tb = makeTable(seed, 3000, missing);
      fill(a.obj, tb);
      fill(b.obj, tb);
      const k = await kernelSweep(t, b.obj, b.pin);
      const js = await sweepConntrack(a.obj.map(C.MAP.ct), a.obj.map(C.MAP.ctFill), cfg, NOW);
      const kr = await k.sweep(b.obj.map(C.MAP.ct), b.obj.map(C.MAP.ctFill), cfg, NOW);
      assert.ok(js.expired > 500 && js.entries > 500, `seed ${seed}: a table with both kinds (${js.expired} expired, ${js.entries} live)`);
      assert.deepEqual(left(b.obj.map(C.MAP.ct)), left(a.obj.map(C.MAP.ct)), `seed ${seed}: the same entries left`);
      assert.deepEqual(norm(kr), norm(js), `seed ${seed}: the same result`);
      assert.equal(credited(b.obj), credited(a.obj), `seed ${seed}: the same flows released`);
      assert.equal(k.fallbacks, missing ? k.passes : 0, missing ? 'forward entries of reaped backends sent it to the JS sweep' : 'no JS sweep needed');
      // a second pass finds nothing more to do
      const again = await k.sweep(b.obj.map(C.MAP.ct), b.obj.map(C.MAP.ctFill), cfg, NOW);
      assert.equal(again.expired, 0);
      assert.equal(again.entries, kr.entries);
    }
  });
}

test('the kernel sweep credits ct_fill[1] once per flow and never past ct_fill[0]', async (t) => {
  const { obj, pin } = await datapath(t);
  const k = await kernelSweep(t, obj, pin);
  const ct = obj.map(C.MAP.ct), ctFill = obj.map(C.MAP.ctFill);
  obj.map(C.MAP.backends).update(C.encodeBackendKey(3), C.encodeBackendValue({ addr: '10.244.1.3', port: 53, state: 'active', local: false }));
  const stale = NOW - 31n * SEC, fresh = NOW - SEC;
  const put = (n: number, fwd: bigint | null, rep: bigint | null): void => {
    const client = `10.0.0.${n}`;
    const base = { svcId: 1, backendId: 3, state: 'udp' as const, created: 1n };
    if (fwd !== null) {
      ct.update(C.encodeCtKey({ saddr: client, daddr: '10.96.0.10', sport: 5000 + n, dport: 53, proto: 'UDP' }),
        C.encodeCtValue({ ...base, natAddr: '10.244.1.3', origAddr: '10.96.0.10', natPort: 53, origPort: 53, flags: 0, lastSeen: fwd }));
    }
    if (rep !== null) {
      ct.update(C.encodeCtKey({ saddr: '10.244.1.3', daddr: client, sport: 53, dport: 5000 + n, proto: 'UDP' }),
        C.encodeCtValue({ ...base, natAddr: '10.96.0.10', origAddr: client, natPort: 53, origPort: 5000 + n, flags: C.CT_FLAG.reply, lastSeen: rep }));
    }
  };
  put(1, stale, stale); // idle: both go, one flow
  put(2, fresh, fresh); // live
  put(3, stale, fresh); // one-way stream from the backend: live
  put(4, null, stale); // forward half gone: the reply goes, one flow
  put(5, stale, null); // reply half gone: the forward goes, one flow
  ctFill.update(C.encodeCtFillKey(0), C.encodeCtFillValue(20n));
  ctFill.update(C.encodeCtFillKey(1), C.encodeCtFillValue(5n));
  const r = await k.sweep(ct, ctFill, { ...cfg, udpTimeout: 30 }, NOW);
  assert.deepEqual({ scanned: r.scanned, expired: r.expired, entries: r.entries }, { scanned: 8, expired: 4, entries: 4 });
  assert.deepEqual([...r.liveBackends], [3]);
  assert.equal(credited(obj), 8n, 'three flows released');
  put(6, stale, stale);
  put(7, stale, stale);
  ctFill.update(C.encodeCtFillKey(0), C.encodeCtFillValue(9n));
  await k.sweep(ct, ctFill, { ...cfg, udpTimeout: 30 }, NOW);
  assert.equal(credited(obj), 9n, 'not past what the datapath admitted');
});

test('KernelCtSweep.open fails with a clear error without the datapath\'s pinned maps', async () => {
  await assert.rejects(KernelCtSweep.open(objPath('ct_sweep'), { maxEntries: SIZES }), /pinned maps/);
});

test('the agent reads xlb_sweep_state where ct_sweep.o\'s BTF puts it, and refuses a struct it does not know', async () => {
  const obj = await loadObject(objPath('ct_sweep'), { maxEntries: SIZES });
  try {
    const st = obj.btfStruct('xlb_sweep_state');
    const l = sweepLayout(obj);
    assert.deepEqual(l, { args: 0, argsSize: 72, result: 72, bitmap: 112 });
    assert.equal(st.members.find((m) => m.name === 'be_live')?.offset, l.bitmap);
  } finally {
    obj.close();
  }
  const fake = (members: { name: string; offset: number; size: number }[]) => ({ btfStruct: () => ({ name: 'xlb_sweep_state', size: 1136, members }) });
  assert.throws(() => sweepLayout(fake([{ name: 'a', offset: 0, size: 72 }, { name: 'r', offset: 72, size: 40 }])), /no member be_live/);
  assert.throws(() => sweepLayout(fake([{ name: 'a', offset: 0, size: 80 }, { name: 'r', offset: 80, size: 40 }, { name: 'be_live', offset: 120, size: 8 }])), /args 80 \/ result 40/);
});
