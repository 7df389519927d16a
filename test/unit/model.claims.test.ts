// Frontend clashes (issue 12 §7): two Services asking for the same nodePort (or address and
// port). The owner is the one the API server would have kept, whatever the order the agent
// hears of them in, and ownership moves the moment the clash ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrontendClaims, claimRank, compareRank } from '../../src/model/claims.js';
import type { ServiceSpec } from '../../src/model/types.js';
import { ok, svc, httpSlice, ep, fe } from './model.fixtures.js';

/** A NodePort Service `name` with nodePort 30080 and its own ClusterIP. */
function nodePort(name: string, clusterIP: string): ServiceSpec {
  return ok(svc({ type: 'NodePort', clusterIP, clusterIPs: [clusterIP], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] }, { name }),
    [{ ...httpSlice(ep('10.244.1.5')), metadata: { name: `${name}-abc`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } } }]);
}

const OLD = '2026-01-01T00:00:00Z';
const NEW = '2026-06-01T00:00:00Z';
const a = nodePort('a', '10.96.0.1');
const b = nodePort('b', '10.96.0.2');
const types = (s: ServiceSpec | undefined) => [...new Set(s?.frontends.map((f) => f.type))].sort();

test('the older Service owns a shared nodePort, in whichever order they are recorded', () => {
  for (const order of [['a', 'b'], ['b', 'a']]) {
    const c = new FrontendClaims();
    for (const k of order) c.set(claimRank(`default/${k}`, k === 'a' ? NEW : OLD), k === 'a' ? a : b);
    // b is older: it keeps the NodePort; a keeps its ClusterIP only, with the reason.
    assert.deepEqual(types(c.owned('default/b')), ['ClusterIP', 'NodePort']);
    assert.deepEqual(types(c.owned('default/a')), ['ClusterIP']);
    const w = c.owned('default/a')!.warnings;
    assert.equal(w.length, 1, JSON.stringify(w));
    assert.match(w[0], /^NodePort \*:30080\/TCP is also claimed by default\/b, which owns it \(created earlier \(2026-01-01T00:00:00\.000Z\); .*not programmed for this Service$/);
    assert.deepEqual(c.lost('default/b'), []);
    assert.equal(c.owned('default/b'), b, 'the owner\'s state is passed through unchanged');
  }
});

test('same creation time: namespace/name decides; a timestamp beats none; Date and text read alike', () => {
  assert.ok(compareRank(claimRank('default/a', OLD), claimRank('default/b', OLD)) < 0);
  assert.ok(compareRank(claimRank('default/b', OLD), claimRank('default/a', undefined)) < 0);
  assert.ok(compareRank(claimRank('x/z', new Date(OLD)), claimRank('a/a', NEW)) < 0);
  assert.equal(compareRank(claimRank('n/s', new Date(OLD)), claimRank('n/s', OLD)), 0);
  assert.equal(claimRank('n/s', 'not a time').created, null);
  const c = new FrontendClaims();
  c.set(claimRank('default/b', OLD), b);
  c.set(claimRank('default/a', OLD), a);
  assert.deepEqual(types(c.owned('default/a')), ['ClusterIP', 'NodePort']);
  assert.match(c.lost('default/b')[0], /owns it \(same creation time, name sorts first;/);
});

test('the clash ending moves the frontend at once; an unchanged claim stirs nobody', () => {
  const c = new FrontendClaims();
  assert.deepEqual(c.set(claimRank('default/a', OLD), a), []);
  assert.deepEqual(c.set(claimRank('default/b', NEW), b), ['default/a'], 'the owner hears of the newcomer');
  assert.deepEqual(c.set(claimRank('default/b', NEW), b), [], 'no change, nobody to re-check (no ping-pong)');
  // The intruder goes: the owner is told, and its state is what it was.
  assert.deepEqual(c.set(claimRank('default/b', NEW), undefined), ['default/a']);
  assert.equal(c.owned('default/a'), a);
  assert.equal(c.owned('default/b'), undefined);
  // The intruder back, then the owner goes: the intruder owns it from then on.
  c.set(claimRank('default/b', NEW), b);
  assert.deepEqual(types(c.owned('default/b')), ['ClusterIP']);
  assert.deepEqual(c.set(claimRank('default/a', OLD), undefined), ['default/b']);
  assert.deepEqual(types(c.owned('default/b')), ['ClusterIP', 'NodePort']);
  assert.deepEqual(c.owned('default/b')!.warnings, []);
});

test('every frontend kind clashes by address, port, protocol and scope, not by name', () => {
  const c = new FrontendClaims();
  const sameIP = nodePort('c', '10.96.0.1');
  c.set(claimRank('default/a', OLD), a);
  c.set(claimRank('default/c', NEW), sameIP);
  assert.deepEqual(c.owned('default/c')!.frontends, [], 'ClusterIP and NodePort both taken');
  assert.equal(c.lost('default/c').length, 2);
  assert.equal(c.owner(fe(a, 'ClusterIP', 'internal'))?.key, 'default/a');
});

test('a nodePort of one family does not clash with the same nodePort of the other family', () => {
  const v6 = ok(svc({ type: 'NodePort', clusterIP: 'fd00:96::3', clusterIPs: ['fd00:96::3'], ipFamilies: ['IPv6'], ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }] }, { name: 'v6' }));
  const c = new FrontendClaims();
  c.set(claimRank('default/a', OLD), a);
  c.set(claimRank('default/v6', NEW), v6);
  assert.deepEqual(types(c.owned('default/v6')), ['ClusterIP', 'NodePort'], 'its own wildcard ([::]:30080), no clash with a\'s *:30080');
  assert.deepEqual(c.owned('default/v6')!.warnings, []);
});
