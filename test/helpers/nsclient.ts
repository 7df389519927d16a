// Tiny clients run inside a namespace with `ip netns exec <ns> node nsclient.js ...`, for
// what curl cannot do. Usage:
//   nsclient.js udp <addr> <port> <payload> <timeoutMs>   prints the reply, nothing on timeout
//   nsclient.js udp-steady <addr> <port> <sport> <everyMs> <durationMs> [padBytes]
//     one socket bound to <sport> (as a DNS resolver keeps one) sends datagram i ("i", or
//     padBytes of 'x' then ":i") every everyMs for durationMs, then prints one JSON line: per
//     datagram the ms it was sent at (since the start) and the reply with the address it came
//     from, or null
import dgram from 'node:dgram';

function udp(addr: string, port: number, payload: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => { sock.close(); resolve(null); }, timeoutMs);
    sock.on('message', (msg) => { clearTimeout(timer); sock.close(); resolve(msg.toString()); });
    sock.on('error', () => { clearTimeout(timer); sock.close(); resolve(null); });
    sock.send(payload, port, addr);
  });
}

interface SteadyDatagram { sentMs: number; reply: string | null; from?: string }

function udpSteady(addr: string, port: number, sport: number, everyMs: number, durationMs: number, pad = 0): Promise<SteadyDatagram[]> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const t0 = performance.now();
    const sent: SteadyDatagram[] = [];
    sock.on('message', (msg, rinfo) => {
      const [, i] = /:(\d+)$/.exec(msg.toString()) ?? [];
      const d = sent[Number(i)];
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

async function main(argv: string[]): Promise<number> {
  const [cmd, addr, port, payload, timeout] = argv;
  if (cmd === 'udp-steady') {
    const [, , , sport, everyMs, durationMs, pad] = argv;
    process.stdout.write(JSON.stringify(await udpSteady(addr, Number(port), Number(sport), Number(everyMs), Number(durationMs), Number(pad ?? 0))) + '\n');
    return 0;
  }
  if (cmd !== 'udp' || !addr || !port || payload === undefined) {
    console.error('usage: nsclient.js udp <addr> <port> <payload> [timeoutMs]');
    return 2;
  }
  const reply = await udp(addr, Number(port), payload, Number(timeout ?? 2000));
  if (reply !== null) process.stdout.write(reply + '\n');
  return 0;
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; });
