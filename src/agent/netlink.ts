// Interface and address discovery, and link events, through iproute2's JSON output and
// `ip monitor`, and the per-interface setting the datapath needs (accept_local). The agent
// runs inside the node's network namespace, so every call here sees exactly that namespace.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AgentOptions } from './options.js';
import type { Logger } from '../log.js';
import { canonicalIP, ipFamily } from '../model/ip.js';

const pexec = promisify(execFile);

export interface LinkInfo {
  name: string;
  ifindex: number;
  kind: string; // 'veth', 'bridge', '' for physical, ...
  up: boolean;
  mac: string | null; // the link's own hardware address (Ethernet-like links)
  /** IPv4 addresses, then global-scope IPv6 ones (link-local addresses are no Service destination) */
  addrs: string[];
  /** IPv4, then global-scope IPv6 addresses with their prefix length (addr/len): the subnets on the link */
  cidrs: string[];
  /** IPv4 subnet broadcast addresses (prefixes up to /30), sources the datapath never answers */
  broadcasts: string[];
}

/** The broadcast address of addr/len, or null for /31 and /32 (no broadcast address). */
export function subnetBroadcast(addr: string, len: number): string | null {
  if (len > 30) return null;
  const n = addr.split('.').reduce((acc, o) => (acc << 8) | Number(o), 0) >>> 0;
  const b = (n | (len === 0 ? 0xffffffff : (1 << (32 - len)) - 1)) >>> 0;
  return [24, 16, 8, 0].map((s) => (b >>> s) & 0xff).join('.');
}

async function ipJson(args: string[]): Promise<unknown[]> {
  const { stdout } = await pexec('ip', ['-j', ...args], { timeout: 10_000, maxBuffer: 32 << 20 });
  const text = stdout.toString().trim();
  return text ? (JSON.parse(text) as unknown[]) : [];
}

export async function listLinks(): Promise<LinkInfo[]> {
  const rows = (await ipJson(['-d', 'addr', 'show'])) as Array<{
    ifname: string; ifindex: number; flags?: string[]; operstate?: string; link_type?: string; address?: string;
    linkinfo?: { info_kind?: string }; addr_info?: Array<{ family: string; local: string; prefixlen?: number; scope?: string }>;
  }>;
  return rows.map((r) => ({
    name: r.ifname,
    ifindex: r.ifindex,
    kind: r.linkinfo?.info_kind ?? '',
    up: (r.flags ?? []).includes('UP'),
    mac: r.link_type === 'ether' && r.address ? r.address : null,
    cidrs: [
      ...(r.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen ?? 32}`),
      ...(r.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope === 'global').map((a) => `${canonicalIP(a.local) ?? a.local}/${a.prefixlen ?? 128}`),
    ],
    addrs: [
      ...(r.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local),
      ...(r.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope === 'global').map((a) => canonicalIP(a.local) ?? a.local),
    ],
    broadcasts: (r.addr_info ?? []).filter((a) => a.family === 'inet')
      .map((a) => subnetBroadcast(a.local, a.prefixlen ?? 32)).filter((b): b is string => b !== null),
  }));
}

export interface NodeAddresses {
  addrs: string[];
  broadcasts: string[];
  /** the IPv4 SNAT address; null: the node has none */
  snatAddr: string | null;
  /** the IPv6 SNAT address; null: the node has none */
  snatAddr6: string | null;
}

/**
 * The node's addresses as the datapath needs them: the Node's own and the devices' (both
 * families), the devices' subnet broadcasts that are no address of theirs, and a SNAT address
 * per family (the Node's first of that family, else a device's).
 */
export function nodeAddresses(nodeAddrs: string[], links: LinkInfo[], devices: string[]): NodeAddresses {
  const addrs = new Set<string>(nodeAddrs);
  const broadcasts = new Set<string>();
  const deviceAddrs: string[] = [];
  for (const l of links) {
    if (!devices.includes(l.name)) continue;
    for (const a of l.addrs) { addrs.add(a); deviceAddrs.push(a); }
    for (const b of l.broadcasts) broadcasts.add(b);
  }
  const first = (f: 4 | 6) => nodeAddrs.find((a) => ipFamily(a) === f) ?? deviceAddrs.find((a) => ipFamily(a) === f) ?? null;
  return { addrs: [...addrs], broadcasts: [...broadcasts].filter((b) => !addrs.has(b)), snatAddr: first(4), snatAddr6: first(6) };
}

/** Interfaces holding the default route, plus those holding one of `nodeAddrs`. */
export async function detectDevices(nodeAddrs: string[]): Promise<string[]> {
  const routes = (await ipJson(['route', 'show', 'default'])) as Array<{ dev?: string }>;
  const out = new Set<string>();
  for (const r of routes) if (r.dev) out.add(r.dev);
  for (const l of await listLinks()) {
    if (l.name !== 'lo' && l.addrs.some((a) => nodeAddrs.includes(a))) out.add(l.name);
  }
  return [...out].sort();
}

/** Emits 'change' (coalesced) whenever links are added, removed or change state. */
export class LinkMonitor extends EventEmitter {
  private proc: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  start(): void {
    this.stopped = false;
    const p = spawn('ip', ['-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.proc = p;
    p.stdout?.on('data', () => this.kick());
    p.on('exit', () => {
      this.proc = null;
      // ip monitor should run for the agent's lifetime; restart it if it dies.
      if (!this.stopped) setTimeout(() => { if (!this.stopped) this.start(); }, 1000).unref();
    });
  }

  private kick(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.emit('change'); }, 100);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.proc?.kill();
    this.proc = null;
  }
}

/** Minimal glob (only `*` and `?`) for --pod-interfaces. */
export function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  return re.test(name);
}

/** Pod interfaces: the globs if given, else every veth that is not a device. */
export function selectPodInterfaces(links: LinkInfo[], devices: string[], globs: string[]): LinkInfo[] {
  return links.filter((l) => {
    if (devices.includes(l.name) || l.name === 'lo') return false;
    if (globs.length > 0) return globs.some((g) => globMatch(g, l.name));
    return l.kind === 'veth';
  });
}

/** A named device that does not exist is a typo unless the operator said it comes later. */
export async function checkDevices(o: Pick<AgentOptions, 'devices' | 'waitForDevices'>): Promise<void> {
  if (!o.devices.length || o.waitForDevices) return;
  const present = (await listLinks()).map((l) => l.name);
  const missing = o.devices.filter((d) => !present.includes(d));
  if (missing.length) {
    throw new Error(`--devices: no interface named ${missing.join(', ')} on this node (it has ${present.join(', ')}); ` +
      'fix --devices, or give --wait-for-devices true to attach when it appears');
  }
}

/**
 * The device hook hands a packet it SNATed to the node's own address to the stack when the FIB
 * cannot forward it (XDP: no neighbour yet; both: e.g. fragmentation needed); without
 * accept_local the kernel drops it as a martian ("saddr is local").
 */
export function allowLocalSource(dev: string, log: Logger): void {
  const f = `/proc/sys/net/ipv4/conf/${dev}/accept_local`;
  try {
    if (readFileSync(f, 'utf8').trim() !== '1') {
      writeFileSync(f, '1');
      log.info({ dev }, 'set accept_local=1 (SNATed packets passed to the stack)');
    }
  } catch (e) {
    log.warn({ dev, err: (e as Error).message }, 'could not set accept_local');
  }
}
