// `npm run bench` says which stage it is in and how long is left (test/bench/progress.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clock, Progress } from '../bench/progress.js';

test('each stage is announced with its number, the time spent and an estimate of the time left', () => {
  let t = 0;
  const lines: string[] = [];
  const p = new Progress([{ name: 'small xlb', weight: 1 }, { name: 'small iptables', weight: 1 }, { name: 'big xlb', weight: 2 }],
    (l) => lines.push(l), () => t);
  p.begin();
  t = 30_000;
  p.begin();
  t = 60_000;
  p.begin('big xlb, round 1');
  assert.deepEqual(lines, [
    'bench: [1/3] small xlb (0s elapsed, time left: after the first stage)',
    'bench: [2/3] small iptables (30s elapsed, ~1m30s left)',
    'bench: [3/3] big xlb, round 1 (1m00s elapsed, ~1m00s left)',
  ]);
});

test('clock', () => {
  assert.equal(clock(8), '8s');
  assert.equal(clock(75), '1m15s');
});
