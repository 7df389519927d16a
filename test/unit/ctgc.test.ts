// The conntrack sweep's grouping of entries into flows (groupFlows), checked against the
// string flow ids (ctFlowId) it replaced: same groups, for both families, forward and reply
// entries, flows with one entry left, several reply entries of one client tuple (a reused
// port balanced to another backend), and tuples that differ in a single field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { ctFlowId, groupFlows } from '../../src/datapath/ctgc.js';

const KS = C.LAYOUT.xlb_ct_key.size;
const VS = C.LAYOUT.xlb_ct_value.size;

interface Entry { k: C.CtKey; v: C.CtValue }

function table(entries: Entry[]): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(entries.length * KS, 0xee);
  const values = Buffer.alloc(entries.length * VS, 0xee);
  entries.forEach((e, i) => {
    C.encodeCtKey(e.k).copy(keys, i * KS);
    C.encodeCtValue(e.v).copy(values, i * VS);
  });
  return { keys, values };
}

/** Entries as groups of indexes, each sorted, the groups sorted: a canonical form to compare. */
function canon(groups: number[][]): string {
  return JSON.stringify(groups.map((g) => [...g].sort((a, b) => a - b)).sort((a, b) => a[0]! - b[0]!));
}

function byGroupFlows(keys: Buffer, values: Buffer, count: number): number[][] {
  const { heads, nHeads, next } = groupFlows(keys, values, count);
  const out: number[][] = [];
  for (let f = 0; f < nHeads; f++) {
    const g: number[] = [];
    for (let i = heads[f]!; i >= 0; i = next[i]!) g.push(i);
    out.push(g);
  }
  return out;
}

function byFlowId(keys: Buffer, values: Buffer, count: number): number[][] {
  const m = new Map<string, number[]>();
  for (let i = 0; i < count; i++) {
    const id = ctFlowId(keys, i * KS, values, i * VS);
    m.set(id, [...(m.get(id) ?? []), i]);
  }
  return [...m.values()];
}

function flows(n: number, v6: boolean, seed: number): Entry[] {
  let s = seed;
  const rnd = (m: number): number => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s % m; };
  const out: Entry[] = [];
  const base = { svcId: 7, state: 'fin' as const, lastSeen: 5n, created: 1n };
  for (let f = 0; f < n; f++) {
    const client = v6 ? `fd00:244:2::${(1 + rnd(4)).toString(16)}` : `10.244.2.${1 + rnd(4)}`;
    const vip = v6 ? `fd00:96::${(10 + rnd(2)).toString(16)}` : `10.96.0.${10 + rnd(2)}`;
    const cport = 1024 + f;
    const proto = rnd(5) === 0 ? 'UDP' as const : 'TCP' as const;
    const backends = 1 + rnd(3); // 2 or 3: a reused port's older flows left their reply entries
    const fwd = rnd(6) !== 0;    // sometimes LRU took the forward entry
    const be = (b: number): string => (v6 ? `fd00:244:1::${(11 + b).toString(16)}` : `10.244.1.${11 + b}`);
    if (fwd) {
      out.push({ k: { saddr: client, daddr: vip, sport: cport, dport: 80, proto },
        v: { ...base, natAddr: be(0), origAddr: vip, natPort: 8080, origPort: 80, backendId: 1, flags: 0 } });
    }
    for (let b = 0; b < backends; b++) {
      out.push({ k: { saddr: be(b), daddr: client, sport: 8080, dport: cport, proto },
        v: { ...base, natAddr: vip, origAddr: client, natPort: 80, origPort: cport, backendId: 1 + b, flags: C.CT_FLAG.reply } });
    }
  }
  // shuffled, as the kernel's bucket order would have them
  for (let i = out.length - 1; i > 0; i--) { const j = rnd(i + 1); [out[i], out[j]] = [out[j]!, out[i]!]; }
  return out;
}

test('groupFlows groups ct entries as ctFlowId does (IPv4, IPv6, both in one table)', () => {
  for (const entries of [flows(3000, false, 1), flows(3000, true, 2), [...flows(1000, false, 3), ...flows(1000, true, 4)]]) {
    const { keys, values } = table(entries);
    const want = byFlowId(keys, values, entries.length);
    assert.ok(want.length > 500 && want.length < entries.length, 'the data has multi-entry flows');
    assert.equal(canon(byGroupFlows(keys, values, entries.length)), canon(want));
  }
});

test('groupFlows keeps apart tuples that differ in one field only', () => {
  const fwd: C.CtKey = { saddr: '10.0.0.2', daddr: '10.96.0.10', sport: 40000, dport: 80, proto: 'TCP' };
  const value: C.CtValue = { natAddr: '10.244.1.5', origAddr: '10.96.0.10', natPort: 8080, origPort: 80, backendId: 1, svcId: 1,
    state: 'established', flags: 0, lastSeen: 1n, created: 1n };
  const reply = (v: Partial<C.CtValue>): Entry => ({ k: { saddr: '10.244.1.5', daddr: '10.0.0.2', sport: 8080, dport: 40000, proto: 'TCP' },
    v: { ...value, natAddr: '10.96.0.10', origAddr: '10.0.0.2', natPort: 80, origPort: 40000, flags: C.CT_FLAG.reply, ...v } });
  const entries: Entry[] = [
    { k: fwd, v: value },                                      // 0: the flow
    reply({}),                                                 // 1: its reply entry
    { k: { ...fwd, proto: 'UDP' }, v: value },                 // 2: another protocol
    { k: { ...fwd, sport: 40001 }, v: value },                 // 3: another client port
    { k: { ...fwd, dport: 81 }, v: value },                    // 4: another frontend port
    { k: { ...fwd, saddr: '10.0.0.3' }, v: value },            // 5: another client
    { k: { ...fwd, daddr: '10.96.0.11' }, v: value },          // 6: another frontend
    reply({ origPort: 40001 }),                                // 7: the reply of 3
    reply({ natAddr: '10.96.0.11' }),                          // 8: the reply of 6
    { k: { ...fwd, saddr: 'fd00::2' }, v: value },             // 9: an IPv6 client
    reply({ backendId: 2 }),                                   // 10: the flow's (same tuple, same client): with 0
  ];
  const { keys, values } = table(entries);
  assert.equal(canon(byGroupFlows(keys, values, entries.length)), canon([[0, 1, 10], [2], [3, 7], [4], [5], [6, 8], [9]]));
  assert.equal(canon(byGroupFlows(keys, values, entries.length)), canon(byFlowId(keys, values, entries.length)));
});

test('groupFlows on an empty table', () => {
  const r = groupFlows(Buffer.alloc(0), Buffer.alloc(0), 0);
  assert.equal(r.nHeads, 0);
});
