// What runs inside a pod namespace. As a script (`node podserver.js --name <pod>`), it serves
// HTTP on :8080 ("Hello, <pod>\n"; GET /ip answers the peer's address so externalTrafficPolicy
// Local source preservation is checkable) and UDP echo on :9000 ("<pod>:<payload>"). It exits
// when its stdin closes (the parent died or let go) or after --max-lifetime seconds, so it can
// never outlive a test run by much.
//
// As a module it starts those servers in a topology's pods, plus on demand iperf3 servers and
// nginx. nginx serves the high-rate benchmarks (new connections per second, latency): a Node
// server spends more CPU per connection than the datapath under test and would hide the
// difference between modes on a 2-core machine; the Node server stays for functional tests.
import http from 'node:http';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { helperScript, type Topology, type TopoPod } from './topology.js';
import { waitForOutput } from './netns.js';

export const HTTP_PORT = 8080;
export const UDP_PORT = 9000;
export const NGINX_PORT = 8081;
const DEFAULT_LIFETIME_S = 1800;

// ---------- the server process ----------

function serve(name: string, httpPort: number, udpPort: number): Promise<void> {
  const answer: http.RequestListener = (req, res) => {
    const body = req.url === '/ip' ? `${(req.socket.remoteAddress ?? '').replace(/^::ffff:/, '')}\n` : `Hello, ${name}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const [server, server6] = [http.createServer(answer), http.createServer(answer)];
  server.keepAliveTimeout = 1000;
  server6.keepAliveTimeout = 1000;
  // IPv4 and IPv6 on separate sockets (IPv6-only), so IPv4 peers look exactly as before.
  const echo = (sock: dgram.Socket) => sock.on('message', (msg, rinfo) => sock.send(`${name}:${msg.toString()}`, rinfo.port, rinfo.address));
  const udp = echo(dgram.createSocket('udp4'));
  const udp6 = echo(dgram.createSocket({ type: 'udp6', ipv6Only: true }));
  return Promise.all([
    new Promise<void>((res, rej) => { server.once('error', rej); server.listen(httpPort, '0.0.0.0', res); }),
    new Promise<void>((res, rej) => { server6.once('error', rej); server6.listen({ port: httpPort, host: '::', ipv6Only: true }, res); }),
    new Promise<void>((res, rej) => { udp.once('error', rej); udp.bind(udpPort, '0.0.0.0', res); }),
    new Promise<void>((res, rej) => { udp6.once('error', rej); udp6.bind(udpPort, '::', res); }),
  ]).then(() => undefined);
}

function flag(argv: string[], name: string, dflt?: string): string {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`podserver: --${name} is required`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const name = flag(argv, 'name');
  const lifetime = Number(flag(argv, 'max-lifetime', String(DEFAULT_LIFETIME_S)));
  setTimeout(() => process.exit(0), lifetime * 1000).unref();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  await serve(name, Number(flag(argv, 'http', String(HTTP_PORT))), Number(flag(argv, 'udp', String(UDP_PORT))));
  process.stdout.write('ready\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).catch((e: Error) => { console.error(e.message); process.exit(1); });
}

// ---------- starting things inside pods ----------

/** Resolve once `pattern` shows up on the child's stdout/stderr; reject on exit or timeout. */
/** Start the HTTP/UDP pod server in every pod (or the given ones); resolves when all listen. */
export async function startPodServers(topo: Topology, pods: TopoPod[] = topo.pods, lifetimeS = DEFAULT_LIFETIME_S): Promise<void> {
  await Promise.all(pods.map((pod) => {
    const p = topo.set.track(pod.ns.spawn(process.execPath, [helperScript('podserver.js'), '--name', pod.name,
      '--max-lifetime', String(lifetimeS)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    return waitForOutput(p, /^ready$/m, `podserver ${pod.name}`);
  }));
}

export interface IperfServer { port: number; proc: ChildProcess; stop(): void }

/** The iperf3 server's command line; `cpu`: run under taskset on that CPU only (taskset execs
 *  iperf3 in its own process: the pid tracked and killed is iperf3's). */
export function iperfServerCommand(port: number, oneOff: boolean, cpu?: number): string[] {
  // --forceflush: stdout is a pipe, and the readiness line must not sit in a buffer.
  const iperf3 = ['iperf3', '-s', '-p', String(port), '--forceflush', ...(oneOff ? ['-1'] : [])];
  return cpu === undefined ? iperf3 : ['taskset', '-c', String(cpu), ...iperf3];
}

/**
 * iperf3 server in a pod. `oneOff` makes it exit after one test; otherwise it runs until
 * stop() or topology teardown. `cpu`: the server runs on that CPU only (taskset), else unpinned.
 */
export async function startIperfServer(topo: Topology, podName: string, opts: { port?: number; oneOff?: boolean; cpu?: number } = {}): Promise<IperfServer> {
  const port = opts.port ?? 5201;
  const [cmd, ...rest] = iperfServerCommand(port, opts.oneOff ?? false, opts.cpu);
  const proc = topo.set.track(topo.nsFor(podName).spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] }));
  try {
    await waitForOutput(proc, /Server listening on/, `iperf3 -s in ${podName}`);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return { port, proc, stop: () => { proc.kill('SIGKILL'); } };
}

export interface NginxServer { port: number; dir: string; stop(): Promise<void> }

/** nginx inside a pod namespace only, with its own prefix, pid and logs under a temp dir.
 *  `cpu`: nginx runs on that CPU only (taskset), else unpinned. */
export async function startNginx(topo: Topology, podName: string, port = NGINX_PORT, cpu?: number): Promise<NginxServer> {
  const dir = await mkdtemp(join(tmpdir(), `xlb-nginx-${podName}-`));
  const pod = topo.pods.find((p) => p.name === podName);
  // A dual-stack pod serves its IPv6 address too.
  const listen6 = pod?.ip6 ? ` listen [::]:${port} ipv6only=on reuseport backlog=4096;` : '';
  const conf = [
    'daemon off;', 'master_process off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`, 'events { worker_connections 4096; }',
    'http {', '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
    '  keepalive_requests 1000000;',
    `  server { listen ${port} reuseport backlog=4096;${listen6} location / { default_type text/plain; return 200 "Hello, ${podName}\\n"; } }`,
    '}',
  ].join('\n');
  await writeFile(join(dir, 'nginx.conf'), conf);
  const nginx = ['nginx', '-p', dir, '-c', join(dir, 'nginx.conf')];
  // taskset execs nginx in its own process: the pid tracked and killed is nginx's
  const [cmd, ...args] = cpu === undefined ? nginx : ['taskset', '-c', String(cpu), ...nginx];
  const proc = topo.set.track(topo.nsFor(podName).spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  try {
    await waitUntilServing(topo, podName, `http://${pod?.ip ?? '127.0.0.1'}:${port}/`, proc);
  } catch (e) {
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { port, dir, stop: async () => { proc.kill('SIGKILL'); await rm(dir, { recursive: true, force: true }); } };
}

async function waitUntilServing(topo: Topology, podName: string, url: string, proc: ChildProcess): Promise<void> {
  let exited = false;
  proc.once('exit', () => { exited = true; });
  for (let i = 0; i < 50 && !exited; i++) {
    const r = await topo.curl(podName, url, { timeoutMs: 500 });
    if (r.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nginx in ${podName}: not serving ${url}${exited ? ' (exited)' : ''}`);
}
