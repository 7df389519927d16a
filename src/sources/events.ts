// Kubernetes Events (core/v1) about Services, deduplicated and rate-limited as client-go's
// EventCorrelator does it: one Event per object, reason and message, whose count and
// lastTimestamp go up when it happens again (at most one PATCH per interval; repeats in
// between are added up), and a token bucket over all writes so a burst of changes cannot
// flood the API server. The Event's name derives from the object, reason and message, so a
// new leader or a restarted agent continues the same Event instead of starting another.
import { createHash } from 'node:crypto';
import type { CoreV1Event, V1Service } from '@kubernetes/client-node';
import type { KubeClient } from './kubeclient.js';
import type { Logger } from '../log.js';
import { describe } from './reflector.js';

export interface EventRecorderOptions {
  /** source.host and reportingInstance: the node name */
  host: string;
  log: Logger;
  /** at most one update of an Event per this long (default 60 s) */
  intervalMs?: number;
  /** writes the bucket allows at once (default 25) */
  burst?: number;
  /** one more write allowed per this long (default 1 s) */
  refillMs?: number;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  /** occurrences not yet written */
  pending: number;
  lastWrite: number;
  timer?: NodeJS.Timeout;
}

export const COMPONENT = 'xlb';

export class EventRecorder {
  private readonly seen = new Map<string, Seen>();
  private tokens: number;
  private refilled = Date.now();
  private chain: Promise<void> = Promise.resolve();
  /** Events dropped by the rate limit */
  dropped = 0;

  constructor(private readonly api: KubeClient, private readonly o: EventRecorderOptions) {
    this.tokens = o.burst ?? 25;
  }

  /** Records one occurrence; the write happens in the background (see flush()). */
  record(svc: V1Service, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const namespace = svc.metadata?.namespace || 'default';
    const name = `${svc.metadata?.name ?? ''}.${createHash('sha256').update(`${svc.metadata?.uid ?? ''}\0${reason}\0${message}`).digest('hex').slice(0, 16)}`;
    const key = `${namespace}/${name}`;
    const s = this.seen.get(key);
    if (!s) {
      const entry: Seen = { name, namespace, count: 0, pending: 1, lastWrite: 0 };
      this.seen.set(key, entry);
      this.enqueue(() => this.create(entry, svc, type, reason, message));
      return;
    }
    s.pending++;
    const wait = s.lastWrite + (this.o.intervalMs ?? 60_000) - Date.now();
    if (s.timer) return;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      this.enqueue(() => this.update(s));
    }, Math.max(0, wait));
    s.timer.unref();
  }

  /** Resolves when every write asked for so far is done. */
  flush(): Promise<void> {
    return this.chain;
  }

  stop(): void {
    for (const s of this.seen.values()) clearTimeout(s.timer);
  }

  private enqueue(f: () => Promise<void>): void {
    this.chain = this.chain.then(() => {
      if (!this.take()) {
        this.dropped++;
        this.o.log.debug('event dropped by the rate limit');
        return;
      }
      return f().catch((e) => this.o.log.warn({ err: describe(e) }, 'event not recorded'));
    });
  }

  private take(): boolean {
    const every = this.o.refillMs ?? 1000;
    const now = Date.now();
    const add = Math.floor((now - this.refilled) / every);
    if (add > 0) {
      this.tokens = Math.min(this.o.burst ?? 25, this.tokens + add);
      this.refilled += add * every;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private async create(s: Seen, svc: V1Service, type: string, reason: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    const body: CoreV1Event = {
      metadata: { name: s.name, namespace: s.namespace },
      involvedObject: { kind: 'Service', apiVersion: 'v1', namespace: s.namespace, name: svc.metadata?.name, uid: svc.metadata?.uid, resourceVersion: svc.metadata?.resourceVersion },
      type, reason, message,
      count: 1, firstTimestamp: now as never, lastTimestamp: now as never,
      source: { component: COMPONENT, host: this.o.host },
      reportingComponent: `${COMPONENT}.io/agent`, reportingInstance: this.o.host,
    };
    try {
      await this.api.create(eventPath(s.namespace), body);
      s.count = 1;
      s.pending--;
      s.lastWrite = Date.now();
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
      // Recorded before, by another leader or before a restart: this is the same occurrence
      // seen again, so the Event is adopted as it is and later repeats continue its count.
      const old = await this.api.get<CoreV1Event>(eventPath(s.namespace, s.name));
      s.count = old.count ?? 1;
      s.pending = 0;
      s.lastWrite = Date.now();
    }
  }

  private async update(s: Seen): Promise<void> {
    if (s.pending <= 0) return;
    const count = s.count + s.pending;
    await this.api.mergePatch(eventPath(s.namespace, s.name), { count, lastTimestamp: new Date().toISOString() });
    s.count = count;
    s.pending = 0;
    s.lastWrite = Date.now();
  }
}

function eventPath(namespace: string, name = ''): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/events${name ? `/${encodeURIComponent(name)}` : ''}`;
}
