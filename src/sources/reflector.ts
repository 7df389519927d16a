// List-then-watch for one resource, on the agent's own client (kubeclient.ts: paged lists and
// the streaming watch). It keeps the resourceVersion of the last event or
// bookmark, so that a watch that ends is resumed where it stopped, and relists only when the
// server says that version is gone (410). Why not @kubernetes/client-node's
// ListWatch/makeInformer, as of 1.4.0 (read in node_modules/@kubernetes/client-node/dist/cache.js;
// the agent no longer loads that library at all):
//  - it never asks for bookmarks (no allowWatchBookmarks), so on a quiet resource its
//    resourceVersion ages until a resume hits 410 and forces a full relist;
//  - after any error other than 410 it stops and only emits 'error' (no retry, no backoff),
//    and a failed list also just emits 'error' while start() resolves as if it had synced;
//  - it reconnects a cleanly closed watch at once with no backoff, a hot loop against a
//    server or proxy that closes immediately;
//  - stop() itself surfaces as an 'error' (the aborted request);
//  - watch objects are handed over as raw JSON, list objects as serializer output.
// A watch has no client-side timeout (a healthy one must not be cut), so nothing detects a
// silently dead connection but TCP keepalive (30 s idle, then the kernel's probes, minutes).
// So this reflector asks the server to end each watch after a
// random 5-10 min (timeoutSeconds, as client-go does), requests bookmarks, and aborts a watch
// that has been silent longer than that plus a grace period. Either way, a watch that ends
// cleanly is resumed from the last resourceVersion without a relist and without touching the
// cache; only a short-lived, eventless one counts as a failure and backs off.
// The event handler here catches and logs its own exceptions.
import type { KubeClient, ListPage, Query } from './kubeclient.js';
import type { Logger } from '../log.js';
import { backoffDelay, realSleep, type BackoffOptions, type Sleep } from './backoff.js';
import { decode, type KindName, type KindType } from './decode.js';

export interface ReflectorHandlers<T> {
  /** the complete current set (first list, or a relist after a gap) */
  replace(items: T[]): void;
  upsert(obj: T): void;
  remove(obj: T): void;
}

export interface ReflectorOptions<K extends KindName> extends ReflectorTuning {
  kind: K;
  apiVersion: string;
  /** collection path for watches, e.g. /api/v1/services */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  client: KubeClient;
  handlers: ReflectorHandlers<KindType<K>>;
  onState: (state: 'up' | 'down', detail?: string) => void;
  log: Logger;
  /**
   * A resource the server may not serve (a CRD not installed): a 404 on the list counts as an
   * empty, synced list, is retried with backoff, and does not mark the connection down.
   */
  mayBeAbsent?: boolean;
}

/** How lists and watches are timed and retried; the kube source passes these through. */
export interface ReflectorTuning {
  backoff?: BackoffOptions;
  sleep?: Sleep;
  /** server-side watch timeout to request, seconds (default random 300-600) */
  watchTimeoutSeconds?: () => number;
  /** abort a watch silent for longer than this (default timeoutSeconds + 60 s) */
  idleTimeoutMs?: number;
  /** a watch that ends sooner than this without any event counts as a failure (default 1 s) */
  minHealthyWatchMs?: number;
  /** a list page that takes longer fails and the list is retried (default 60 s) */
  listTimeoutMs?: number;
  /** objects per list page (limit/continue; default 500, as client-go) */
  listPageSize?: number;
}

const ABSENT = 'resource not served (404)';

type Outcome = { kind: 'closed' | 'gone' | 'error' | 'stopped'; detail?: string; events: number; ms: number };

export class Reflector<K extends KindName> {
  private rv = '';
  private stopped = false;
  private readonly stopCtl = new AbortController();
  private abortWatch: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private syncedResolve!: () => void;
  private syncedReject!: (e: Error) => void;
  /** resolves after the first complete list, rejects if stopped before */
  readonly synced: Promise<void>;
  lists = 0;

  constructor(private readonly o: ReflectorOptions<K>) {
    this.synced = new Promise((res, rej) => {
      this.syncedResolve = res;
      this.syncedReject = rej;
    });
    this.synced.catch(() => undefined);
  }

  get resourceVersion(): string {
    return this.rv;
  }

  start(): Promise<void> {
    this.loopDone ??= this.loop();
    return this.synced;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopCtl.abort();
    this.abortWatch?.();
    this.syncedReject(new Error(`${this.o.kind} watch stopped before the initial list completed`));
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    const sleep = this.o.sleep ?? realSleep;
    while (!this.stopped) {
      let retry: string | undefined;
      const listed = !this.rv;
      if (listed) retry = await this.relist();
      if (!retry && !this.stopped) {
        const r = await this.watchOnce();
        const healthy = r.events > 0 || r.ms >= (this.o.minHealthyWatchMs ?? 1000);
        if (healthy) failures = 0; // a long healthy watch that then breaks starts backoff afresh
        if (r.kind === 'gone') {
          this.o.log.info({ rv: this.rv, detail: r.detail }, 'resourceVersion expired; relisting');
          this.rv = '';
          // A version fresh from a list should never be gone; if it is, back off rather
          // than relist in a loop.
          if (listed) retry = `${r.detail} right after a list`;
        } else if (r.kind === 'error') retry = r.detail;
        else if (r.kind === 'closed' && !healthy) retry = `watch ended after ${r.ms} ms without events`;
      }
      if (retry && !this.stopped) {
        failures++;
        const delay = backoffDelay(failures, this.o.backoff);
        if (retry === ABSENT) {
          this.o.onState('up'); // the server answered: the connection is fine
          if (failures === 1) this.o.log.info({ path: this.o.path }, 'resource not served (CRD not installed?); retrying with backoff');
        } else {
          this.o.log.warn({ detail: retry, failures, retryInMs: delay }, 'watch interrupted');
          this.o.onState('down', retry);
        }
        await sleep(delay, this.stopCtl.signal);
      }
    }
  }

  /**
   * Returns a failure reason, or undefined once the cache holds the listed state. The list is
   * read in pages of listPageSize; every page comes from the first one's snapshot, so the
   * cache is replaced once, with a consistent set, at the resourceVersion the watch resumes
   * from. A failed page (an expired continue token: 410) restarts the list.
   */
  private async relist(): Promise<string | undefined> {
    const { labelSelector, fieldSelector } = this.o;
    const items: KindType<K>[] = [];
    let rv = '';
    let cont: string | undefined;
    try {
      do {
        const res = await this.listPage({ labelSelector, fieldSelector, limit: this.o.listPageSize ?? 500, continue: cont });
        if (this.stopped) return undefined;
        // the page's parsed JSON is this list's alone: decoded in place, as watch objects are
        for (const it of res.items ?? []) items.push(decode(this.o.kind, this.withType(it), true));
        rv = res.metadata?.resourceVersion ?? '';
        cont = res.metadata?.continue || undefined;
      } while (cont);
    } catch (err) {
      if (this.o.mayBeAbsent && statusCode(err) === 404) {
        this.o.handlers.replace([]);
        this.syncedResolve();
        return ABSENT;
      }
      return `list failed: ${describe(err)}`;
    }
    this.lists++;
    this.o.handlers.replace(items);
    this.rv = rv;
    this.o.log.debug({ items: items.length, rv: this.rv }, 'listed');
    this.syncedResolve();
    return this.rv ? undefined : 'list carried no resourceVersion';
  }

  private async listPage(params: Query): Promise<ListPage<KindType<K>>> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error('list timed out')), this.o.listTimeoutMs ?? 60_000);
      });
      return await Promise.race([this.o.client.list<KindType<K>>(this.o.path, params), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** List items come without kind/apiVersion; give them the same shape as watch objects. */
  private withType(it: KindType<K>): KindType<K> {
    const o = it as { kind?: string; apiVersion?: string };
    o.kind ??= this.o.kind;
    o.apiVersion ??= this.o.apiVersion;
    return it;
  }

  private watchOnce(): Promise<Outcome> {
    const timeoutSec = this.o.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
    const idleMs = this.o.idleTimeoutMs ?? (timeoutSec + 60) * 1000;
    const params: Query = {
      resourceVersion: this.rv,
      allowWatchBookmarks: true,
      timeoutSeconds: timeoutSec,
    };
    if (this.o.labelSelector) params.labelSelector = this.o.labelSelector;
    if (this.o.fieldSelector) params.fieldSelector = this.o.fieldSelector;
    return new Promise((resolve) => {
      const t0 = Date.now();
      let events = 0;
      let settled = false;
      let ctl: { abort(): void } | undefined;
      let idle: NodeJS.Timeout | undefined;
      const finish = (kind: Outcome['kind'], detail?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        this.abortWatch = undefined;
        ctl?.abort();
        resolve({ kind, detail, events, ms: Date.now() - t0 });
      };
      const arm = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => finish('error', `no event or bookmark for ${idleMs} ms`), idleMs);
      };
      this.abortWatch = () => finish('stopped');
      const onEvent = (type: string, obj: any): void => {
        if (settled) return;
        events++;
        arm();
        const end = this.handleEvent(type, obj);
        if (end) finish(end.kind, end.detail);
      };
      const done = (err: unknown): void => {
        if (!err) return finish('closed');
        finish(statusCode(err) === 410 ? 'gone' : 'error', `watch failed: ${describe(err)}`);
      };
      this.o.client.watch(this.o.path, params, onEvent, done).then(
        (c) => {
          ctl = c;
          if (settled) return c.abort();
          arm();
          this.o.onState('up');
        },
        (err) => finish('error', `watch failed: ${describe(err)}`),
      );
    });
  }

  /** Applies one watch event; returns how the watch ends when the event ends it. */
  private handleEvent(type: string, obj: any): { kind: 'gone' | 'error'; detail: string } | undefined {
    try {
      switch (type) {
        case 'ADDED':
        case 'MODIFIED':
          this.o.handlers.upsert(decode(this.o.kind, obj, true));
          break;
        case 'DELETED':
          this.o.handlers.remove(decode(this.o.kind, obj, true));
          break;
        case 'BOOKMARK':
          break;
        case 'ERROR': {
          const detail = `watch error ${obj?.code ?? '?'}: ${obj?.message ?? JSON.stringify(obj)}`;
          return { kind: obj?.code === 410 ? 'gone' : 'error', detail };
        }
        default:
          this.o.log.warn({ type }, 'unknown watch event type ignored');
          return undefined;
      }
      const rv = obj?.metadata?.resourceVersion;
      if (rv) this.rv = String(rv);
    } catch (err) {
      // The cache is now behind for this object; a relist puts it right.
      this.o.log.error({ err: describe(err), type }, 'watch event could not be applied; relisting');
      return { kind: 'gone', detail: 'event handler failed' };
    }
    return undefined;
  }
}

function statusCode(err: unknown): number | undefined {
  const e = err as { statusCode?: number; code?: number };
  return e?.statusCode ?? (typeof e?.code === 'number' ? e.code : undefined);
}

export function describe(err: unknown): string {
  const e = err as { code?: unknown; statusCode?: number; message?: string; body?: { message?: string } };
  const code = e?.statusCode ?? (typeof e?.code === 'number' ? e.code : undefined);
  const msg = e?.body?.message ?? e?.message?.split('\n')[0] ?? String(err);
  return code ? `HTTP ${code}: ${msg}` : msg;
}
