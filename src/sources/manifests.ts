// Source backed by a directory of ordinary Kubernetes YAML (what `kubectl apply -f dir` reads,
// not recursive). Files are watched with fs.watch plus a periodic stat rescan, because
// fs.watch misses some editors' write-to-temp-then-rename saves and is unreliable on some
// filesystems. A file that fails to parse or validate keeps its last good objects in effect:
// a typo while editing must not withdraw a working Service. A file that cannot be read (a
// symlink loop), is over --manifest-max-bytes or nests deeper than --manifest-max-depth is
// reported the same way; parsing runs off the agent's thread for all but small files
// (manifest-parse.ts).
import { createHash } from 'node:crypto';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { child } from '../log.js';
import { BaseSource } from './base.js';
import { decode } from './decode.js';
import { packSlice } from './packed.js';
import { INLINE_BYTES, MANIFEST_MAX_BYTES, MANIFEST_MAX_DEPTH, parseInWorker, parseManifest, type ParseResult } from './manifest-parse.js';
import { validateObject } from './validate.js';
import { POOL_KIND, withAddresses, type LoadBalancerIPPool } from './lbpools.js';
import type { Problem, Source, V1EndpointSlice, V1Node, V1Service } from './types.js';

export interface ManifestsSourceOptions {
  dir: string;
  /** the agent's node: the Node object with this name is the own node */
  nodeName: string;
  /** quiet time after a change notification before rereading (default 100 ms) */
  debounceMs?: number;
  /** stat rescan period, the fallback for missed notifications (default 2000 ms) */
  rescanMs?: number;
  /** use fs.watch notifications (default true); the rescan runs either way */
  fsWatch?: boolean;
  /** larger files are skipped and reported (default MANIFEST_MAX_BYTES) */
  maxBytes?: number;
  /** files nested deeper are skipped and reported (default MANIFEST_MAX_DEPTH) */
  maxDepth?: number;
  log?: Logger;
}

type Kind = 'Service' | 'EndpointSlice' | 'Node' | typeof POOL_KIND;
interface ParsedObject {
  kind: Kind;
  key: string; // kind/namespace/name
  doc: number;
  obj: V1Service | V1EndpointSlice | V1Node | LoadBalancerIPPool;
}
interface FileState {
  sig: string; // stat signature last read
  hash: string; // digest of the content last read: a file touched but unchanged is not parsed again
  good: ParsedObject[]; // objects of the last version that parsed and validated
}

const MANIFEST_FILE = /^[^.].*\.(ya?ml|json)$/i;
/** Objects validated between two yields to the event loop. */
const OBJECTS_PER_TURN = 256;
const KINDS = new Set<string>(['Service', 'EndpointSlice', 'Node', POOL_KIND]);
const CLUSTER_SCOPED = new Set<string>(['Node', POOL_KIND]);

export class ManifestsSource extends BaseSource implements Source {
  private readonly files = new Map<string, FileState>();
  private readonly log: Logger;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private readonly aborter = new AbortController();
  private dirOk = true;
  private stopped = false;
  private reading = { done: 0, total: 0 };

  constructor(private readonly opts: ManifestsSourceOptions) {
    super(opts.nodeName, 'content');
    this.log = opts.log ?? child('sources.manifests');
  }

  /** Every Node object in the directory: each agent chooses announcers from them. */
  nodes(): V1Node[] {
    return this.store.nodes();
  }

  async start(): Promise<void> {
    this.stopped = false;
    const st = await stat(this.opts.dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`manifests directory ${this.opts.dir} does not exist or is not a directory`);
    await this.scan();
    this.isSynced = true;
    this.emit('connection', 'up', `manifests ${this.opts.dir}`);
    if (this.opts.fsWatch !== false) this.startWatching();
    this.rescanTimer = setInterval(() => this.requestScan(), this.opts.rescanMs ?? 2000);
    this.rescanTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.aborter.abort();
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.rescanTimer);
    clearTimeout(this.debounceTimer);
    await this.scanning;
  }

  private startWatching(): void {
    try {
      this.watcher = fsWatch(this.opts.dir, () => this.onNotify());
      this.watcher.on('error', (err) => {
        // The periodic rescan keeps working without notifications.
        this.log.warn({ err: err.message, dir: this.opts.dir }, 'fs.watch failed; relying on rescans');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message, dir: this.opts.dir }, 'fs.watch unavailable; relying on rescans');
    }
  }

  private onNotify(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.requestScan(), this.opts.debounceMs ?? 100);
  }

  /** Scans never overlap; a request during a scan runs one more afterwards. */
  private requestScan(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.rescanRequested = true;
      return;
    }
    this.scanning = this.scan()
      .catch((err) => this.log.error({ err: (err as Error).message }, 'manifests scan failed'))
      .finally(() => {
        this.scanning = undefined;
        if (this.rescanRequested && !this.stopped) {
          this.rescanRequested = false;
          this.requestScan();
        }
      });
  }

  private async scan(): Promise<void> {
    this.reading = { done: 0, total: 0 };
    try {
      await this.scanFiles();
    } finally {
      this.reading = { done: 0, total: 0 };
    }
  }

  private async scanFiles(): Promise<void> {
    const names = await this.listFiles();
    if (!names) return;
    let changed = false;
    for (const name of [...this.files.keys()]) {
      if (!names.includes(name)) {
        this.files.delete(name);
        changed = true;
      }
    }
    for (const name of names) {
      if (await this.refreshFile(name)) changed = true;
    }
    if (changed && !this.stopped) this.apply();
  }

  private async listFiles(): Promise<string[] | undefined> {
    try {
      const names = (await readdir(this.opts.dir)).filter((n) => MANIFEST_FILE.test(n)).sort();
      if (!this.dirOk) this.emit('connection', 'up', `manifests ${this.opts.dir}`);
      this.dirOk = true;
      return names;
    } catch (err) {
      // Keep serving the last state: the directory may be in the middle of being replaced.
      if (this.dirOk) this.emit('connection', 'down', `cannot read ${this.opts.dir}: ${(err as Error).message}`);
      this.dirOk = false;
      return undefined;
    }
  }

  /** Rereads one file if it changed; true when its set of good objects changed. */
  private async refreshFile(name: string): Promise<boolean> {
    const path = join(this.opts.dir, name);
    const maxBytes = this.opts.maxBytes ?? MANIFEST_MAX_BYTES;
    let sig: string;
    let text: string;
    let hash: string;
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) return false;
      sig = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      const prev = this.files.get(name);
      if (prev && prev.sig === sig) return false;
      if (st.size > maxBytes) return this.skipFile(name, sig, `${st.size} bytes, over --manifest-max-bytes ${maxBytes}; skipped`);
      // Hashed as read: hashing the decoded string encoded all of it to UTF-8 again.
      const bytes = await readFile(path);
      hash = digest(bytes);
      if (prev && prev.hash === hash) {
        prev.sig = sig;
        return false;
      }
      size = bytes.length;
      text = bytes.toString('utf8');
    } catch (e) {
      return this.unreadable(name, path, e as NodeJS.ErrnoException);
    }
    if (size > maxBytes) return this.skipFile(name, sig, `${size} bytes, over --manifest-max-bytes ${maxBytes}; skipped`);
    const maxDepth = this.opts.maxDepth ?? MANIFEST_MAX_DEPTH;
    const res = size <= INLINE_BYTES ? parseManifest(text, maxDepth) : await parseInWorker(text, maxDepth, this.aborter.signal);
    if (this.stopped) return false;
    if ('skipped' in res) return this.skipFile(name, sig, res.skipped, hash);
    const parsed = await this.parseFile(name, res);
    const prev = this.files.get(name);
    if (parsed === undefined) {
      // Invalid: remember its digest so it is not reported again, keep the last good objects.
      this.files.set(name, { sig, hash, good: prev?.good ?? [] });
      return false;
    }
    this.files.set(name, { sig, hash, good: parsed });
    return true;
  }

  /** A file that cannot be read: gone (the next scan drops it) or reported once per cause. */
  private async unreadable(name: string, path: string, e: NodeJS.ErrnoException): Promise<boolean> {
    if (e.code === 'ENOENT' && !(await lstat(path).then((l) => l.isSymbolicLink(), () => false))) return false;
    const reason = e.code === 'ELOOP' ? 'symlink loop (ELOOP): cannot be read; skipped'
      : e.code === 'ENOENT' ? 'symlink to a file that does not exist; skipped'
        : `cannot be read (${e.code ?? e.message}); skipped`;
    return this.skipFile(name, `error:${e.code}`, reason);
  }

  /** Reports a file once per version and keeps its last good objects; never a change. */
  private skipFile(name: string, sig: string, reason: string, hash = ''): false {
    const prev = this.files.get(name);
    if (prev?.sig === sig) return false;
    this.problem({ file: name, reason: prev?.good.length ? `${reason}, its last good objects stay` : reason });
    this.files.set(name, { sig, hash, good: prev?.good ?? [] });
    return false;
  }

  /** The file's objects, or undefined (problems reported) when any document is invalid. */
  private async parseFile(file: string, res: Extract<ParseResult, { docs: unknown }>): Promise<ParsedObject[] | undefined> {
    const out: ParsedObject[] = [];
    let bad = false;
    let done = 0;
    this.reading.total += res.docs.length;
    for (const [i, d] of res.docs.entries()) {
      this.reading.done++;
      if ('error' in d) {
        this.problem({ file, doc: i, reason: d.error });
        bad = true;
        continue;
      }
      if (d.value === null || d.value === undefined) continue; // empty document, e.g. a trailing ---
      for (const item of expandList(d.value)) {
        if (!this.parseObject(file, i, item, out)) bad = true;
        // Thousands of objects: let /healthz and the API answer in between.
        if (++done % OBJECTS_PER_TURN === 0) await new Promise((r) => setImmediate(r));
      }
    }
    if (bad) this.log.warn({ file }, 'manifest file invalid; keeping its last good state');
    return bad ? undefined : out;
  }

  /** Documents read so far of those found, while a scan runs. */
  get progress(): { stage: string; done: number; total: number } | undefined {
    return this.reading.total ? { stage: 'read manifest documents', ...this.reading } : undefined;
  }

  private parseObject(file: string, doc: number, raw: unknown, out: ParsedObject[]): boolean {
    const o = raw as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    const kind = typeof o?.kind === 'string' ? o.kind : undefined;
    const name = typeof o?.metadata?.name === 'string' ? o.metadata.name : undefined;
    const reason = validateObject(raw);
    if (reason) {
      this.problem({ file, doc, kind, name, reason });
      return false;
    }
    if (!KINDS.has(kind!)) {
      this.problem({ file, doc, kind, name, reason: `kind ${kind} ignored` });
      return true;
    }
    const k = kind as Kind;
    const cluster = CLUSTER_SCOPED.has(k);
    const withNs = cluster ? raw : defaultNamespace(raw as { metadata: Record<string, unknown> });
    const ns = cluster ? '' : ((withNs as { metadata: { namespace: string } }).metadata.namespace);
    // The parser's objects are this source's own: converted in place, not copied.
    // joined: one flat string, kept as long as the file's objects (a template leaves a tree of concatenations)
    // A slice is kept packed (packed.ts) here as in the store: the same object, held by both.
    const obj = decode(k, withNs, true);
    out.push({ kind: k, key: [k, ns, name].join('/'), doc, obj: k === 'EndpointSlice' ? packSlice(obj as V1EndpointSlice) : obj });
    return true;
  }

  /** Union of every file's good objects into the store; the first file (by name) wins a clash. */
  private apply(): void {
    const seen = new Map<string, string>();
    const services: V1Service[] = [];
    const slices: V1EndpointSlice[] = [];
    const nodes: V1Node[] = [];
    const pools: LoadBalancerIPPool[] = [];
    for (const [file, st] of [...this.files.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      for (const p of st.good) {
        const first = seen.get(p.key);
        if (first !== undefined) {
          this.problem({ file, doc: p.doc, kind: p.kind, name: p.obj.metadata?.name, reason: `${p.kind} ${keyName(p.key)} is already defined in ${first}; ignored` });
          continue;
        }
        seen.set(p.key, file);
        if (p.kind === 'Service') services.push(p.obj as V1Service);
        else if (p.kind === 'EndpointSlice') slices.push(p.obj as V1EndpointSlice);
        else if (p.kind === POOL_KIND) pools.push(p.obj as LoadBalancerIPPool);
        else nodes.push(p.obj as V1Node);
      }
    }
    // Slices before Services: a new Service's first change event then sees its endpoints.
    this.store.replaceSlices(slices);
    this.store.replaceServices(withAddresses(services, pools));
    this.store.replaceNodes(nodes);
  }

  protected override problem(p: Problem): void {
    this.log.warn(p, 'manifest problem');
    super.problem(p);
  }
}

/** Content digest (the text itself was kept before: 26 MB for 10,000 Services x 10 endpoints). */
function digest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('base64');
}

function expandList(v: unknown): unknown[] {
  const o = v as { kind?: unknown; items?: unknown };
  if (o && typeof o === 'object' && typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) return o.items;
  return [v];
}

function defaultNamespace(o: { metadata: Record<string, unknown> }): unknown {
  return o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: 'default' } };
}

function keyName(key: string): string {
  const [, ns, name] = key.split('/');
  return ns ? `${ns}/${name}` : name!;
}
