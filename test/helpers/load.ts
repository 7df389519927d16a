// Load generators for the benchmarks, each bounded in count and time, each run inside a
// namespace. wrk measures open-loop maximum rates only, so request latency at a FIXED rate
// comes from the generator here: every request is a new TCP connection (Connection: close),
// started on schedule whether or not earlier ones finished (no coordinated omission), with a
// hard cap on requests and on in-flight connections.
//   load.js latency <host> <port> <ratePerSec> <durationMs> [timeoutMs]   prints JSON LatencyResult
import net from 'node:net';
import type { Netns } from './netns.js';
import { run } from './netns.js';
import { helperScript } from './topology.js';

export interface LatencyResult {
  rate: number; sent: number; ok: number; errors: number;
  /** milliseconds, over successful requests */
  p50: number; p99: number; mean: number;
}
export interface WrkResult { requestsPerSec: number; requests: number; socketErrors: number; non2xx: number }
export interface IperfTcpResult { gbps: number; retransmits: number }
export interface IperfUdpResult { sentPps: number; receivedPps: number; lossPercent: number }

const MAX_REQUESTS = 200_000;
const MAX_IN_FLIGHT = 2000;

function oneRequest(host: string, port: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    let got = '';
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok ? Number(process.hrtime.bigint() - start) / 1e6 : null);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('connect', () => sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => { got += d.toString(); });
    sock.on('end', () => done(got.startsWith('HTTP/1.1 200')));
    sock.on('error', () => done(false));
  });
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The generator itself (runs in the current namespace). */
export async function fixedRateLatency(host: string, port: number, rate: number, durationMs: number, timeoutMs = 2000): Promise<LatencyResult> {
  const total = Math.min(MAX_REQUESTS, Math.floor((rate * durationMs) / 1000));
  const lat: number[] = [];
  const pending = new Set<Promise<void>>();
  let sent = 0, errors = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      for (; sent < due; sent++) {
        if (pending.size >= MAX_IN_FLIGHT) { errors++; continue; }
        const p: Promise<void> = oneRequest(host, port, timeoutMs).then((ms) => {
          if (ms === null) errors++; else lat.push(ms);
          pending.delete(p);
        });
        pending.add(p);
      }
      if (sent >= total || performance.now() - start > durationMs + 1000) { clearInterval(tick); resolve(); }
    }, 2);
  });
  await Promise.all(pending);
  lat.sort((a, b) => a - b);
  const mean = lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : 0;
  return { rate, sent, ok: lat.length, errors, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), mean };
}

/** Fixed-rate latency from inside `ns`. */
export async function latencyIn(ns: Netns, host: string, port: number, rate: number, durationMs: number): Promise<LatencyResult> {
  const r = await run('ip', ['netns', 'exec', ns.name, process.execPath, helperScript('load.js'), 'latency', host, String(port),
    String(rate), String(durationMs)], { timeoutMs: durationMs + 15_000 });
  return JSON.parse(r.stdout) as LatencyResult;
}

/** New connections per second: wrk with Connection: close, bounded by -d and --timeout.
 *  `cpu`: run wrk on that CPU only (taskset), else unpinned. */
export async function wrkConnRate(ns: Netns, url: string, durationS: number, connections = 16, cpu?: number): Promise<WrkResult> {
  const wrk = ['wrk', '-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', '2s', '-H', 'Connection: close', url];
  const [cmd, ...args] = cpu === undefined ? wrk : ['taskset', '-c', String(cpu), ...wrk];
  const r = await ns.exec(cmd, args, { timeoutMs: (durationS + 15) * 1000 });
  return parseWrk(r.stdout);
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const reqs = /(\d+) requests in/.exec(out);
  if (!rps || !reqs) throw new Error(`wrk: unexpected output: ${out.slice(0, 300)}`);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requestsPerSec: Number(rps[1]), requests: Number(reqs[1]),
    socketErrors: se ? se.slice(1).reduce((a, b) => a + Number(b), 0) : 0, non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

interface IperfJson {
  error?: string;
  end: {
    sum_received?: { bits_per_second: number };
    sum_sent?: { retransmits?: number };
    sum?: { packets: number; lost_packets: number; lost_percent: number; seconds: number };
  };
}

/** The iperf3 client's command line; `cpu`: run under taskset on that CPU only. */
export function iperfCommand(args: string[], durationS: number, cpu?: number): string[] {
  const iperf3 = ['iperf3', ...args, '-t', String(durationS), '-J', '--connect-timeout', '3000'];
  return cpu === undefined ? iperf3 : ['taskset', '-c', String(cpu), ...iperf3];
}

async function iperf(ns: Netns, args: string[], durationS: number, cpu?: number): Promise<IperfJson> {
  // iperf3 prints its JSON (with an "error" field) even when it fails; prefer that message.
  const [cmd, ...rest] = iperfCommand(args, durationS, cpu);
  // (exit status 1 with that JSON on stdout: run() keeps it on the error)
  const r = await ns.exec(cmd, rest, { timeoutMs: (durationS + 20) * 1000 }).catch((e: Error & { stdout?: string }) => ({ stdout: e.stdout ?? '', stderr: e.message }));
  let j: IperfJson;
  try { j = JSON.parse(r.stdout) as IperfJson; } catch { throw new Error(`iperf3 ${args.join(' ')}: ${r.stderr.slice(0, 300)}`); }
  if (j.error) throw new Error(`iperf3 ${args.join(' ')}: ${j.error}`);
  return j;
}

/** TCP bulk throughput, one stream. `cpu`: the client runs on that CPU only (taskset), else unpinned. */
export async function iperfTcp(ns: Netns, host: string, port: number, durationS: number, cpu?: number): Promise<IperfTcpResult> {
  const j = await iperf(ns, ['-c', host, '-p', String(port)], durationS, cpu);
  return { gbps: (j.end.sum_received?.bits_per_second ?? 0) / 1e9, retransmits: j.end.sum_sent?.retransmits ?? 0 };
}

/** UDP with small payloads as fast as the sender can go: pps sent and received, loss.
 *  `cpus`: [client CPU, server CPU] (iperf3 -A), else unpinned. */
export async function iperfUdp(ns: Netns, host: string, port: number, durationS: number, payload = 64, cpus?: [number, number]): Promise<IperfUdpResult> {
  const pin = cpus ? ['-A', `${cpus[0]},${cpus[1]}`] : [];
  const j = await iperf(ns, ['-c', host, '-p', String(port), '-u', '-l', String(payload), '-b', '0', ...pin], durationS);
  const s = j.end.sum;
  if (!s || s.seconds <= 0) throw new Error('iperf3 UDP: no summary');
  return { sentPps: s.packets / s.seconds, receivedPps: (s.packets - s.lost_packets) / s.seconds, lossPercent: s.lost_percent };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, host, port, rate, dur, timeout] = argv;
  if (cmd !== 'latency' || !host || !port || !rate || !dur) {
    console.error('usage: load.js latency <host> <port> <ratePerSec> <durationMs> [timeoutMs]');
    return 2;
  }
  const res = await fixedRateLatency(host, Number(port), Number(rate), Math.min(Number(dur), 120_000), Number(timeout ?? 2000));
  process.stdout.write(JSON.stringify(res) + '\n');
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((c) => { process.exitCode = c; });
}
