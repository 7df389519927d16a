// Long-lived flows for "no connection breaks" checks across a datapath switch: each long-lived
// TCP connection (HTTP keep-alive) and UDP flow (one socket, one source port) asks every
// `everyMs` for the whole run and must get every answer, from the same backend; beside them a
// new short TCP connection every `newEveryMs`, round robin over the fresh targets. Bounded in
// time (MAX_DURATION_MS) and count. Run inside a namespace:
//   flows.js '<FlowsSpec as JSON>'     prints one JSON line (FlowsResult)
import dgram from 'node:dgram';
import net from 'node:net';
import { run, type Netns } from './netns.js';

export interface FlowTarget { name: string; proto: 'TCP' | 'UDP'; host: string; port: number }
export interface FlowsSpec { durationMs: number; everyMs: number; newEveryMs: number; long: FlowTarget[]; fresh: FlowTarget[] }
export interface LongResult {
  name: string;
  proto: 'TCP' | 'UDP';
  requests: number;
  failed: number;
  /** answered to the end, never failed */
  alive: boolean;
  /** backends that answered (one, for a flow that was never moved) */
  backends: string[];
  error?: string;
}
export interface FlowsResult { long: LongResult[]; fresh: { ok: number; failed: number; errors: string[] } }

const MAX_DURATION_MS = 150_000;
const REQ_TIMEOUT_MS = 2000;
/** A new connection's whole life: a loaded machine (CI, 2 cores) can delay a handshake past a
 *  second; a broken one (reset, dropped every time) fails long before this either way. */
const NEW_TIMEOUT_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function result(t: FlowTarget): LongResult {
  return { name: t.name, proto: t.proto, requests: 0, failed: 0, alive: false, backends: [] };
}

function saw(r: LongResult, backend: string): void {
  if (!r.backends.includes(backend)) r.backends.push(backend);
}

/** One keep-alive HTTP connection, a request every everyMs until end; stops at the first failure. */
async function longTcp(t: FlowTarget, end: number, everyMs: number): Promise<LongResult> {
  const r = result(t);
  const sock = net.connect({ host: t.host, port: t.port });
  sock.setNoDelay(true);
  let buf = '';
  let waiting: ((x: { body?: string; err?: string }) => void) | null = null;
  const settle = (x: { body?: string; err?: string }) => { const w = waiting; waiting = null; w?.(x); };
  sock.on('data', (d) => {
    buf += d.toString();
    const head = buf.indexOf('\r\n\r\n');
    const len = /\r\nContent-Length: (\d+)\r\n/i.exec(buf.slice(0, head + 2));
    if (head < 0 || !len || buf.length < head + 4 + Number(len[1])) return;
    const ok = buf.startsWith('HTTP/1.1 200');
    const body = buf.slice(head + 4, head + 4 + Number(len[1]));
    buf = buf.slice(head + 4 + Number(len[1]));
    settle(ok ? { body } : { err: `HTTP ${buf.slice(9, 12)}` });
  });
  sock.on('error', (e: NodeJS.ErrnoException) => { r.error ??= e.code === 'ECONNRESET' ? 'reset' : e.message; settle({ err: r.error }); });
  sock.on('close', () => settle({ err: r.error ?? 'closed' }));
  while (Date.now() < end && !sock.destroyed) {
    let timer: NodeJS.Timeout | undefined;
    const x = await new Promise<{ body?: string; err?: string }>((resolve) => {
      waiting = resolve;
      timer = setTimeout(() => settle({ err: 'timed out' }), REQ_TIMEOUT_MS);
      sock.write(`GET / HTTP/1.1\r\nHost: ${t.host}\r\nConnection: keep-alive\r\n\r\n`, () => undefined);
    });
    clearTimeout(timer);
    r.requests++;
    if (x.body === undefined) {
      r.failed++;
      r.error ??= x.err;
      sock.destroy();
      return r;
    }
    saw(r, x.body.trim().replace(/^Hello, /, ''));
    await sleep(everyMs);
  }
  r.alive = !sock.destroyed;
  sock.destroy();
  return r;
}

/** One UDP socket (one source port), a numbered datagram every everyMs, each echoed "<pod>:<n>". */
async function longUdp(t: FlowTarget, end: number, everyMs: number): Promise<LongResult> {
  const r = result(t);
  const sock = dgram.createSocket(net.isIPv6(t.host) ? 'udp6' : 'udp4');
  const pending = new Map<string, (pod: string) => void>();
  sock.on('message', (m) => {
    const [pod, n] = m.toString().split(':');
    pending.get(n)?.(pod);
  });
  await new Promise<void>((res) => sock.bind(0, res));
  for (let n = 0; Date.now() < end; n++) {
    const pod = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), REQ_TIMEOUT_MS);
      pending.set(String(n), (p) => { clearTimeout(timer); resolve(p); });
      sock.send(String(n), t.port, t.host);
    });
    pending.delete(String(n));
    r.requests++;
    if (pod === null) {
      r.failed++;
      r.error ??= `datagram ${n}: no answer`;
    } else saw(r, pod);
    await sleep(everyMs);
  }
  sock.close();
  r.alive = r.failed === 0;
  return r;
}

function oneShot(t: FlowTarget): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: t.host, port: t.port });
    let got = '';
    // the source port names the connection in a failure (to find it in conntrack)
    const done = (err?: string) => { const port = sock.localPort; sock.destroy(); resolve(err && `${err} from port ${port ?? '?'}`); };
    sock.setTimeout(NEW_TIMEOUT_MS, () => done(`${t.name}: timed out`));
    sock.on('connect', () => sock.write(`GET / HTTP/1.1\r\nHost: ${t.host}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => { got += d.toString(); });
    sock.on('end', () => done(got.startsWith('HTTP/1.1 200') ? undefined : `${t.name}: bad answer`));
    sock.on('error', (e: NodeJS.ErrnoException) => done(`${t.name}: ${e.code === 'ECONNRESET' ? 'reset' : e.message}`));
  });
}

export async function flows(s: FlowsSpec): Promise<FlowsResult> {
  const start = Date.now();
  const end = start + Math.min(s.durationMs, MAX_DURATION_MS);
  const long = s.long.map((t) => (t.proto === 'TCP' ? longTcp : longUdp)(t, end, s.everyMs));
  const fresh: FlowsResult['fresh'] = { ok: 0, failed: 0, errors: [] };
  const shots: Promise<void>[] = [];
  for (let i = 0; s.fresh.length && Date.now() < end; i++) {
    shots.push(oneShot(s.fresh[i % s.fresh.length]).then((err) => {
      if (!err) { fresh.ok++; return; }
      fresh.failed++;
      if (fresh.errors.length < 10) fresh.errors.push(`${err} (${((Date.now() - start) / 1000).toFixed(1)} s in)`);
    }));
    await sleep(s.newEveryMs);
  }
  return { long: await Promise.all(long), fresh: (await Promise.all(shots), fresh) };
}

/** Run flows() inside a namespace; resolves with its result when it ends by itself. */
export async function flowsIn(ns: Netns, s: FlowsSpec): Promise<FlowsResult> {
  const script = new URL('./flows.js', import.meta.url).pathname;
  const out = await run('ip', ['netns', 'exec', ns.name, process.execPath, script, JSON.stringify(s)], { timeoutMs: s.durationMs + 20_000 });
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as FlowsResult;
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  flows(JSON.parse(process.argv[2]) as FlowsSpec).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });
}
