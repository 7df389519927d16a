// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// every candidate reads the Lease each renew period; the holder rewrites renewTime; another
// candidate takes it over only when the holder has not renewed it for leaseDurationSeconds,
// measured on the candidate's own clock (so nodes need no synchronised clocks). Every write is
// an update with the resourceVersion it read, so two candidates racing for an expired Lease
// cannot both win.
// Timing, so that a new leader takes over within the lease duration of the old one stopping
// (client-go's bound is duration + retry period): a renewal first seen at a read happened after
// the previous read, so its time counts from there (at most a renew period early). The holder
// therefore stops leading when it has not renewed for duration - renew period - renew/5 (9 s
// by default; it retries every renew/5 after a failure), before any candidate may take over.
// A holder that stops releases the Lease (empty holder): the next one takes over at its next
// read.
// The same elector holds the per-address announce Leases (src/agent/announce.ts): onRenew
// tells the holder how long its hold lasts (its datapath entry expires then), and
// acquireDelayMs orders candidates for a free Lease.
import type { V1Lease } from '@kubernetes/client-node';
import type { KubeClient } from './kubeclient.js';
import type { Logger } from '../log.js';
import { describe } from './reflector.js';

export interface LeaseOptions {
  namespace: string;
  name: string;
  /** holderIdentity: the node name */
  identity: string;
  /** lease duration (default 15 s; written as leaseDurationSeconds, rounded up) */
  durationMs?: number;
  /** how often the holder renews and candidates read (default 5 s) */
  renewMs?: number;
  log: Logger;
  /** called on every change of leadership */
  onChange: (leading: boolean) => void;
  /** called at every acquisition and renewal (before onChange(true)) with how long, from now,
   *  this holder may act on it: it stops leading by then unless renewed again */
  onRenew?: (validForMs: number) => void;
  /** wait this long after first seeing the Lease free (absent, released or expired) before
   *  taking it, so candidates with a shorter wait get it first (default 0) */
  acquireDelayMs?: number;
}

/** RFC 3339 with microseconds, the format of a MicroTime (renewTime, acquireTime). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function codeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: number };
  return e?.statusCode ?? (typeof e?.code === 'number' ? e.code : undefined);
}

export class LeaseElector {
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** the last renewal seen of another holder, and when (on this clock) it was first seen */
  private observed = { record: '', at: 0 };
  private lastRenew = 0;
  /** when the last read happened (0: none yet) */
  private lastRead = 0;
  /** when this candidate first saw the Lease free (0: not free when last read) */
  private freeSince = 0;
  private readonly durationMs: number;
  private readonly renewMs: number;

  constructor(private readonly api: KubeClient, private readonly o: LeaseOptions) {
    this.durationMs = o.durationMs ?? 15_000;
    this.renewMs = o.renewMs ?? 5_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder as last read ('' = none or not read yet). */
  get holder(): string {
    return this.observed.record.split('|')[0] ?? '';
  }

  start(): void {
    this.schedule(0);
  }

  /** Stops campaigning; a leader releases the Lease unless `release` is false (a crash, in tests). */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.leading && release) {
      try {
        const l = await this.read();
        if (l?.spec?.holderIdentity === this.o.identity) {
          await this.api.replace(this.path(), { ...l, spec: { ...l.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(Date.now()) as never } });
        }
      } catch (e) {
        this.o.log.warn({ err: describe(e) }, 'could not release the lease; another agent takes over when it expires');
      }
    }
    this.setLeading(false);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.step().finally(() => (this.running = undefined));
    }, ms);
    this.timer.unref();
  }

  private async step(): Promise<void> {
    const retryMs = this.renewMs / 5;
    let next = this.renewMs;
    try {
      next = await this.tryAcquireOrRenew();
    } catch (e) {
      this.o.log.warn({ err: describe(e), leading: this.leading }, 'lease read or write failed');
      if (this.leading) next = retryMs;
    }
    // A holder that could not renew for long enough stops before a candidate may take over.
    if (this.leading && Date.now() - this.lastRenew >= this.durationMs - this.renewMs - retryMs) {
      this.o.log.warn({ lease: this.o.name, sinceRenewMs: Date.now() - this.lastRenew }, 'lease not renewed in time: no longer leading');
      this.setLeading(false);
    }
    this.schedule(next);
  }

  /** the Lease's URL path ('' : its collection's) */
  private path(name = this.o.name): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.api.get<V1Lease>(this.path());
    } catch (e) {
      if (codeOf(e) === 404) return undefined;
      throw e;
    }
  }

  /** One round; returns the delay to the next. */
  private async tryAcquireOrRenew(): Promise<number> {
    const now = Date.now();
    const mine = (l: V1Lease | undefined, acquired: boolean): V1Lease => ({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: this.o.name, namespace: this.o.namespace, resourceVersion: l?.metadata?.resourceVersion },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.ceil(this.durationMs / 1000),
        acquireTime: (acquired ? microTime(now) : l?.spec?.acquireTime) as never,
        renewTime: microTime(now) as never,
        leaseTransitions: (l?.spec?.leaseTransitions ?? 0) + (acquired && l ? 1 : 0),
      },
    });
    const l = await this.read();
    if (!l) {
      const wait = this.waitFree(now);
      if (wait) return wait;
      try {
        await this.api.create(this.path(''), mine(undefined, true));
      } catch (e) {
        if (codeOf(e) === 409) return this.renewMs; // another candidate created it first
        throw e;
      }
      return this.won(now);
    }
    const holder = l.spec?.holderIdentity ?? '';
    const record = `${holder}|${String(l.spec?.renewTime ?? '')}`;
    // A new renewal happened after the previous read (and not more than a renew period ago,
    // when reads fell behind); the first read ever cannot tell, so it counts from now.
    if (record !== this.observed.record) this.observed = { record, at: this.lastRead ? Math.max(this.lastRead, now - this.renewMs) : now };
    this.lastRead = now;
    if (holder && holder !== this.o.identity) {
      if (this.leading) this.o.log.warn({ holder }, 'another agent holds the lease: no longer leading');
      this.setLeading(false);
      const expires = this.observed.at + (l.spec?.leaseDurationSeconds ?? Math.ceil(this.durationMs / 1000)) * 1000;
      // Read again exactly when it would expire, not up to a renew period later.
      if (expires > now) {
        this.freeSince = 0;
        return Math.min(this.renewMs, expires - now + 1);
      }
    }
    if (holder !== this.o.identity) {
      const wait = this.waitFree(now);
      if (wait) return wait;
    }
    try {
      await this.api.replace(this.path(), mine(l, holder !== this.o.identity));
    } catch (e) {
      if (codeOf(e) === 409) return 0; // changed under us: read again at once
      throw e;
    }
    return this.won(now);
  }

  /** How long to wait still before taking a free Lease (0: take it now). */
  private waitFree(now: number): number {
    const delay = this.o.acquireDelayMs ?? 0;
    if (!delay) return 0;
    if (!this.freeSince) this.freeSince = now;
    return Math.max(0, Math.min(this.renewMs, this.freeSince + delay - now));
  }

  private won(at: number): number {
    this.lastRenew = at;
    this.freeSince = 0;
    this.o.onRenew?.(at + this.durationMs - this.renewMs - this.renewMs / 5 - Date.now());
    if (!this.leading) this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, 'acquired the lease: leading');
    this.setLeading(true);
    return this.renewMs;
  }

  private setLeading(v: boolean): void {
    if (this.leading === v) return;
    this.leading = v;
    this.o.onChange(v);
  }
}
