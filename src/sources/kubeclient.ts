// The agent's own Kubernetes API client: the few calls the kube source makes (paged lists,
// watches, Leases, Events, status merge patches) as plain HTTP(S) with node's http/https and
// JSON. It replaces @kubernetes/client-node in the agent process: that library's module graph
// (~700 generated models, its fetch stack, their source text kept by V8) cost the agent ~45 MB
// of RSS in kube mode for calls that are each one request. Objects come and go as the API
// server's JSON, so lists need no serializer (decode() shapes them as watch events are).
//
// Credentials as the kube source uses them: a bearer token or a token file (reread, so a
// rotated service-account token keeps working), a client certificate, a CA (file or data),
// or insecureSkipTLSVerify for a test server. A kubeconfig whose user runs an exec plugin or
// an auth provider is refused with a clear error: the agent runs with a service account.
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { dirname, isAbsolute, resolve } from 'node:path';
import { load as loadYaml } from 'js-yaml';

/** Where the API server is and how to authenticate to it (a kubeconfig's cluster and user, resolved). */
export interface KubeClusterConfig {
  server: string;
  caFile?: string;
  /** PEM */
  caData?: string;
  insecureSkipTLSVerify?: boolean;
  token?: string;
  /** reread at most every TOKEN_REREAD_MS */
  tokenFile?: string;
  certFile?: string;
  keyFile?: string;
  /** PEM */
  certData?: string;
  keyData?: string;
}

/** A failed request: the HTTP status and the API server's Status object (when it sent one). */
export class ApiError extends Error {
  constructor(readonly code: number, readonly body: { message?: string; reason?: string } | undefined) {
    super(`HTTP ${code}: ${body?.message ?? 'request failed'}`);
  }
}

export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export type Query = Record<string, string | number | boolean | undefined>;

/** A merge patch: lists are replaced as a whole; metadata.resourceVersion, when set, is a precondition. */
const MERGE_PATCH = 'application/merge-patch+json';
const TOKEN_REREAD_MS = 60_000;

export class KubeClient {
  private agent: HttpAgent | undefined;
  private token: { value: string; at: number } | undefined;
  private readonly base: URL;

  constructor(readonly config: KubeClusterConfig) {
    this.base = new URL(config.server);
  }

  get server(): string {
    return this.config.server;
  }

  /** One request with a JSON answer; a status of 300 or more rejects with an ApiError. */
  async request<T>(method: string, path: string, o: { query?: Query; body?: unknown; contentType?: string } = {}): Promise<T> {
    const res = await this.send(method, path, o.query, o.body, o.contentType);
    const text = await readAll(res);
    if ((res.statusCode ?? 0) >= 300) throw new ApiError(res.statusCode ?? 0, parseStatus(text));
    return JSON.parse(text) as T;
  }

  /** One page of a collection (limit/continue). */
  list<T>(path: string, query: Query): Promise<ListPage<T>> {
    return this.request('GET', path, { query });
  }

  get<T>(path: string): Promise<T> {
    return this.request('GET', path);
  }

  create<T>(path: string, body: T): Promise<T> {
    return this.request('POST', path, { body });
  }

  replace<T>(path: string, body: T): Promise<T> {
    return this.request('PUT', path, { body });
  }

  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request('PATCH', path, { body, contentType: MERGE_PATCH });
  }

  /**
   * A watch: `onEvent(type, object)` per line of the stream, `done(err)` once when it ends
   * (undefined: the server closed it). Resolves once the server has answered, with a way to
   * end it; a status other than 200 reaches `done` as an ApiError (410 included).
   */
  async watch(path: string, query: Query, onEvent: (type: string, obj: unknown) => void, done: (err?: unknown) => void): Promise<{ abort(): void }> {
    const res = await this.send('GET', path, { ...query, watch: true });
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      done(err);
    };
    const abort = (): void => {
      ended = true;
      res.destroy();
    };
    if (res.statusCode !== 200) {
      readAll(res).then((text) => end(new ApiError(res.statusCode ?? 0, parseStatus(text))), end);
      return { abort };
    }
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while (!ended && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let ev: { type?: string; object?: unknown };
        try {
          ev = JSON.parse(line) as typeof ev;
        } catch {
          res.destroy();
          end(new Error(`watch stream: a line that is not JSON (${line.slice(0, 80)})`));
          return;
        }
        onEvent(String(ev.type), ev.object);
      }
    });
    res.on('end', () => end());
    res.on('error', end);
    res.on('close', () => end(res.complete ? undefined : new Error('watch connection closed')));
    return { abort };
  }

  private send(method: string, path: string, query: Query | undefined, body?: unknown, contentType?: string): Promise<IncomingMessage> {
    const url = new URL(this.base.pathname.replace(/\/+$/, '') + path, this.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = this.bearer();
    if (token) headers.Authorization = `Bearer ${token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const tls = url.protocol === 'https:';
    const agent = this.httpAgent(tls);
    return new Promise((res, rej) => {
      const req = (tls ? httpsRequest : httpRequest)(url, { method, headers, agent }, res);
      req.on('error', rej);
      req.end(payload);
    });
  }

  /** keep-alive, one per client; the CA and certificate files are read when it is made */
  private httpAgent(tls: boolean): HttpAgent {
    if (this.agent) return this.agent;
    const c = this.config;
    if (!tls) return (this.agent = new HttpAgent({ keepAlive: true }));
    return (this.agent = new HttpsAgent({
      keepAlive: true,
      rejectUnauthorized: !c.insecureSkipTLSVerify,
      ca: c.caData ?? (c.caFile ? readFileSync(c.caFile, 'utf8') : undefined),
      cert: c.certData ?? (c.certFile ? readFileSync(c.certFile, 'utf8') : undefined),
      key: c.keyData ?? (c.keyFile ? readFileSync(c.keyFile, 'utf8') : undefined),
    }));
  }

  private bearer(): string | undefined {
    const c = this.config;
    if (c.token) return c.token;
    if (!c.tokenFile) return undefined;
    const now = Date.now();
    if (!this.token || now - this.token.at > TOKEN_REREAD_MS) this.token = { value: readFileSync(c.tokenFile, 'utf8').trim(), at: now };
    return this.token.value;
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    const parts: Buffer[] = [];
    res.on('data', (b: Buffer) => parts.push(b));
    res.on('end', () => ok(Buffer.concat(parts).toString('utf8')));
    res.on('error', fail);
  });
}

function parseStatus(text: string): { message?: string; reason?: string } | undefined {
  try {
    const s = JSON.parse(text) as { message?: string; reason?: string };
    return typeof s === 'object' && s ? s : undefined;
  } catch {
    return text ? { message: text.split('\n')[0]!.slice(0, 200) } : undefined;
  }
}

type Named<T> = { name?: string } & T;

/**
 * The cluster and user of a kubeconfig's current context (or `context`), paths relative to
 * the file, as kubectl reads them.
 */
export function readKubeconfig(file: string, context?: string): KubeClusterConfig {
  const doc = loadYaml(readFileSync(file, 'utf8')) as {
    'current-context'?: string;
    contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
    clusters?: Named<{ cluster?: Record<string, unknown> }>[];
    users?: Named<{ user?: Record<string, unknown> }>[];
  } | undefined;
  const ctxName = context ?? doc?.['current-context'];
  const ctx = doc?.contexts?.find((c) => c.name === ctxName)?.context;
  const cluster = ctx && doc?.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') throw new Error(`kubeconfig ${file} has no current cluster (set a context)`);
  const user = (ctx.user && doc?.users?.find((u) => u.name === ctx.user)?.user) || {};
  if (user.exec || user['auth-provider']) {
    throw new Error(`kubeconfig ${file}: user ${ctx.user} gets credentials from an ${user.exec ? 'exec plugin' : 'auth provider'}, which xlb does not run; use a token, a token file or a client certificate`);
  }
  const path = (v: unknown): string | undefined => (typeof v === 'string' && v ? (isAbsolute(v) ? v : resolve(dirname(file), v)) : undefined);
  const data = (v: unknown): string | undefined => (typeof v === 'string' && v ? Buffer.from(v, 'base64').toString('utf8') : undefined);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
  return {
    server: cluster.server,
    caFile: path(cluster['certificate-authority']),
    caData: data(cluster['certificate-authority-data']),
    insecureSkipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
    token: str(user.token),
    tokenFile: path(user.tokenFile ?? user['token-file']),
    certFile: path(user['client-certificate']),
    keyFile: path(user['client-key']),
    certData: data(user['client-certificate-data']),
    keyData: data(user['client-key-data']),
  };
}
