// The xlb.v1.Status gRPC server: a unix socket only root can open (mode 0600), optionally
// TCP too, with grpc.health.v1 and server reflection (so grpcurl works without the .proto).
import { chmod, lstat, mkdir, mkdtemp, rename, rm, rmdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { basename, dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { child } from '../log.js';
import { eventToMsg, mapsToMsg, serviceToMsg, statsToMsg, statusToMsg } from './convert.js';
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
      const size = pageSize(req.pageSize, PAGE.services);
      let page: ReturnType<typeof serviceToMsg>[] = [];
      let backends = 0;
      for (const s of all) {
        page.push(serviceToMsg(s));
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

function bind(server: grpc.Server, addr: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
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
  const server = new grpc.Server();
  const streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  server.addService(grpcObj.xlb.v1.Status.service, handlers(view, streams));
  const health = new HealthImplementation({ '': 'SERVING', [STATUS_SERVICE]: 'SERVING' });
  health.addToServer(server);
  // Reflection describes the health service too, so grpcurl needs no .proto files at all.
  const described = protoLoader.loadSync([protoPath(), healthProtoPath], LOADER_OPTIONS);
  new ReflectionService(described as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);

  try {
    await bindUnixSocket(server, opts.socketPath);
  } catch (e) {
    server.forceShutdown();
    throw e;
  }
  let tcpPort: number | undefined;
  if (opts.tcpAddress) {
    try {
      tcpPort = await bind(server, opts.tcpAddress);
    } catch (e) {
      server.forceShutdown();
      await rm(opts.socketPath, { force: true });
      throw new Error(`status API: cannot listen on ${opts.tcpAddress}: ${(e as Error).message}`);
    }
  }
  log().info({ socket: opts.socketPath, tcp: opts.tcpAddress, tcpPort }, 'status API listening');

  return {
    tcpPort,
    async close() {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(STATUS_SERVICE, 'NOT_SERVING');
      // Event streams never end by themselves; end them so shutdown does not wait forever.
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
        server.tryShutdown(() => { clearTimeout(force); resolve(); });
      });
      await rm(opts.socketPath, { force: true });
    },
  };
}
