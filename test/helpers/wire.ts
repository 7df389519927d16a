// What a client on the namespace topology sees, for the suites that assert behaviour on the
// wire: which pods answered a run of requests, whether a connect was refused at once (a RST)
// or a datagram drew an ICMP unreachable, versus an answer or silence.
import assert from 'node:assert/strict';
import { run, type Netns } from './netns.js';
import type { Topology, TopoPod } from './topology.js';
import { eventually } from './e2e.js';

export interface Answers { names: Map<string, number>; failed: number; errors: string[] }

/** n HTTP GETs from a namespace, each on a new connection: who answered, how many failed. */
export async function answersFrom(topo: Topology, from: string, url: string, n: number, timeoutMs = 1500): Promise<Answers> {
  const r: Answers = { names: new Map(), failed: 0, errors: [] };
  for (let i = 0; i < n; i++) {
    const x = await topo.curl(from, url, { timeoutMs });
    if (x.status === 200) {
      const name = x.body.trim().replace(/^Hello, /, '');
      r.names.set(name, (r.names.get(name) ?? 0) + 1);
    } else {
      r.failed++;
      if (r.errors.length < 3) r.errors.push(x.error ?? `HTTP ${x.status}`);
    }
  }
  return r;
}

export const answerNames = (a: Answers): string[] => [...a.names.keys()].sort();

/** Every request answered, and only by the allowed pods. */
export function assertOnly(a: Answers, allowed: readonly TopoPod[], what: string): void {
  assert.equal(a.failed, 0, `${what}: ${a.failed} failed (${a.errors.join('; ')})`);
  const ok = new Set(allowed.map((p) => p.name));
  for (const n of a.names.keys()) assert.ok(ok.has(n), `${what}: answered by ${n}, expected only ${[...ok].join(', ')}`);
}

/** Wait until `url` answers 200 from `from`. */
export async function servingFrom(topo: Topology, from: string, url: string, timeoutMs = 5000): Promise<void> {
  await eventually(`${url} answers from ${from}`, async () => (await topo.curl(from, url, { timeoutMs: 500 })).status === 200, timeoutMs);
}

// A connected socket hears of a RST (TCP) or an ICMP port unreachable (UDP); an unconnected one
// never does. Prints {result, code?, reply?, ms}.
const PROBE = `
import net from 'node:net';
import dgram from 'node:dgram';
const [kind, addr, port, timeoutMs, payload] = process.argv.slice(1);
const t0 = performance.now();
let close = () => {};
const done = (r) => { console.log(JSON.stringify({ ...r, ms: Math.round(performance.now() - t0) })); close(); process.exit(0); };
setTimeout(() => done({ result: 'timeout' }), Number(timeoutMs));
if (kind === 'tcp') {
  const s = net.connect({ host: addr, port: Number(port) });
  close = () => s.destroy();
  s.on('connect', () => done({ result: 'connected' }));
  s.on('error', (e) => done({ result: 'error', code: e.code }));
} else {
  const s = dgram.createSocket(net.isIPv6(addr) ? 'udp6' : 'udp4');
  close = () => s.close();
  s.on('message', (m) => done({ result: 'reply', reply: m.toString() }));
  s.on('error', (e) => done({ result: 'error', code: e.code }));
  s.connect(Number(port), addr, () => s.send(payload || 'probe'));
}
`;

export interface ProbeResult { result: 'connected' | 'reply' | 'error' | 'timeout'; code?: string; reply?: string; ms: number }

export async function probe(kind: 'tcp' | 'udp', ns: Netns, addr: string, port: number, timeoutMs = 2000, payload = 'probe'): Promise<ProbeResult> {
  const r = await run('ip', ['netns', 'exec', ns.name, process.execPath, '--input-type=module', '-e', PROBE, kind, addr, String(port), String(timeoutMs), payload],
    { timeoutMs: timeoutMs + 5000 });
  return JSON.parse(r.stdout.trim()) as ProbeResult;
}
