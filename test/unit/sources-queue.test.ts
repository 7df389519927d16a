import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyQueue, type SetTimer } from '../../src/sources/queue.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A timer the test fires by hand, recording every requested delay. */
function manualTimer(): { setTimer: SetTimer; delays: number[]; fireAll: () => void } {
  const due: Array<() => void> = [];
  const delays: number[] = [];
  return {
    delays,
    setTimer: (fn, ms) => {
      delays.push(ms);
      due.push(fn);
      return () => {
        const i = due.indexOf(fn);
        if (i >= 0) due.splice(i, 1);
      };
    },
    fireAll: () => due.splice(0).forEach((fn) => fn()),
  };
}

test('events for a key queued behind other work coalesce into one run', async () => {
  const gate = deferred();
  const runs: string[] = [];
  const q = new KeyQueue<string>(async (k) => {
    runs.push(k);
    if (k === 'slow') await gate.promise;
  }, { concurrency: 1 });
  q.add('slow');
  for (let i = 0; i < 5; i++) q.add('svc/a');
  q.add('svc/b');
  q.add('svc/a');
  assert.equal(q.pending(), 3);
  gate.resolve();
  await q.idle();
  assert.deepEqual(runs, ['slow', 'svc/a', 'svc/b']);
  assert.equal(q.pending(), 0);
});

test('a key changed while its handler runs is run once more with the latest state', async () => {
  let version = 1;
  const seen: number[] = [];
  const gate = deferred();
  const q = new KeyQueue<string>(async () => {
    const v = version;
    if (seen.length === 0) await gate.promise;
    seen.push(v);
  });
  q.add('svc/a');
  version = 2;
  q.add('svc/a');
  version = 3;
  q.add('svc/a');
  gate.resolve();
  await q.idle();
  assert.deepEqual(seen, [1, 3], 'one re-run, reading the newest version');
});

test('failures are retried with capped exponential backoff and reset on success', async () => {
  const timer = manualTimer();
  let calls = 0;
  const errors: number[] = [];
  const q = new KeyQueue<string>(
    () => {
      calls++;
      if (calls <= 5) throw new Error('map full');
    },
    { baseDelayMs: 100, maxDelayMs: 500, setTimer: timer.setTimer, onError: (_k, _e, n) => errors.push(n) },
  );
  q.add('svc/a');
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setImmediate(r));
    assert.equal(q.pending(), 1, 'a failing key stays pending while it waits');
    q.add('svc/a'); // an event during backoff does not cut the delay short
    assert.equal(timer.delays.length, i + 1);
    timer.fireAll();
  }
  await q.idle();
  assert.equal(calls, 6);
  assert.deepEqual(timer.delays, [100, 200, 400, 500, 500]);
  assert.deepEqual(errors, [1, 2, 3, 4, 5]);
  assert.equal(q.failures('svc/a'), 0);
});

test('one slow key does not hold up the others', async () => {
  const gate = deferred();
  const done: string[] = [];
  const q = new KeyQueue<string>(async (k) => {
    if (k === 'svc/slow') await gate.promise;
    done.push(k);
  }, { concurrency: 2 });
  q.add('svc/slow');
  q.add('svc/fast1');
  q.add('svc/fast2');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(done, ['svc/fast1', 'svc/fast2']);
  assert.equal(q.pending(), 1);
  gate.resolve();
  await q.idle();
  assert.deepEqual(done, ['svc/fast1', 'svc/fast2', 'svc/slow']);
});

test('stop cancels pending retries and idle resolves', async () => {
  const timer = manualTimer();
  const q = new KeyQueue<string>(() => {
    throw new Error('nope');
  }, { setTimer: timer.setTimer });
  q.add('svc/a');
  await new Promise((r) => setImmediate(r));
  assert.equal(q.pending(), 1);
  q.stop();
  await q.idle();
  timer.fireAll();
  assert.equal(q.pending(), 0);
});
