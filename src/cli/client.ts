// The CLI side of the status API: flag parsing shared by every command, connecting to the
// agent's socket, and turning connection failures into one line that says what to do.
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

export interface CommonFlags {
  socket: string;
  output: OutputMode;
  help: boolean;
}

const COMMON: Options = {
  socket: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = [
  `  --socket PATH     agent socket (default ${DEFAULT_SOCKET}, env XLB_SOCKET)`,
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
  const common: CommonFlags = {
    socket: (v.socket as string | undefined) || process.env.XLB_SOCKET || DEFAULT_SOCKET,
    output: parseOutputMode(v.output as string | undefined),
    help: v.help === true,
  };
  return { common, values: v, positionals: parsed.positionals };
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

export async function connectAgent(socket: string): Promise<StatusClient> {
  await probe(socket);
  const { grpcObj } = loadStatusProto();
  return new grpcObj.xlb.v1.Status(`unix:${socket}`, grpc.credentials.createInsecure());
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

export function rpcError(err: grpc.ServiceError, socket: string): CliError {
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
export async function withAgent<T>(socket: string, fn: (client: StatusClient) => Promise<T>): Promise<T> {
  const client = await connectAgent(socket);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
