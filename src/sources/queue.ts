// Per-key coalescing work queue. Many events for one Service collapse into one handler run
// that reads the latest state; a key that changes while its handler runs is run once more
// afterwards (the run may have read the old state); failures are retried per key with capped
// exponential backoff, so one broken Service neither spins nor delays the others. Up to
// `concurrency` handlers run at once, which bounds how long a key can wait behind slow ones.

import { backoffDelay } from './backoff.js';

export type CancelTimer = () => void;
export type SetTimer = (fn: () => void, ms: number) => CancelTimer;

export interface KeyQueueOptions<K> {
  /** handlers running at once, for different keys (default 4) */
  concurrency?: number;
  /** first retry delay after a failure (default 100 ms) */
  baseDelayMs?: number;
  /** retry delay cap (default 30 s) */
  maxDelayMs?: number;
  /** injectable for tests (default setTimeout) */
  setTimer?: SetTimer;
  /** told about every failure and the delay before its retry */
  onError?: (key: K, err: unknown, attempt: number, retryInMs: number) => void;
}

export const realTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

export class KeyQueue<K> {
  private readonly ready = new Set<K>(); // insertion-ordered FIFO without duplicates
  private readonly running = new Set<K>();
  private readonly dirty = new Set<K>();
  private readonly retryTimers = new Map<K, CancelTimer>();
  private readonly attempts = new Map<K, number>();
  private idleWaiters: Array<() => void> = [];
  private stopped = false;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly setTimer: SetTimer;

  constructor(
    private readonly handler: (key: K) => Promise<void> | void,
    private readonly opts: KeyQueueOptions<K> = {},
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
    this.setTimer = opts.setTimer ?? realTimer;
  }

  /** Schedule `key`. A key already waiting (queued or backing off) is not queued twice. */
  add(key: K): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    // A key backing off keeps its delay: its retry reads the latest state anyway, and an
    // event storm must not turn backoff into a hot loop.
    if (this.ready.has(key) || this.retryTimers.has(key)) return;
    this.ready.add(key);
    this.pump();
  }

  /** Keys queued, running or waiting for a retry. */
  pending(): number {
    const waitingOnly = [...this.retryTimers.keys()].filter((k) => !this.ready.has(k)).length;
    return this.ready.size + this.running.size + waitingOnly;
  }

  /** Consecutive failures of `key` so far (0 after a success). */
  failures(key: K): number {
    return this.attempts.get(key) ?? 0;
  }

  /** Resolves when nothing is queued, running or waiting for a retry. */
  idle(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drop queued work and retries; running handlers finish, none start. */
  stop(): void {
    this.stopped = true;
    this.ready.clear();
    this.dirty.clear();
    for (const cancel of this.retryTimers.values()) cancel();
    this.retryTimers.clear();
    this.notifyIdle();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.ready.size > 0) {
      const key = this.ready.values().next().value as K;
      this.ready.delete(key);
      void this.run(key);
    }
    this.notifyIdle();
  }

  private async run(key: K): Promise<void> {
    this.running.add(key);
    let failure: { err: unknown } | undefined;
    try {
      await this.handler(key);
    } catch (err) {
      failure = { err };
    }
    this.running.delete(key);
    if (failure) this.scheduleRetry(key, failure.err);
    else {
      this.attempts.delete(key);
      if (this.dirty.delete(key) && !this.stopped) this.ready.add(key);
    }
    this.pump();
  }

  private scheduleRetry(key: K, err: unknown): void {
    // The retry runs the handler afresh, so a change that arrived meanwhile is covered.
    this.dirty.delete(key);
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempt);
    const delay = backoffDelay(attempt, { initialMs: this.baseDelayMs, maxMs: this.maxDelayMs, jitter: 0 });
    this.opts.onError?.(key, err, attempt, delay);
    if (this.stopped) return;
    const cancel = this.setTimer(() => {
      this.retryTimers.delete(key);
      if (this.stopped) return;
      this.ready.add(key);
      this.pump();
    }, delay);
    this.retryTimers.set(key, cancel);
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || this.pending() !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
