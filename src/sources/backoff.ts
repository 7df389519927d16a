// Capped exponential backoff with jitter for reconnects, with a sleep that a test can replace
// and that stop() can cut short.

export interface BackoffOptions {
  /** first delay (default 500 ms) */
  initialMs?: number;
  /** cap (default 30 s) */
  maxMs?: number;
  /** +/- fraction of randomness so that many agents do not reconnect in step (default 0.2) */
  jitter?: number;
}

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Delay before retry number `failures` (1-based). */
export function backoffDelay(failures: number, o: BackoffOptions = {}, random = Math.random): number {
  const initial = o.initialMs ?? 500;
  const max = o.maxMs ?? 30_000;
  const jitter = o.jitter ?? 0.2;
  const base = Math.min(max, initial * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(Math.min(max, base * (1 + jitter * (2 * random() - 1))));
}

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
