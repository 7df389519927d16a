// A wire-level fake of the Kubernetes API server for Services, EndpointSlices and Nodes, run
// in the test process on 127.0.0.1 so that @kubernetes/client-node talks real HTTP to it.
// It keeps one global resourceVersion counter (as etcd does), an event history per resource
// for watch resumption, applies label and field selectors on list and watch (including the
// ADDED/DELETED a watcher sees when an update moves an object into or out of its selector),
// answers a too-old resourceVersion with 410 Gone, sends bookmarks, honours timeoutSeconds,
// and pages lists by limit/continue from one snapshot. Test controls mutate objects, cut or cleanly end watches, expire history,
// delay lists and refuse connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Resource = 'services' | 'endpointslices' | 'nodes';
type Obj = Record<string, any>;
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

const RESOURCES: Record<Resource, { kind: string; apiVersion: string; prefix: string; namespaced: boolean }> = {
  services: { kind: 'Service', apiVersion: 'v1', prefix: '/api/v1', namespaced: true },
  endpointslices: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', prefix: '/apis/discovery.k8s.io/v1', namespaced: true },
  nodes: { kind: 'Node', apiVersion: 'v1', prefix: '/api/v1', namespaced: false },
};

interface HistoryEntry {
  rv: number;
  type: EventType;
  obj: Obj;
  prev?: Obj;
}

interface Matcher {
  (o: Obj): boolean;
}

interface WatchStream {
  resource: Resource;
  match: Matcher;
  res: ServerResponse;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

export interface RequestRecord {
  resource: Resource;
  verb: 'list' | 'watch';
  query: Record<string, string>;
  at: number;
}

export interface FakeApiServerOptions {
  token?: string;
  /** send a BOOKMARK this often on watches that allow them (0 = never; default 0) */
  bookmarkIntervalMs?: number;
  /** end every watch cleanly after this long, like a proxy or apiserver timeout (0 = never) */
  closeWatchesAfterMs?: number;
  /** answer a too-old watch resourceVersion with HTTP 410 instead of an ERROR event */
  goneAsHttpStatus?: boolean;
}

function key(o: Obj): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata.name}`;
}

function listItem(o: Obj): Obj {
  // A real list omits kind and apiVersion on items; watch events carry them.
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest;
}

function fieldValue(o: Obj, path: string): string | undefined {
  const v = path.split('.').reduce<any>((acc, p) => (acc == null ? undefined : acc[p]), o);
  return v == null ? undefined : String(v);
}

/** Parses the equality-based and existence label selector forms kube-proxy and kubectl use. */
export function parseLabelSelector(sel: string | undefined): Matcher {
  if (!sel) return () => true;
  const reqs = sel.split(',').map((r) => r.trim()).filter(Boolean).map((r): Matcher => {
    let m: RegExpMatchArray | null;
    if ((m = r.match(/^!([\w./-]+)$/))) return (o) => !(m![1]! in (o.metadata?.labels ?? {}));
    if ((m = r.match(/^([\w./-]+)\s*!=\s*([\w.-]*)$/))) return (o) => (o.metadata?.labels ?? {})[m![1]!] !== m![2];
    if ((m = r.match(/^([\w./-]+)\s*==?\s*([\w.-]*)$/))) return (o) => (o.metadata?.labels ?? {})[m![1]!] === m![2];
    if ((m = r.match(/^([\w./-]+)$/))) return (o) => m![1]! in (o.metadata?.labels ?? {});
    throw new Error(`unsupported label selector requirement "${r}"`);
  });
  return (o) => reqs.every((f) => f(o));
}

function parseFieldSelector(sel: string | undefined): Matcher {
  if (!sel) return () => true;
  const reqs = sel.split(',').map((r): Matcher => {
    const m = r.match(/^([\w.]+)\s*(!=|==|=)\s*(.*)$/);
    if (!m || !['metadata.name', 'metadata.namespace'].includes(m[1]!)) throw new Error(`unsupported field selector "${r}"`);
    return m[2] === '!=' ? (o) => fieldValue(o, m[1]!) !== m[3] : (o) => fieldValue(o, m[1]!) === m[3];
  });
  return (o) => reqs.every((f) => f(o));
}

export class FakeApiServer {
  readonly requests: RequestRecord[] = [];
  /** TCP connections accepted or refused, with their time: what a reconnect storm shows up as */
  readonly connections: number[] = [];
  private rv = 1;
  private readonly objects: Record<Resource, Map<string, Obj>> = { services: new Map(), endpointslices: new Map(), nodes: new Map() };
  private readonly history: Record<Resource, HistoryEntry[]> = { services: [], endpointslices: [], nodes: [] };
  /** watches starting at or after this resourceVersion can be served from history */
  private oldestResumable = 1;
  private readonly streams = new Set<WatchStream>();
  private readonly sockets = new Set<Socket>();
  private readonly listDelayMs: Partial<Record<Resource, number>> = {};
  /** paged lists in progress: continue token -> the snapshot the first page was cut from */
  private readonly snapshots = new Map<string, { body: Obj; items: Obj[] }>();
  private nextSnapshot = 1;
  private refusing = false;
  private tmp: string | undefined;

  private constructor(private readonly server: Server, readonly opts: FakeApiServerOptions) {}

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    let self!: FakeApiServer;
    const server = createServer((req, res) => self.handle(req, res));
    self = new FakeApiServer(server, opts);
    server.on('connection', (s) => {
      self.connections.push(Date.now());
      if (self.refusing) return void s.destroy();
      self.sockets.add(s);
      s.on('close', () => self.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get token(): string {
    return this.opts.token ?? 'fake-token';
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** A kubeconfig file pointing at this server, as a user would have one. */
  async writeKubeconfig(): Promise<string> {
    this.tmp ??= await mkdtemp(join(tmpdir(), 'xlb-fakeapi-'));
    const path = join(this.tmp, 'kubeconfig');
    await writeFile(path, [
      'apiVersion: v1', 'kind: Config', 'current-context: fake',
      'clusters:', '- name: fake', '  cluster:', `    server: ${this.url}`, '    insecure-skip-tls-verify: true',
      'users:', '- name: tester', '  user:', `    token: ${this.token}`,
      'contexts:', '- name: fake', '  context:', '    cluster: fake', '    user: tester',
    ].join('\n') + '\n');
    return path;
  }

  async stop(): Promise<void> {
    for (const s of this.streams) this.endStream(s);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }

  // ---- test controls ----

  /** Creates or replaces an object (plain JSON as kubectl would send it). */
  apply(resource: Resource, obj: Obj): Obj {
    const info = RESOURCES[resource];
    const stored = structuredClone(obj);
    stored.kind = info.kind;
    stored.apiVersion = info.apiVersion;
    stored.metadata = { ...(stored.metadata ?? {}) };
    if (info.namespaced) stored.metadata.namespace ??= 'default';
    else delete stored.metadata.namespace;
    const prev = this.objects[resource].get(key(stored));
    stored.metadata.uid = prev?.metadata.uid ?? `uid-${resource}-${key(stored)}`;
    stored.metadata.creationTimestamp = prev?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    stored.metadata.resourceVersion = String(++this.rv);
    this.objects[resource].set(key(stored), stored);
    this.record(resource, { rv: this.rv, type: prev ? 'MODIFIED' : 'ADDED', obj: stored, prev });
    return stored;
  }

  remove(resource: Resource, name: string, namespace?: string): void {
    const k = `${RESOURCES[resource].namespaced ? namespace ?? 'default' : ''}/${name}`;
    const prev = this.objects[resource].get(k);
    if (!prev) throw new Error(`no ${resource} ${k}`);
    this.objects[resource].delete(k);
    const obj = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(++this.rv) } };
    this.record(resource, { rv: this.rv, type: 'DELETED', obj, prev });
  }

  get(resource: Resource, name: string, namespace = 'default'): Obj | undefined {
    return this.objects[resource].get(`${RESOURCES[resource].namespaced ? namespace : ''}/${name}`);
  }

  /** Forgets the event history (etcd compaction): resuming a watch from before now gets 410. */
  expireHistory(): void {
    for (const r of Object.keys(this.history) as Resource[]) this.history[r] = [];
    this.oldestResumable = this.rv;
  }

  /** Abruptly resets every open connection (as a crashed apiserver or dead LB would). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Ends every watch stream cleanly (as the apiserver does at timeoutSeconds). */
  closeWatches(): void {
    for (const s of this.streams) this.endStream(s);
  }

  /** While true, every new connection is reset before a byte is exchanged. */
  refuseConnections(on: boolean): void {
    this.refusing = on;
    if (on) this.dropConnections();
  }

  setListDelay(resource: Resource, ms: number): void {
    this.listDelayMs[resource] = ms;
  }

  count(resource: Resource, verb: 'list' | 'watch'): number {
    return this.requests.filter((r) => r.resource === resource && r.verb === verb).length;
  }

  openWatches(resource?: Resource): number {
    return [...this.streams].filter((s) => !resource || s.resource === resource).length;
  }

  // ---- HTTP ----

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.authorization !== `Bearer ${this.token}`) return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    const route = this.route(url.pathname);
    if (!route || req.method !== 'GET') return this.status(res, 404, 'NotFound', `the server could not find the requested resource ${url.pathname}`);
    const query = Object.fromEntries(url.searchParams);
    let match: Matcher;
    try {
      const label = parseLabelSelector(query.labelSelector);
      const field = parseFieldSelector(query.fieldSelector);
      const nsOk: Matcher = route.namespace ? (o) => o.metadata.namespace === route.namespace : () => true;
      match = (o) => nsOk(o) && label(o) && field(o);
    } catch (err) {
      return this.status(res, 400, 'BadRequest', (err as Error).message);
    }
    const watch = query.watch === 'true' || query.watch === '1';
    this.requests.push({ resource: route.resource, verb: watch ? 'watch' : 'list', query, at: Date.now() });
    if (watch) this.serveWatch(route.resource, match, query, res);
    else {
      const delay = this.listDelayMs[route.resource] ?? 0;
      // The list is a snapshot taken when the request arrives, whatever the delay.
      let body: Obj;
      try {
        body = this.listPage(route.resource, match, query);
      } catch (err) {
        return this.status(res, 410, 'Expired', (err as Error).message);
      }
      setTimeout(() => this.json(res, 200, body), delay);
    }
  }

  private route(path: string): { resource: Resource; namespace?: string } | undefined {
    for (const [resource, info] of Object.entries(RESOURCES) as Array<[Resource, (typeof RESOURCES)[Resource]]>) {
      if (path === `${info.prefix}/${resource}`) return { resource };
      const m = path.match(new RegExp(`^${info.prefix}/namespaces/([^/]+)/${resource}$`));
      if (m && info.namespaced) return { resource, namespace: m[1] };
    }
    return undefined;
  }

  private listBody(resource: Resource, match: Matcher): Obj {
    const info = RESOURCES[resource];
    const items = [...this.objects[resource].values()].filter(match).map(listItem);
    return { kind: `${info.kind}List`, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.rv) }, items };
  }

  /**
   * limit/continue as the API server does them: every page comes from the snapshot the first
   * one was cut from (same resourceVersion); `continue` names the snapshot and the offset.
   */
  private listPage(resource: Resource, match: Matcher, q: Record<string, string>): Obj {
    const limit = Number(q.limit ?? 0);
    let snap: { body: Obj; items: Obj[] };
    let offset = 0;
    if (q.continue) {
      const [id, at] = q.continue.split(':');
      const found = this.snapshots.get(id ?? '');
      if (!found) throw new Error(`the provided continue parameter is too old or unknown: ${q.continue}`);
      snap = found;
      offset = Number(at);
    } else {
      const body = this.listBody(resource, match);
      if (!(limit > 0)) return body;
      snap = { body, items: body.items as Obj[] };
    }
    const items = limit > 0 ? snap.items.slice(offset, offset + limit) : snap.items.slice(offset);
    const next = offset + items.length;
    const metadata: Obj = { resourceVersion: snap.body.metadata.resourceVersion };
    if (next < snap.items.length) {
      const id = q.continue?.split(':')[0] ?? String(this.nextSnapshot++);
      this.snapshots.set(id, snap);
      metadata.continue = `${id}:${next}`;
    } else if (q.continue) this.snapshots.delete(q.continue.split(':')[0]!);
    return { ...snap.body, metadata, items };
  }

  /** Forgets every paged list in progress: its next page gets 410, as an expired token does. */
  expireContinueTokens(): void {
    this.snapshots.clear();
  }

  private serveWatch(resource: Resource, match: Matcher, q: Record<string, string>, res: ServerResponse): void {
    const from = q.resourceVersion && q.resourceVersion !== '0' ? Number(q.resourceVersion) : undefined;
    const gone = from !== undefined && (Number.isNaN(from) || from < this.oldestResumable);
    if (gone && this.opts.goneAsHttpStatus) return this.status(res, 410, 'Expired', `too old resource version: ${from} (${this.oldestResumable})`);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (gone) {
      this.writeEvent(res, 'ERROR', this.statusObj(410, 'Expired', `too old resource version: ${from} (${this.oldestResumable})`));
      return void res.end();
    }
    const stream: WatchStream = { resource, match, res, bookmarks: q.allowWatchBookmarks === 'true', timers: [] };
    this.streams.add(stream);
    res.on('close', () => this.endStream(stream));
    if (from === undefined) {
      // No resourceVersion: the current state as synthetic ADDED events, then changes.
      for (const o of this.objects[resource].values()) if (match(o)) this.writeEvent(res, 'ADDED', o);
    } else {
      for (const e of this.history[resource]) if (e.rv > from) this.deliver(stream, e);
    }
    this.armTimers(stream, q);
  }

  private armTimers(stream: WatchStream, q: Record<string, string>): void {
    const timeoutMs = Number(q.timeoutSeconds ?? 0) * 1000;
    const closeAfter = [timeoutMs, this.opts.closeWatchesAfterMs ?? 0].filter((x) => x > 0);
    if (closeAfter.length) stream.timers.push(setTimeout(() => this.endStream(stream), Math.min(...closeAfter)));
    const every = this.opts.bookmarkIntervalMs ?? 0;
    if (stream.bookmarks && every > 0) {
      const info = RESOURCES[stream.resource];
      stream.timers.push(setInterval(() => this.writeEvent(stream.res, 'BOOKMARK', { kind: info.kind, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.rv) } }), every));
    }
  }

  private record(resource: Resource, e: HistoryEntry): void {
    this.history[resource].push(e);
    for (const s of this.streams) if (s.resource === resource) this.deliver(s, e);
  }

  /** What a watcher with this selector sees of one change. */
  private deliver(s: WatchStream, e: HistoryEntry): void {
    const now = e.type !== 'DELETED' && s.match(e.obj);
    const before = e.prev !== undefined && s.match(e.prev);
    if (e.type === 'DELETED') {
      if (before) this.writeEvent(s.res, 'DELETED', e.obj);
    } else if (now && before) this.writeEvent(s.res, 'MODIFIED', e.obj);
    else if (now) this.writeEvent(s.res, 'ADDED', e.obj);
    else if (before) this.writeEvent(s.res, 'DELETED', e.obj);
  }

  private endStream(s: WatchStream): void {
    if (!this.streams.delete(s)) return;
    for (const t of s.timers) clearTimeout(t);
    if (!s.res.writableEnded) s.res.end();
  }

  private writeEvent(res: ServerResponse, type: string, object: Obj): void {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify({ type, object }) + '\n');
  }

  private statusObj(code: number, reason: string, message: string): Obj {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, this.statusObj(code, reason, message));
  }

  private json(res: ServerResponse, code: number, body: Obj): void {
    if (res.destroyed) return;
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }
}
