// Continuous, bounded load for "no dropped connection" checks: `conns` long-lived keep-alive
// connections each sending a request every `everyMs` (established flows), plus a new
// connection with Connection: close every `newEveryMs` (new flows). Run inside a namespace:
//   steady.js <host> <port> <durationMs> [conns] [everyMs] [newEveryMs]
// prints "connected" once every keep-alive connection has connected (or failed to), then one
// JSON line at the end: { established: {ok, failed, errors[]}, fresh: {ok, failed, errors[]} }
import net from 'node:net';
import type { Netns } from './netns.js';

export interface SteadyResult {
  established: { ok: number; failed: number; errors: string[]; answers: Record<string, number> };
  fresh: { ok: number; failed: number; errors: string[]; answers: Record<string, number> };
}

const MAX_DURATION_MS = 60_000;
const REQ_TIMEOUT_MS = 2000;

function count(bucket: SteadyResult['fresh'], ok: boolean, body: string, err?: string): void {
  if (ok) {
    bucket.ok++;
    const name = body.trim().replace(/^Hello, /, '');
    bucket.answers[name] = (bucket.answers[name] ?? 0) + 1;
  } else {
    bucket.failed++;
    if (err && bucket.errors.length < 10) bucket.errors.push(err);
  }
}

/** One persistent connection: a request every `everyMs` until `end`; any failure is counted. */
async function keepAlive(host: string, port: number, end: number, everyMs: number, b: SteadyResult['established'], settled: () => void): Promise<void> {
  const sock = net.connect({ host, port });
  sock.setNoDelay(true);
  let buf = '';
  let waiting: ((r: { ok: boolean; body: string; err?: string }) => void) | null = null;
  const settle = (r: { ok: boolean; body: string; err?: string }) => { const w = waiting; waiting = null; w?.(r); };
  sock.on('data', (d) => {
    buf += d.toString();
    const m = /^HTTP\/1\.1 (\d+)[^]*?\r\nContent-Length: (\d+)\r\n[^]*?\r\n\r\n/i.exec(buf);
    if (!m) return;
    const headLen = buf.indexOf('\r\n\r\n') + 4;
    const len = Number(m[2]);
    if (buf.length < headLen + len) return;
    const body = buf.slice(headLen, headLen + len);
    buf = buf.slice(headLen + len);
    settle({ ok: m[1] === '200', body });
  });
  sock.on('error', (e) => settle({ ok: false, body: '', err: `established: ${e.message}` }));
  sock.on('close', () => settle({ ok: false, body: '', err: 'established: connection closed' }));
  const connected = await new Promise<boolean>((res) => {
    const t = setTimeout(() => res(false), REQ_TIMEOUT_MS);
    sock.once('connect', () => { clearTimeout(t); res(true); });
    sock.once('error', () => { clearTimeout(t); res(false); });
  });
  settled();
  if (!connected) {
    count(b, false, '', 'established: could not connect');
    sock.destroy();
    return;
  }
  while (Date.now() < end && !sock.destroyed) {
    let timer: NodeJS.Timeout | undefined;
    const r = await new Promise<{ ok: boolean; body: string; err?: string }>((resolve) => {
      waiting = resolve;
      // Each request's own timer, cleared when it settles: a stale one must never fail a later request.
      timer = setTimeout(() => settle({ ok: false, body: '', err: 'established: request timed out' }), REQ_TIMEOUT_MS);
      sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`, () => undefined);
    });
    clearTimeout(timer);
    count(b, r.ok, r.body, r.err);
    if (!r.ok) break;
    await new Promise((res) => setTimeout(res, everyMs));
  }
  sock.destroy();
}

function oneShot(host: string, port: number): Promise<{ ok: boolean; body: string; err?: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const start = Date.now();
    let got = '';
    let connectedMs = -1;
    // what a failure needs to be found in ct dumps and agent logs: the client port, when
    const where = () => `client port ${sock.localPort ?? '?'}, ${connectedMs < 0 ? 'never connected' : `connected after ${connectedMs} ms`}, ${got.length} bytes read, started ${new Date(start).toISOString()}`;
    const done = (ok: boolean, err?: string) => {
      const detail = err ? `${err} (${where()})` : undefined;
      sock.destroy();
      const i = got.indexOf('\r\n\r\n');
      resolve({ ok, body: i >= 0 ? got.slice(i + 4) : '', err: detail });
    };
    sock.setTimeout(REQ_TIMEOUT_MS, () => done(false, 'new: timed out'));
    sock.on('connect', () => (connectedMs = Date.now() - start, sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)));
    sock.on('data', (d) => { got += d.toString(); });
    sock.on('end', () => done(got.startsWith('HTTP/1.1 200')));
    sock.on('error', (e) => done(false, `new: ${e.message}`));
  });
}

export async function steady(host: string, port: number, durationMs: number, conns = 4, everyMs = 50, newEveryMs = 40,
  onConnected: () => void = () => undefined): Promise<SteadyResult> {
  const end = Date.now() + Math.min(durationMs, MAX_DURATION_MS);
  const r: SteadyResult = {
    established: { ok: 0, failed: 0, errors: [], answers: {} },
    fresh: { ok: 0, failed: 0, errors: [], answers: {} },
  };
  let pending = conns;
  const settled = () => { if (--pending === 0) onConnected(); };
  const live = Array.from({ length: conns }, () => keepAlive(host, port, end, everyMs, r.established, settled));
  const fresh: Promise<void>[] = [];
  while (Date.now() < end) {
    fresh.push(oneShot(host, port).then((x) => count(r.fresh, x.ok, x.body, x.err)));
    await new Promise((res) => setTimeout(res, newEveryMs));
  }
  await Promise.all([...live, ...fresh]);
  return r;
}

/**
 * Start `steady` inside a namespace; resolves with its result when it ends by itself (killed
 * after durationMs + 15 s). `onConnected` is called when its keep-alive connections are up: a
 * test that changes a Service under established flows waits for it (the process alone can take
 * longer than half a second to start on a loaded machine).
 */
export function steadyIn(ns: Netns, host: string, port: number, durationMs: number, conns = 4, onConnected?: () => void): Promise<SteadyResult> {
  const script = new URL('./steady.js', import.meta.url).pathname;
  const proc = ns.spawn(process.execPath, [script, host, String(port), String(durationMs), String(conns)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (onConnected && /^connected$/m.test(out)) { onConnected(); onConnected = undefined; }
  });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const kill = setTimeout(() => proc.kill('SIGKILL'), durationMs + 15_000);
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => {
      clearTimeout(kill);
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as SteadyResult);
      else reject(new Error(`steady in ${ns.name} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const [host, port, dur, conns, every, newEvery] = process.argv.slice(2);
  steady(host, Number(port), Number(dur), conns ? Number(conns) : undefined, every ? Number(every) : undefined, newEvery ? Number(newEvery) : undefined,
    () => console.log('connected'))
    .then((r) => { console.log(JSON.stringify(r)); process.exit(0); });
}
