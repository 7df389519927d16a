// The CLI side of the status API: flag parsing shared by every command, connecting to the
// agent's socket, and turning connection failures into one line that says what to do.
import { readFileSync } from 'node:fs';
import { access, constants, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { GetStatsRequest } from '../api/generated/xlb/v1/GetStatsRequest.js';
import type { GetStatusRequest } from '../api/generated/xlb/v1/GetStatusRequest.js';
import type { ListMapsRequest } from '../api/generated/xlb/v1/ListMapsRequest.js';
import type { ListMapsResponse__Output } from '../api/generated/xlb/v1/ListMapsResponse.js';
import type { ListServicesRequest } from '../api/generated/xlb/v1/ListServicesRequest.js';
import type { ListServicesResponse__Output } from '../api/generated/xlb/v1/ListServicesResponse.js';
import type { StatsInfo__Output } from '../api/generated/xlb/v1/StatsInfo.js';
import type { ServiceFilter } from '../api/generated/xlb/v1/ServiceFilter.js';
import type { StatusClient } from '../api/generated/xlb/v1/Status.js';
import type { StatusInfo__Output } from '../api/generated/xlb/v1/StatusInfo.js';
import type { ToggleRequest } from '../api/generated/xlb/v1/ToggleRequest.js';
import type { ToggleResponse__Output } from '../api/generated/xlb/v1/ToggleResponse.js';
import { loadStatusProto } from '../api/proto.js';
import { parseOutputMode, UsageError, type OutputMode } from './output.js';

import { DEFAULT_API_SOCKET as DEFAULT_SOCKET } from '../api/view.js';

export { DEFAULT_SOCKET };
const RPC_DEADLINE_MS = 15_000;

/** The agent cannot be reached or refused the call: one line, exit code 1. */
export class CliError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The agent's TCP API and what to present to it (agent flags of the same names). */
export interface ApiTarget {
  address: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

export interface CommonFlags {
  socket: string;
  /** set: talk to the agent over TCP instead of the socket */
  api?: ApiTarget;
  /** the socket or the TCP address, for messages */
  where: string;
  output: OutputMode;
  help: boolean;
}

const COMMON: Options = {
  socket: { type: 'string' },
  'api-address': { type: 'string' },
  'api-tls-ca': { type: 'string' },
  'api-tls-cert': { type: 'string' },
  'api-tls-key': { type: 'string' },
  'api-token-file': { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = [
  `  --socket PATH     agent socket (default ${DEFAULT_SOCKET}, env XLB_SOCKET)`,
  '  --api-address HOST:PORT   the agent\'s TCP API instead (its --api-address); without',
  '                    credentials it answers read commands only',
  '  --api-tls-ca FILE     CA of the agent\'s TLS certificate (TLS on)',
  '  --api-tls-cert FILE, --api-tls-key FILE   client certificate for an agent with --api-tls-ca',
  '  --api-token-file FILE bearer token for an agent with --api-token-file',
  '  -o, --output FMT  table, json or yaml (default table)',
];

export function parseFlags(argv: string[], extra: Options = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...extra }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const socket = (v.socket as string | undefined) || process.env.XLB_SOCKET || DEFAULT_SOCKET;
  const api = apiTarget(v);
  const common: CommonFlags = {
    socket,
    ...(api ? { api } : {}),
    where: api?.address ?? socket,
    output: parseOutputMode(v.output as string | undefined),
    help: v.help === true,
  };
  return { common, values: v, positionals: parsed.positionals };
}

function apiTarget(v: Record<string, string | boolean | undefined>): ApiTarget | undefined {
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? v[k] : undefined);
  const address = str('api-address');
  const t: ApiTarget | undefined = address ? { address } : undefined;
  const files = { tlsCa: str('api-tls-ca'), tlsCert: str('api-tls-cert'), tlsKey: str('api-tls-key'), tokenFile: str('api-token-file') };
  if (!t) {
    if (Object.values(files).some((f) => f !== undefined)) throw new UsageError('--api-tls-* and --api-token-file go with --api-address HOST:PORT');
    return undefined;
  }
  if ((files.tlsCert === undefined) !== (files.tlsKey === undefined)) throw new UsageError('--api-tls-cert and --api-tls-key go together');
  for (const [k, f] of Object.entries(files)) if (f !== undefined) (t as unknown as Record<string, string>)[k] = f;
  return t;
}

export function notRunning(socket: string): string {
  return `no agent is listening on ${socket} (is the xlb agent running on this node?)`;
}

export function permissionDenied(socket: string): string {
  return `permission denied on ${socket}: run as root`;
}

/** Probes the socket before gRPC does, because gRPC reports every failure as UNAVAILABLE. */
async function probe(socket: string): Promise<void> {
  try {
    const st = await stat(socket);
    if (!st.isSocket()) throw new CliError(`${socket} is not a socket (is --socket right?)`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') throw new CliError(permissionDenied(socket));
    throw new CliError(notRunning(socket));
  }
  await access(socket, constants.R_OK | constants.W_OK).catch(() => {
    throw new CliError(permissionDenied(socket));
  });
  await new Promise<void>((resolve, reject) => {
    const s = connect(socket);
    s.once('connect', () => { s.destroy(); resolve(); });
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(new CliError(err.code === 'EACCES' || err.code === 'EPERM' ? permissionDenied(socket) : notRunning(socket))));
  });
}

export async function connectAgent(common: CommonFlags): Promise<StatusClient> {
  const { grpcObj } = loadStatusProto();
  if (common.api) return new grpcObj.xlb.v1.Status(common.api.address, ...tcpCredentials(common.api));
  await probe(common.socket);
  return new grpcObj.xlb.v1.Status(`unix:${common.socket}`, grpc.credentials.createInsecure());
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CliError(`${flag} ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** TLS when a CA is given (with a client certificate for mTLS); the token on every call. */
function tcpCredentials(t: ApiTarget): [grpc.ChannelCredentials, grpc.ClientOptions] {
  const creds = t.tlsCa
    ? grpc.credentials.createSsl(readFlagFile('--api-tls-ca', t.tlsCa),
      t.tlsKey ? readFlagFile('--api-tls-key', t.tlsKey) : null, t.tlsCert ? readFlagFile('--api-tls-cert', t.tlsCert) : null)
    : grpc.credentials.createInsecure();
  if (!t.tokenFile) return [creds, {}];
  const token = readFlagFile('--api-token-file', t.tokenFile).toString('utf8').trim();
  const withToken: grpc.Interceptor = (options, next) => new grpc.InterceptingCall(next(options), {
    start(metadata, listener, start) {
      metadata.set('authorization', `Bearer ${token}`);
      start(metadata, listener);
    },
  });
  return [creds, { interceptors: [withToken] }];
}

/** Request and response types of each unary RPC, so `call` is typed by method name. */
interface Rpcs {
  GetStatus: [GetStatusRequest, StatusInfo__Output];
  ListMaps: [ListMapsRequest, ListMapsResponse__Output];
  Toggle: [ToggleRequest, ToggleResponse__Output];
}

/** The server-streaming RPCs: one response message per page. */
interface StreamRpcs {
  ListServices: [ListServicesRequest, ListServicesResponse__Output];
  GetStats: [GetStatsRequest, StatsInfo__Output];
}

/** A whole listing of 100,000 Services fits in this; each page arrives far sooner. */
const STREAM_DEADLINE_MS = 300_000;

type UnaryFn = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => unknown;

/** Promise wrapper with a deadline; server errors keep their message, lost agents get notRunning. */
export function call<K extends keyof Rpcs>(client: StatusClient, method: K, req: Rpcs[K][0], socket: string): Promise<Rpcs[K][1]> {
  const fn = client[method] as unknown as UnaryFn;
  return new Promise((resolve, reject) => {
    fn.call(client, req, { deadline: Date.now() + RPC_DEADLINE_MS }, (err, res) => {
      if (err) return reject(rpcError(err, socket));
      resolve(res as Rpcs[K][1]);
    });
  });
}

/**
 * A server-streaming call: `onMessage` for each message as it arrives. The deadline is per
 * message, not for the whole stream, so a large answer is never cut off while it flows.
 */
export function stream<M>(client: StatusClient, method: 'StreamMaps', req: ListMapsRequest, socket: string, onMessage: (m: M) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = client[method](req);
    const idle = (): void => {
      reject(new CliError(`the agent on ${socket} did not answer in time`));
      c.cancel();
    };
    let timer = setTimeout(idle, RPC_DEADLINE_MS);
    c.on('data', (m: M) => {
      clearTimeout(timer);
      timer = setTimeout(idle, RPC_DEADLINE_MS);
      onMessage(m);
    });
    c.on('error', (err: grpc.ServiceError) => { clearTimeout(timer); reject(rpcError(err, socket)); });
    c.on('end', () => { clearTimeout(timer); resolve(); });
  });
}

type StreamFn = (req: unknown, opts: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;

/** The pages of a streaming RPC as they arrive; failures become the same one-liners as `call`'s. */
export async function* pages<K extends keyof StreamRpcs>(client: StatusClient, method: K, req: StreamRpcs[K][0], socket: string): AsyncGenerator<StreamRpcs[K][1]> {
  const fn = client[method] as unknown as StreamFn;
  const stream = fn.call(client, req, { deadline: Date.now() + STREAM_DEADLINE_MS });
  try {
    for await (const msg of stream) yield msg as StreamRpcs[K][1];
  } catch (e) {
    throw rpcError(e as grpc.ServiceError, socket);
  } finally {
    stream.cancel();
  }
}

export function rpcError(err: grpc.ServiceError, socket: string): CliError | UsageError {
  if (err.code === grpc.status.NOT_FOUND) return new UsageError(err.details); // a name the user gave (xlb maps NAME)
  if (err.code === grpc.status.UNAVAILABLE) return new CliError(notRunning(socket));
  if (err.code === grpc.status.DEADLINE_EXCEEDED) return new CliError(`the agent on ${socket} did not answer in time`);
  return new CliError(err.details || err.message);
}

/** Runs a command body: prints one line for expected failures and maps them to exit codes. */
export async function runCli(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`xlb: ${e.message}`);
      return 2;
    }
    if (e instanceof CliError) {
      console.error(`xlb: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** The Service selection flags shared by `xlb services` and `xlb stats`. */
export const FILTER_FLAGS: Options = {
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  type: { type: 'string' },
};

export const FILTER_HELP = [
  '  -n, --namespace NS    only Services in this namespace',
  '  -A, --all-namespaces  every namespace (the default without -n)',
  '  --type TYPE           only Services of this type (ClusterIP, NodePort, LoadBalancer)',
];

/** [NAMESPACE/NAME | NAME] with -n / -A / --type -> the filter the agent applies. */
export function serviceFilter(cmd: string, values: Record<string, unknown>, positionals: string[]): ServiceFilter {
  if (positionals.length > 1) throw new UsageError(`${cmd} takes at most one Service (got ${positionals.length})`);
  const ns = values.namespace as string | undefined;
  if (ns !== undefined && values['all-namespaces']) throw new UsageError('-n and -A exclude each other');
  if (ns === '') throw new UsageError('-n needs a namespace');
  const filter: ServiceFilter = { namespace: ns ?? '', name: '', type: (values.type as string | undefined) ?? '' };
  const arg = positionals[0];
  if (arg !== undefined) {
    const parts = arg.split('/');
    if (parts.length > 2 || parts.some((p) => !p)) throw new UsageError(`'${arg}' is not NAMESPACE/NAME or NAME`);
    if (parts.length === 2) {
      if (ns !== undefined && ns !== parts[0]) throw new UsageError(`'${arg}' is not in namespace ${ns} (-n)`);
      [filter.namespace, filter.name] = parts as [string, string];
    } else filter.name = parts[0]!;
  }
  return filter;
}

export function noPositionals(cmd: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(`${cmd} takes no arguments (got '${positionals[0]}')`);
}

/** Connects, runs fn, and always closes the channel so the process can exit. */
export async function withAgent<T>(common: CommonFlags, fn: (client: StatusClient) => Promise<T>): Promise<T> {
  const client = await connectAgent(common);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
