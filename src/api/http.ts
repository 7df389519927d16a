// A small HTTP listener shared by /healthz, /metrics and the healthCheckNodePort servers.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpEndpoint {
  address: string;
  /** the bound port (the real one when 0 was asked for) */
  port: number;
  close(): Promise<void>;
}

/** "host:port", "[v6]:port" or ":port" (every address) -> parts. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`bad listen address '${addr}' (want host:port, e.g. 0.0.0.0:10256)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`bad port in listen address '${addr}'`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function listenHttp(handler: RequestListener, host: string, port: number): Promise<HttpEndpoint> {
  const server: Server = createServer(handler);
  // Probes must not keep a closing server alive.
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({
        address: a.address,
        port: a.port,
        close: () => new Promise<void>((res) => {
          server.close(() => res());
          server.closeAllConnections();
        }),
      });
    });
  });
}
