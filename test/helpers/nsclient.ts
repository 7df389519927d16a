// Tiny clients run inside a namespace with `ip netns exec <ns> node nsclient.js ...`, for
// what curl cannot do. Usage:
//   nsclient.js udp <addr> <port> <payload> <timeoutMs>   prints the reply, nothing on timeout
//   nsclient.js udp-each <addr> <port> <payloads as a JSON list> <timeoutMs>
//       one datagram per payload, one after the other, each from a new socket (source port):
//       prints a JSON list of the replies (null on timeout); one process where `udp` takes one each
//   nsclient.js udp-steady <addr> <port> <sport> <everyMs> <durationMs> [padBytes]
//     one socket bound to <sport> (as a DNS resolver keeps one) sends datagram i ("i", or
//     padBytes of 'x' then ":i") every everyMs for durationMs, then prints one JSON line: per
//     datagram the ms it was sent at (since the start) and the reply with the address it came
//     from, or null; a line "answered" first, as soon as the first reply came
//   nsclient.js tcp|udp-from|udp-connected <addr> <port> <payload> <timeoutMs>
//       prints one JSON SockResult: the reply, where it came from (recvfrom / getpeername as
//       the socket reports them), or the error code and how long until it came
//   nsclient.js udp-hold <addr> <port> <payload> <timeoutMs> <pauseMs>
//       one connected UDP socket used twice, pauseMs apart: prints [SockResult, SockResult]
import dgram from 'node:dgram';
import net from 'node:net';

export interface SockResult {
  reply?: string;
  /** recvfrom's source (UDP) */
  from?: string;
  /** getpeername (TCP, connected UDP) */
  peer?: string;
  error?: string;
  ms: number;
}

/** An IPv6 address (a v4-mapped one too) needs an AF_INET6 socket; it is dual-stack (not v6only). */
const udpType = (addr: string): 'udp4' | 'udp6' => (net.isIPv6(addr) ? 'udp6' : 'udp4');

function udp(addr: string, port: number, payload: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(udpType(addr));
    const timer = setTimeout(() => { sock.close(); resolve(null); }, timeoutMs);
    sock.on('message', (msg) => { clearTimeout(timer); sock.close(); resolve(msg.toString()); });
    sock.on('error', () => { clearTimeout(timer); sock.close(); resolve(null); });
    sock.send(payload, port, addr);
  });
}

interface SteadyDatagram { sentMs: number; reply: string | null; from?: string }

function udpSteady(addr: string, port: number, sport: number, everyMs: number, durationMs: number, pad = 0): Promise<SteadyDatagram[]> {
  return new Promise((resolve) => {
    // IPv6-only: an IPv4 flow of the same source port may run beside it
    const sock = dgram.createSocket({ type: udpType(addr), ipv6Only: net.isIPv6(addr) });
    const t0 = performance.now();
    const sent: SteadyDatagram[] = [];
    sock.on('message', (msg, rinfo) => {
      const [, i] = /:(\d+)$/.exec(msg.toString()) ?? [];
      const d = sent[Number(i)];
      if (!sent.some((x) => x.reply !== null)) process.stdout.write('answered\n');
      if (d && d.reply === null) Object.assign(d, { reply: msg.toString(), from: `${rinfo.address}:${rinfo.port}` });
    });
    sock.on('error', () => undefined);     // an ICMP error is an unanswered datagram, nothing more
    sock.bind(sport, () => {
      const timer = setInterval(() => {
        if (performance.now() - t0 >= durationMs) {
          clearInterval(timer);
          setTimeout(() => { sock.close(); resolve(sent); }, 500);
          return;
        }
        sent.push({ sentMs: Math.round(performance.now() - t0), reply: null });
        sock.send(pad ? `${'x'.repeat(pad)}:${sent.length - 1}` : String(sent.length - 1), port, addr);
      }, everyMs);
    });
  });
}

/** An HTTP/1.0 GET whose body is the reply (the pod server answers "Hello, <pod>"). */
function tcp(addr: string, port: number, _payload: string, timeoutMs: number): Promise<SockResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const r: SockResult = { ms: 0 };
    const done = () => { r.ms = Math.round(performance.now() - t0); resolve(r); };
    const sock = net.connect({ host: addr, port });
    let data = '';
    sock.setTimeout(timeoutMs, () => { r.error = 'ETIMEDOUT'; sock.destroy(); done(); });
    sock.on('connect', () => {
      r.peer = `${sock.remoteAddress}:${sock.remotePort}`;
      sock.write(`GET / HTTP/1.0\r\nHost: ${addr}\r\n\r\n`);
    });
    sock.on('data', (d) => { data += d.toString(); });
    sock.on('end', () => { r.reply = data.slice(data.indexOf('\r\n\r\n') + 4).trim(); done(); });
    sock.on('error', (e: NodeJS.ErrnoException) => { r.error = e.code ?? e.message; done(); });
  });
}

function udpSock(connected: boolean, addr: string, port: number, payload: string, timeoutMs: number): Promise<SockResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const r: SockResult = { ms: 0 };
    const sock = dgram.createSocket(udpType(addr));
    const done = () => { clearTimeout(timer); r.ms = Math.round(performance.now() - t0); sock.close(); resolve(r); };
    const timer = setTimeout(() => { r.error = 'ETIMEDOUT'; done(); }, timeoutMs);
    sock.on('message', (msg, rinfo) => { r.reply = msg.toString(); r.from = `${rinfo.address}:${rinfo.port}`; done(); });
    sock.on('error', (e: NodeJS.ErrnoException) => { r.error = e.code ?? e.message; done(); });
    const send = () => sock.send(payload, (e) => { if (e) { r.error = (e as NodeJS.ErrnoException).code ?? e.message; done(); } });
    if (!connected) {
      sock.send(payload, port, addr, (e) => { if (e) { r.error = (e as NodeJS.ErrnoException).code ?? e.message; done(); } });
      return;
    }
    sock.connect(port, addr, () => {
      const a = sock.remoteAddress();
      r.peer = `${a.address}:${a.port}`;
      send();
    });
  });
}

/** Send on a connected socket and wait for one reply or error. */
function exchange(sock: dgram.Socket, payload: string, timeoutMs: number): Promise<SockResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const r: SockResult = { ms: 0 };
    const done = () => {
      clearTimeout(timer);
      sock.removeListener('message', onMsg);
      sock.removeListener('error', onErr);
      r.ms = Math.round(performance.now() - t0);
      resolve(r);
    };
    const onMsg = (msg: Buffer, rinfo: dgram.RemoteInfo) => { r.reply = msg.toString(); r.from = `${rinfo.address}:${rinfo.port}`; done(); };
    const onErr = (e: NodeJS.ErrnoException) => { r.error = e.code ?? e.message; done(); };
    const timer = setTimeout(() => { r.error = 'ETIMEDOUT'; done(); }, timeoutMs);
    sock.on('message', onMsg);
    sock.on('error', onErr);
    try {
      sock.send(payload, (e) => { if (e) onErr(e as NodeJS.ErrnoException); });
    } catch (e) {
      onErr(e as NodeJS.ErrnoException);
    }
  });
}

/** A connected UDP socket used twice, pauseMs apart (a resolver that keeps its socket). */
async function udpHold(addr: string, port: number, payload: string, timeoutMs: number, pauseMs: number): Promise<SockResult[]> {
  const sock = dgram.createSocket(udpType(addr));
  let pending: string | undefined; // an error the socket reported between the two uses
  sock.on('error', (e: NodeJS.ErrnoException) => { pending ??= e.code ?? e.message; });
  await new Promise<void>((res) => sock.connect(port, addr, res));
  const first = await exchange(sock, payload, timeoutMs);
  await new Promise((res) => setTimeout(res, pauseMs));
  const second = pending ? { error: pending, ms: 0 } : await exchange(sock, payload, timeoutMs);
  try { sock.close(); } catch { /* already closed */ }
  return [first, second];
}

async function main(argv: string[]): Promise<number> {
  const [cmd, addr, port, payload, timeout] = argv;
  if (cmd === 'udp-steady') {
    const [, , , sport, everyMs, durationMs, pad] = argv;
    process.stdout.write(JSON.stringify(await udpSteady(addr!, Number(port), Number(sport), Number(everyMs), Number(durationMs), Number(pad ?? 0))) + '\n');
    return 0;
  }
  if (cmd === 'udp-hold') {
    process.stdout.write(JSON.stringify(await udpHold(addr!, Number(port), payload!, Number(timeout), Number(argv[5]))) + '\n');
    return 0;
  }
  const timeoutMs = Number(timeout ?? 2000);
  if (!addr || !port || payload === undefined) {
    console.error('usage: nsclient.js udp|tcp|udp-from|udp-connected <addr> <port> <payload> [timeoutMs]');
    return 2;
  }
  if (cmd === 'udp-each') {
    const replies: Array<string | null> = [];
    for (const p of JSON.parse(payload) as string[]) replies.push(await udp(addr, Number(port), p, timeoutMs));
    process.stdout.write(JSON.stringify(replies) + '\n');
    return 0;
  }
  if (cmd === 'udp') {
    const reply = await udp(addr, Number(port), payload, timeoutMs);
    if (reply !== null) process.stdout.write(reply + '\n');
    return 0;
  }
  const fn = { tcp, 'udp-from': udpSock.bind(null, false), 'udp-connected': udpSock.bind(null, true) }[cmd ?? ''];
  if (!fn) {
    console.error(`nsclient: unknown command ${cmd}`);
    return 2;
  }
  process.stdout.write(JSON.stringify(await fn(addr, Number(port), payload, timeoutMs)) + '\n');
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((c) => { process.exitCode = c; });
}
