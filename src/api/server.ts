// The xlb.v1.Status gRPC server: a unix socket only root can open (mode 0600), optionally
// TCP too, with grpc.health.v1 and server reflection (so grpcurl works without the .proto).
// The socket's file mode is its access control, so it serves every call. TCP reaches anyone
// on the network: there the state-changing calls (Toggle) are refused unless clients
// authenticate, by a client certificate the configured CA signed (mTLS) or a bearer token.
import { chmod, lstat, mkdir, mkdtemp, rename, rm, rmdir } from 'node:fs/promises';
import { once } from 'node:events';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { child } from '../log.js';
import { eventToMsg, mapToMsg, mapsToMsg, serviceToMsg, statsToMsg, statusToMsg } from './convert.js';
import type { DecodedMap } from './generated/xlb/v1/DecodedMap.js';
import type { ListMapsRequest__Output } from './generated/xlb/v1/ListMapsRequest.js';
import type { ServiceFilter__Output } from './generated/xlb/v1/ServiceFilter.js';
import type { StatusHandlers } from './generated/xlb/v1/Status.js';
import { LOADER_OPTIONS, loadStatusProto, protoPath } from './proto.js';
import { ViewError, type AgentView, type ProgrammedEvent, type ServiceFilter } from './view.js';

// Resolved per use so a logger installed after import (tests, the agent's config) applies.
const log = () => child('api');

export const STATUS_SERVICE = 'xlb.v1.Status';

export interface ApiServerOptions {
  socketPath: string;
  /** host:port, e.g. 127.0.0.1:9901; port 0 picks a free one (see tcpPort) */
  tcpAddress?: string;
  /** how TCP clients authenticate; none: TCP serves the read calls only */
  tcpAuth?: TcpAuth;
}

export interface TcpAuth {
  /** PEM. TLS with the server's certificate; with `ca`, clients must present one it signed (mTLS). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** every TCP call must carry `authorization: Bearer <token>` */
  token?: string;
}

/** Calls that change the agent's state: over TCP only for authenticated clients. */
const WRITE_RPCS = new Set(['Toggle']);

/** Reads the files the --api-tls-* and --api-token-file flags name; one clear line when one is unusable. */
export function readTcpAuth(files: { ca?: string; cert?: string; key?: string; tokenFile?: string }): TcpAuth | undefined {
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${flag} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  };
  const auth: TcpAuth = {};
  if (files.cert && files.key) {
    auth.tls = { cert: read('--api-tls-cert', files.cert), key: read('--api-tls-key', files.key) };
    if (files.ca) auth.tls.ca = read('--api-tls-ca', files.ca);
  }
  if (files.tokenFile) {
    auth.token = read('--api-token-file', files.tokenFile).toString('utf8').trim();
    if (!auth.token) throw new Error(`--api-token-file ${files.tokenFile} is empty: put the bearer token in it`);
  }
  return auth.tls || auth.token ? auth : undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Why a TCP call is refused, or undefined when it may run. */
function refusal(rpc: string, metadata: grpc.Metadata, auth: TcpAuth | undefined): Partial<grpc.ServiceError> | undefined {
  if (auth?.token !== undefined) {
    const got = String(metadata.get('authorization')[0] ?? '');
    const ok = got.startsWith('Bearer ') && timingSafeEqual(digest(got.slice(7)), digest(auth.token));
    if (!ok) return { code: grpc.status.UNAUTHENTICATED, details: 'this TCP API needs the bearer token of --api-token-file (xlb --api-token-file FILE)' };
    return undefined;
  }
  if (WRITE_RPCS.has(rpc) && !auth?.tls?.ca) {
    return {
      code: grpc.status.PERMISSION_DENIED,
      details: `${rpc} changes state and is not served over TCP without authentication: use the unix socket on the node, or configure --api-tls-ca or --api-token-file`,
    };
  }
  return undefined;
}

/** The handlers as TCP serves them: each call checked by `refusal` first. */
function guarded(h: StatusHandlers, def: grpc.ServiceDefinition, auth: TcpAuth | undefined): StatusHandlers {
  const out: Record<string, unknown> = {};
  for (const [rpc, fn] of Object.entries(h)) {
    out[rpc] = def[rpc]!.responseStream
      ? (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const no = refusal(rpc, call.metadata, auth);
          if (no) call.emit('error', no); else (fn as (c: typeof call) => void)(call);
        }
      : (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
          const no = refusal(rpc, call.metadata, auth);
          if (no) cb(no); else (fn as (c: typeof call, cb: grpc.sendUnaryData<unknown>) => void)(call, cb);
        };
  }
  return out as StatusHandlers;
}

export interface ApiServer {
  /** bound TCP port when tcpAddress was given */
  readonly tcpPort?: number;
  close(): Promise<void>;
}

/** Any thrown value -> a status the client can act on; ViewError carries its own code. */
export function toGrpcError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof ViewError) return { code: grpc.status[err.code], details: err.message };
  const msg = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: msg };
}

function unary<Req, Res>(name: string, fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          log().warn({ rpc: name, err: err instanceof Error ? err.message : String(err) }, 'rpc failed');
          return callback(toGrpcError(err));
        },
      );
  };
}

/**
 * A server-streaming RPC: fn sends its pages through `send`, which waits while the client
 * is behind (so a slow reader holds one page in memory, not the whole listing) and stops
 * the listing when the client cancels. A thrown error ends the stream with its status.
 */
function serverStream<Req, Res>(name: string, fn: (req: Req, send: (msg: Res) => Promise<void>) => Promise<void>): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    let cancelled = false;
    call.on('cancelled', () => { cancelled = true; });
    const send = async (msg: Res): Promise<void> => {
      if (cancelled) throw new Cancelled();
      if (call.write(msg)) return;
      await new Promise<void>((resolve) => {
        const go = (): void => { call.off('drain', go); call.off('cancelled', go); resolve(); };
        call.on('drain', go);
        call.on('cancelled', go);
      });
    };
    fn(call.request, send).then(
      () => { if (!cancelled) call.end(); },
      (err: unknown) => {
        if (err instanceof Cancelled || cancelled) return;
        log().warn({ rpc: name, err: err instanceof Error ? err.message : String(err) }, 'rpc failed');
        call.emit('error', toGrpcError(err));
      },
    );
  };
}

class Cancelled extends Error {}

/** Default and largest page sizes; a Services page also closes at PAGE_BACKENDS backends (~1 MB). */
const PAGE = { services: 500, stats: 2000, max: 5000 };
const PAGE_BACKENDS = 16_384;

function pageSize(asked: number, dflt: number): number {
  return Math.min(asked || dflt, PAGE.max);
}

function filterOf(f: ServiceFilter__Output | null | undefined): ServiceFilter {
  return { namespace: f?.namespace || undefined, name: f?.name || undefined, type: f?.type || undefined };
}

function handlers(view: AgentView, streams: Set<grpc.ServerWritableStream<unknown, unknown>>): StatusHandlers {
  return {
    GetStatus: unary('GetStatus', () => statusToMsg(view.status())),
    ListServices: serverStream('ListServices', async (req, send) => {
      const all = view.services(filterOf(req.filter));
      const announcers = new Map(view.lbAddresses().map((a) => [a.addr, a.announcer]));
      const announcer = (addr: string) => announcers.get(addr) ?? '';
      const size = pageSize(req.pageSize, PAGE.services);
      let page: ReturnType<typeof serviceToMsg>[] = [];
      let backends = 0;
      for (const s of all) {
        page.push(serviceToMsg(s, announcer));
        for (const f of s.frontends) backends += f.backends.length + 1;
        if (page.length >= size || backends >= PAGE_BACKENDS) {
          await send({ services: page, total: all.length });
          page = [];
          backends = 0;
        }
      }
      if (page.length || !all.length) await send({ services: page, total: all.length });
    }),
    ListMaps: unary('ListMaps', async () => mapsToMsg(await view.maps())),
    StreamMaps: (call) => void streamMaps(view, call),
    GetStats: serverStream('GetStats', async (req, send) => {
      const msg = statsToMsg(await view.stats(filterOf(req.filter)));
      const rows = msg.services ?? [];
      const size = pageSize(req.pageSize, PAGE.stats);
      await send({ ...msg, services: rows.slice(0, size), total: rows.length });
      for (let i = size; i < rows.length; i += size) await send({ services: rows.slice(i, i + size), total: rows.length });
    }),
    Toggle: unary('Toggle', async (req: { on: boolean }) => view.toggle(req.on)),
    WatchEvents: (call) => {
      const onEvent = (ev: ProgrammedEvent): void => { call.write(eventToMsg(ev)); };
      const stop = (): void => {
        view.events.off('programmed', onEvent);
        streams.delete(call as grpc.ServerWritableStream<unknown, unknown>);
      };
      view.events.on('programmed', onEvent);
      streams.add(call as grpc.ServerWritableStream<unknown, unknown>);
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
}

/** Writes each chunk as it is decoded, waiting for the client when its buffer is full. */
async function streamMaps(view: AgentView, call: grpc.ServerWritableStream<ListMapsRequest__Output, DecodedMap>): Promise<void> {
  try {
    for await (const m of view.mapChunks(call.request.names)) {
      if (call.cancelled) return;
      if (!call.write(mapToMsg(m))) await once(call, 'drain');
    }
    call.end();
  } catch (err) {
    log().warn({ rpc: 'StreamMaps', err: err instanceof Error ? err.message : String(err) }, 'rpc failed');
    call.emit('error', toGrpcError(err));
  }
}

/** Refuses to start over a live agent; removes a socket left by one that died. */
async function clearStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  if (await socketAnswers(path)) throw new Error(`another xlb agent is already listening on ${path}`);
  await rm(path, { force: true });
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function bind(server: grpc.Server, addr: string, creds = grpc.ServerCredentials.createInsecure()): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function tcpCredentials(auth: TcpAuth | undefined): grpc.ServerCredentials {
  const tls = auth?.tls;
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
}

/**
 * Binds in a private 0700 directory, sets 0600, then renames into place: the socket is never
 * reachable by anyone else, not even between bind and chmod.
 */
async function bindUnixSocket(server: grpc.Server, socketPath: string): Promise<void> {
  const dir = dirname(socketPath);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await clearStaleSocket(socketPath);
  const tmpDir = await mkdtemp(join(dir, '.xlb-'));
  const tmpSock = join(tmpDir, basename(socketPath));
  try {
    await bind(server, `unix:${tmpSock}`);
    await chmod(tmpSock, 0o600);
    await rename(tmpSock, socketPath);
  } finally {
    await rmdir(tmpDir).catch(() => undefined);
  }
}

export async function startApiServer(view: AgentView, opts: ApiServerOptions): Promise<ApiServer> {
  const { grpcObj } = loadStatusProto();
  const def = grpcObj.xlb.v1.Status.service;
  const streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  const health = new HealthImplementation({ '': 'SERVING', [STATUS_SERVICE]: 'SERVING' });
  // Reflection describes the health service too, so grpcurl needs no .proto files at all.
  const described = protoLoader.loadSync([protoPath(), healthProtoPath], LOADER_OPTIONS);
  const reflection = new ReflectionService(described as ConstructorParameters<typeof ReflectionService>[0]);
  // One server per listener: the socket's handlers and TCP's guarded ones.
  const newServer = (h: StatusHandlers): grpc.Server => {
    const s = new grpc.Server();
    s.addService(def, h);
    health.addToServer(s);
    reflection.addToServer(s);
    return s;
  };
  const all = handlers(view, streams);
  const servers = [newServer(all)];

  try {
    await bindUnixSocket(servers[0]!, opts.socketPath);
  } catch (e) {
    servers[0]!.forceShutdown();
    throw e;
  }
  let tcpPort: number | undefined;
  if (opts.tcpAddress) {
    const tcp = newServer(guarded(all, def, opts.tcpAuth));
    servers.push(tcp);
    try {
      tcpPort = await bind(tcp, opts.tcpAddress, tcpCredentials(opts.tcpAuth));
    } catch (e) {
      for (const s of servers) s.forceShutdown();
      await rm(opts.socketPath, { force: true });
      throw new Error(`status API: cannot listen on ${opts.tcpAddress}: ${(e as Error).message}`);
    }
  }
  const auth = opts.tcpAuth;
  const tcpMode = !opts.tcpAddress ? undefined
    : auth?.tls?.ca ? 'mTLS' : auth?.token ? (auth.tls ? 'TLS + bearer token' : 'bearer token (no TLS: the token crosses the network in clear)') : 'read calls only';
  log().info({ socket: opts.socketPath, tcp: opts.tcpAddress, tcpPort, tcpMode }, 'status API listening');

  return {
    tcpPort,
    async close() {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(STATUS_SERVICE, 'NOT_SERVING');
      // Event streams never end by themselves; end them so shutdown does not wait forever.
      for (const s of streams) s.end();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => {
        const force = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
        server.tryShutdown(() => { clearTimeout(force); resolve(); });
      })));
      await rm(opts.socketPath, { force: true });
    },
  };
}
