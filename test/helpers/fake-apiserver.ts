// A wire-level fake of the Kubernetes API server for Services, EndpointSlices, Nodes,
// LoadBalancerIPPools (xlb.io/v1alpha1), Leases and Events, run in the test process on 127.0.0.1 so that @kubernetes/client-node talks real HTTP to it.
// It keeps one global resourceVersion counter (as etcd does), an event history per resource
// for watch resumption, applies label and field selectors on list and watch (including the
// ADDED/DELETED a watcher sees when an update moves an object into or out of its selector),
// answers a too-old resourceVersion with 410 Gone, sends bookmarks, honours timeoutSeconds,
// and pages lists by limit/continue from one snapshot. Writes: get, create (POST), update (PUT,
// with a resourceVersion precondition: 409 Conflict when stale), JSON merge patch, and the
// Service status subresource (only .status changes). Test controls mutate objects, cut or cleanly end watches, expire history,
// delay lists and refuse connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Resource = 'services' | 'endpointslices' | 'nodes' | 'loadbalancerippools' | 'leases' | 'events';
type Obj = Record<string, any>;
type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

const RESOURCES: Record<Resource, { kind: string; apiVersion: string; prefix: string; namespaced: boolean }> = {
  services: { kind: 'Service', apiVersion: 'v1', prefix: '/api/v1', namespaced: true },
  endpointslices: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', prefix: '/apis/discovery.k8s.io/v1', namespaced: true },
  nodes: { kind: 'Node', apiVersion: 'v1', prefix: '/api/v1', namespaced: false },
  loadbalancerippools: { kind: 'LoadBalancerIPPool', apiVersion: 'xlb.io/v1alpha1', prefix: '/apis/xlb.io/v1alpha1', namespaced: false },
  leases: { kind: 'Lease', apiVersion: 'coordination.k8s.io/v1', prefix: '/apis/coordination.k8s.io/v1', namespaced: true },
  events: { kind: 'Event', apiVersion: 'v1', prefix: '/api/v1', namespaced: true },
};
const ALL = Object.keys(RESOURCES) as Resource[];
/** kinds with a status subresource (the pool CRD declares one) */
const WITH_STATUS = new Set<Resource>(['services', 'loadbalancerippools']);
const perResource = <T>(f: () => T): Record<Resource, T> => Object.fromEntries(ALL.map((r) => [r, f()])) as Record<Resource, T>;

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

export type Verb = 'list' | 'watch' | 'get' | 'create' | 'update' | 'patch';

export interface RequestRecord {
  resource: Resource;
  verb: Verb;
  /** set for get, create, update and patch */
  name?: string;
  namespace?: string;
  subresource?: string;
  /** the request body of a write */
  body?: Obj;
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
  /** resources this server does not serve (404), e.g. a CRD that is not installed */
  absent?: Resource[];
  /** listen address (default 127.0.0.1, a free port) */
  host?: string;
  port?: number;
}

interface Route {
  resource: Resource;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
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
  private readonly objects: Record<Resource, Map<string, Obj>> = perResource(() => new Map());
  private readonly history: Record<Resource, HistoryEntry[]> = perResource(() => []);
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
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
    return self;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
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
    // A test may set creationTimestamp (allocation order depends on it); the server keeps it.
    stored.metadata.creationTimestamp = prev?.metadata.creationTimestamp ?? obj.metadata?.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
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

  /** Every object of a resource (events: what the agents recorded). */
  all(resource: Resource): Obj[] {
    return [...this.objects[resource].values()];
  }

  /** Serves or stops serving a resource (installing or removing a CRD). */
  setAbsent(resource: Resource, absent: boolean): void {
    const set = new Set(this.opts.absent ?? []);
    if (absent) set.add(resource); else set.delete(resource);
    this.opts.absent = [...set];
  }

  count(resource: Resource, verb: Verb): number {
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
    if (!route || this.opts.absent?.includes(route.resource)) return this.status(res, 404, 'NotFound', `the server could not find the requested resource ${url.pathname}`);
    const query = Object.fromEntries(url.searchParams);
    if (route.name !== undefined || req.method !== 'GET') return void this.readBody(req).then((body) => this.write(req.method ?? '', route, query, body, req.headers['content-type'] ?? '', res));
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

  private route(path: string): Route | undefined {
    for (const [resource, info] of Object.entries(RESOURCES) as Array<[Resource, (typeof RESOURCES)[Resource]]>) {
      const ns = info.namespaced ? '(?:/namespaces/([^/]+))?' : '()';
      const m = path.match(new RegExp(`^${info.prefix}${ns}/${resource}(?:/([^/]+)(?:/(status))?)?$`));
      if (m) return { resource, namespace: m[1] || undefined, name: m[2], subresource: m[3] };
    }
    return undefined;
  }

  private readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  }

  /** get, create, update, merge patch; the status subresource changes only .status. */
  private write(method: string, r: Route, query: Record<string, string>, text: string, type: string, res: ServerResponse): void {
    const info = RESOURCES[r.resource];
    if (info.namespaced && !r.namespace) return this.status(res, 405, 'MethodNotAllowed', 'a namespaced object needs its namespace in the path');
    if (r.subresource && !WITH_STATUS.has(r.resource)) return this.status(res, 404, 'NotFound', `no subresource ${r.subresource} on ${r.resource}`);
    const verb = ({ GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch' } as Record<string, Verb>)[method];
    if (!verb || (verb === 'create') !== (r.name === undefined)) return this.status(res, 405, 'MethodNotAllowed', `${method} is not allowed here`);
    let body: Obj | undefined;
    try {
      body = text ? JSON.parse(text) as Obj : undefined;
    } catch {
      return this.status(res, 400, 'BadRequest', 'the body is not JSON');
    }
    this.requests.push({ resource: r.resource, verb, query, at: Date.now(), name: r.name, namespace: r.namespace, subresource: r.subresource, body });
    const ns = info.namespaced ? r.namespace : undefined;
    const name = r.name ?? body?.metadata?.name ?? (body?.metadata?.generateName ? `${body.metadata.generateName}${(this.rv + 1).toString(36)}` : undefined);
    if (!name) return this.status(res, 422, 'Invalid', 'metadata.name: Required value');
    const current = this.objects[r.resource].get(`${ns ?? ''}/${name}`);
    const what = `${r.resource} "${name}"`;
    if (verb === 'get') return current ? this.json(res, 200, current) : this.status(res, 404, 'NotFound', `${what} not found`);
    if (verb === 'create') {
      if (current) return this.status(res, 409, 'AlreadyExists', `${what} already exists`);
      return this.json(res, 201, this.apply(r.resource, { ...body, metadata: { ...body?.metadata, name, namespace: ns } }));
    }
    if (!current) return this.status(res, 404, 'NotFound', `${what} not found`);
    if (verb === 'patch' && !type.startsWith('application/merge-patch+json')) return this.status(res, 415, 'UnsupportedMediaType', `this fake applies only merge patches, not ${type}`);
    const next = verb === 'patch' ? mergePatch(current, body) as Obj : body ?? {};
    const precondition = verb === 'patch' ? body?.metadata?.resourceVersion : next.metadata?.resourceVersion;
    if (precondition && precondition !== current.metadata.resourceVersion) {
      return this.status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${what}: the object has been modified; please apply your changes to the latest version and try again`);
    }
    // The status subresource writes only .status; the main resource of such a kind never does.
    const stored: Obj = r.subresource === 'status' ? { ...current, status: next.status }
      : WITH_STATUS.has(r.resource) ? { ...next, status: current.status } : { ...next };
    stored.metadata = { ...stored.metadata, name, namespace: ns };
    this.json(res, 200, this.apply(r.resource, stored));
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
