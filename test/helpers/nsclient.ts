// Tiny clients run inside a namespace with `ip netns exec <ns> node nsclient.js ...`, for
// what curl cannot do. Usage:
//   nsclient.js udp <addr> <port> <payload> <timeoutMs>   prints the reply, nothing on timeout
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

async function main(argv: string[]): Promise<number> {
  const [cmd, addr, port, payload, timeout] = argv;
  if (cmd !== 'udp' || !addr || !port || payload === undefined) {
    console.error('usage: nsclient.js udp <addr> <port> <payload> [timeoutMs]');
    return 2;
  }
  const reply = await udp(addr, Number(port), payload, Number(timeout ?? 2000));
  if (reply !== null) process.stdout.write(reply + '\n');
  return 0;
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; });
