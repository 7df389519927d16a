// Ports the node itself uses, which SNAT must leave out of --snat-port-range: a SNATed flow
// on one of them would take the replies of the node's own socket (a listener, or one of the
// node's own connections, e.g. kubelet probing a pod, which picks its source port from
// ip_local_port_range), as netfilter's masquerade avoids by asking conntrack. The agent reads
// them from its own network namespace (the node's) and writes them into snat_skip.
import { readFile } from 'node:fs/promises';

interface PortRange { min: number; max: number }

const TCP_LISTEN = '0A';

/** Local ports of /proc/net/{tcp,udp}[6] lines: TCP listeners, every bound UDP socket. */
export function parseProcNetPorts(text: string, tcp: boolean): number[] {
  const out: number[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    if (tcp && f[3] !== TCP_LISTEN) continue;
    const port = parseInt(f[1].split(':')[1] ?? '', 16);
    if (port > 0) out.push(port);
  }
  return out;
}

/** "8080,9000-9010" (ip_local_reserved_ports) or "32768\t60999" (ip_local_port_range). */
export function parsePortList(text: string): PortRange[] {
  const t = text.trim();
  const range = /^(\d+)\s+(\d+)$/.exec(t);
  if (range) return [{ min: Number(range[1]), max: Number(range[2]) }];
  return t.split(',').filter(Boolean).map((p) => {
    const [a, b] = p.split('-').map(Number);
    return { min: a, max: b ?? a };
  });
}

function read(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/**
 * The node's ports inside `range`: listeners, ip_local_port_range, ip_local_reserved_ports.
 * Read off the agent's thread: on a node with many sockets the kernel takes tens of ms to
 * write /proc/net/tcp, and the sweep asks every few seconds (a change waited behind it).
 */
export async function nodePortsIn(range: PortRange, proc = '/proc'): Promise<Set<number>> {
  const out = new Set<number>();
  const add = (p: number) => { if (p >= range.min && p <= range.max) out.add(p); };
  const sockets = (['tcp', 'tcp6', 'udp', 'udp6'] as const).map(async (file) => parseProcNetPorts(await read(`${proc}/self/net/${file}`), file.startsWith('tcp')));
  for (const ports of await Promise.all(sockets)) for (const p of ports) add(p);
  for (const f of ['ip_local_port_range', 'ip_local_reserved_ports']) {
    for (const r of parsePortList(await read(`${proc}/sys/net/ipv4/${f}`))) {
      for (let p = Math.max(r.min, range.min); p <= Math.min(r.max, range.max); p++) out.add(p);
    }
  }
  return out;
}
