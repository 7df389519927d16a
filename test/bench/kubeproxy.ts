// kube-proxy-style baselines rendered from the same desired state (ServiceSpec[]) the xlb agent
// programs, so a benchmark compares datapaths and not Service sets. Two layouts, following
// kube-proxy's own rule structure (written from its documented behaviour):
//   iptables: nat KUBE-SERVICES -> KUBE-SVC-<hash> (random statistic chain) -> KUBE-SEP-<hash>
//             DNAT; NodePorts via KUBE-NODEPORTS; LB IPs/externalIPs/NodePorts through
//             KUBE-EXT-<hash>; KUBE-MARK-MASQ marks, KUBE-POSTROUTING masquerades; filter-table
//             REJECT for Services without endpoints.
//   nftables: table ip kube-proxy; a `service-ips` verdict map (addr . proto . port), a
//             `service-nodeports` map, per-service chains with `numgen random mod N vmap`,
//             endpoint chains that DNAT, mark-and-masquerade, no-endpoint reject maps.
// Both families from the same Services: each family's frontends (FrontendSpec.family) get
// their own rules, IPv4 through iptables-restore / `table ip kube-proxy`, IPv6 through
// ip6tables-restore / `table ip6 kube-proxy`, as kube-proxy's per-family proxiers do.
// Applied only inside node namespaces. Session affinity and source ranges are not rendered:
// the benchmarks do not use them.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendSpec, Family, FrontendSpec, Protocol, ServiceSpec } from '../../src/model/types.js';
import type { Netns } from '../helpers/netns.js';
import { run } from '../helpers/netns.js';
import { CLUSTER_CIDR, CLUSTER_CIDR6 } from './services.js';

/** What differs between the families' rules. */
interface FamilyRules {
  /** host prefix length suffix */
  host: string;
  clusterCidr: string;
  restore: string;
  /** nft table family and address match keyword (both 'ip' / 'ip6'), set element type, loopback */
  nft: 'ip' | 'ip6';
  nftAddr: string;
  loopback: string;
}
const FAMILY: Record<Family, FamilyRules> = {
  4: { host: '/32', clusterCidr: CLUSTER_CIDR, restore: 'iptables-restore', nft: 'ip', nftAddr: 'ipv4_addr', loopback: '127.0.0.0/8' },
  6: { host: '/128', clusterCidr: CLUSTER_CIDR6, restore: 'ip6tables-restore', nft: 'ip6', nftAddr: 'ipv6_addr', loopback: '::1' },
};

/** The families the desired state has frontends in (absent family = 4, as in the model). */
export function familiesOf(specs: ServiceSpec[]): Family[] {
  const seen = new Set<Family>();
  for (const s of specs) for (const f of s.frontends) seen.add(f.family ?? 4);
  const out = ([4, 6] as const).filter((f) => seen.has(f));
  return out.length ? out : [4]; // no Service at all: still kube-proxy's base IPv4 rules
}

/** One Service port with every address it is reachable on (kube-proxy's unit of rules). */
export interface ServicePort {
  /** ns/name:port */
  name: string;
  proto: Protocol;
  clusterIP?: { addr: string; port: number };
  nodePort?: number;
  externalAddrs: Array<{ addr: string; port: number }>;
  endpoints: BackendSpec[];
  /** externalTrafficPolicy Local: external traffic only to these */
  localEndpoints: BackendSpec[] | null;
}

/** Group one family's frontends into kube-proxy's service ports. */
export function servicePorts(specs: ServiceSpec[], family: Family = 4): ServicePort[] {
  const byKey = new Map<string, ServicePort>();
  for (const svc of specs) {
    for (const f of svc.frontends) {
      if ((f.family ?? 4) !== family) continue;
      const key = `${f.service}:${f.portName}|${f.proto}`;
      let sp = byKey.get(key);
      if (!sp) {
        sp = { name: `${f.service}:${f.portName}`, proto: f.proto, externalAddrs: [], endpoints: [], localEndpoints: null };
        byKey.set(key, sp);
      }
      addFrontend(sp, f);
    }
  }
  return [...byKey.values()];
}

function addFrontend(sp: ServicePort, f: FrontendSpec): void {
  if (f.type === 'ClusterIP' && f.addr) {
    sp.clusterIP = { addr: f.addr, port: f.port };
    if (f.scope === 'internal') sp.endpoints = f.backends.filter((b) => b.selectable);
    return;
  }
  if (f.type === 'NodePort') sp.nodePort = f.port;
  else if (f.addr && !sp.externalAddrs.some((a) => a.addr === f.addr && a.port === f.port)) sp.externalAddrs.push({ addr: f.addr, port: f.port });
  if (f.localOnly) sp.localEndpoints = f.backends.filter((b) => b.selectable && b.local);
}

function hash16(s: string): string {
  // base32 of a sha256, as kube-proxy does, so chain names look and sort like its own.
  const bytes = createHash('sha256').update(s).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0, out = '';
  for (const b of bytes) {
    value = (value << 8) | b; bits += 8;
    while (bits >= 5 && out.length < 16) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
  }
  return out;
}

const lc = (p: Protocol) => p.toLowerCase();
const ep = (b: BackendSpec) => (b.addr.includes(':') ? `[${b.addr}]:${b.port}` : `${b.addr}:${b.port}`);

// ---------------- iptables ----------------

function svcChain(sp: ServicePort, prefix: string): string { return `${prefix}-${hash16(sp.name + lc(sp.proto))}` }
function sepChain(sp: ServicePort, b: BackendSpec): string { return `KUBE-SEP-${hash16(sp.name + lc(sp.proto) + ep(b))}` }

/** Random spread over `eps` from `chain`, each endpoint in its own KUBE-SEP chain. */
function spreadRules(chain: string, sp: ServicePort, eps: BackendSpec[], out: string[]): void {
  eps.forEach((b, i) => {
    const left = eps.length - i;
    const stat = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(10)} ` : '';
    out.push(`-A ${chain} -m comment --comment "${sp.name} -> ${ep(b)}" ${stat}-j ${sepChain(sp, b)}`);
  });
}

/** kube-proxy's conntrack options: without `conntrackTCPBeLiberal` (its default) it drops in its
 *  forward path what netfilter conntrack classifies INVALID (KUBE-FORWARD / filter-forward). */
export interface RuleOptions { invalidDrop?: boolean }

/** iptables-restore (family 6: ip6tables-restore) input (nat + filter) for one family of the desired state. */
export function renderIptables(specs: ServiceSpec[], family: Family = 4, o: RuleOptions = {}): string {
  const fam = FAMILY[family];
  const chains = new Set<string>(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']);
  const nat: string[] = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ];
  const filter: string[] = o.invalidDrop ? [
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
  ] : [];
  const seps = new Map<string, { sp: ServicePort; b: BackendSpec }>();
  for (const sp of servicePorts(specs, family)) renderIptablesPort(sp, fam, chains, nat, filter, seps);
  for (const [chain, { sp, b }] of seps) {
    chains.add(chain);
    nat.push(`-A ${chain} -s ${b.addr}${fam.host} -j KUBE-MARK-MASQ`);
    nat.push(`-A ${chain} -p ${lc(sp.proto)} -m ${lc(sp.proto)} -j DNAT --to-destination ${ep(b)}`);
  }
  // NodePorts are matched last, only for this node's own addresses, as kube-proxy does.
  nat.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  return [
    '*filter', ':KUBE-SERVICES - [0:0]', ':KUBE-EXTERNAL-SERVICES - [0:0]', ...(o.invalidDrop ? [':KUBE-FORWARD - [0:0]'] : []),
    '-A INPUT -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES',
    '-A FORWARD -m conntrack --ctstate NEW -j KUBE-SERVICES',
    '-A FORWARD -m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES',
    '-A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES',
    ...filter, 'COMMIT',
    '*nat', ...[...chains].map((c) => `:${c} - [0:0]`), ...nat, 'COMMIT', '',
  ].join('\n');
}

function renderIptablesPort(sp: ServicePort, fam: FamilyRules, chains: Set<string>, nat: string[], filter: string[], seps: Map<string, { sp: ServicePort; b: BackendSpec }>): void {
  const p = lc(sp.proto);
  const match = (addr: string, port: number) => `-d ${addr}${fam.host} -p ${p} -m ${p} --dport ${port}`;
  if (sp.endpoints.length === 0) {
    // No endpoints: REJECT in filter rather than a silent timeout.
    if (sp.clusterIP) filter.push(`-A KUBE-SERVICES ${match(sp.clusterIP.addr, sp.clusterIP.port)} -m comment --comment "${sp.name} has no endpoints" -j REJECT`);
    for (const a of sp.externalAddrs) filter.push(`-A KUBE-EXTERNAL-SERVICES ${match(a.addr, a.port)} -j REJECT`);
    if (sp.nodePort) filter.push(`-A KUBE-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL -p ${p} -m ${p} --dport ${sp.nodePort} -j REJECT`);
    return;
  }
  const svc = svcChain(sp, 'KUBE-SVC');
  chains.add(svc);
  for (const b of sp.endpoints) seps.set(sepChain(sp, b), { sp, b });
  if (sp.clusterIP) {
    const m = match(sp.clusterIP.addr, sp.clusterIP.port);
    nat.push(`-A KUBE-SERVICES ${m} -m comment --comment "${sp.name} cluster IP" -j ${svc}`);
    nat.push(`-A ${svc} ! -s ${fam.clusterCidr} ${m} -m comment --comment "${sp.name} cluster IP" -j KUBE-MARK-MASQ`);
  }
  spreadRules(svc, sp, sp.endpoints, nat);
  if (!sp.nodePort && sp.externalAddrs.length === 0) return;
  const ext = svcChain(sp, 'KUBE-EXT');
  chains.add(ext);
  for (const a of sp.externalAddrs) nat.push(`-A KUBE-SERVICES ${match(a.addr, a.port)} -m comment --comment "${sp.name} external IP" -j ${ext}`);
  if (sp.nodePort) nat.push(`-A KUBE-NODEPORTS -p ${p} -m ${p} --dport ${sp.nodePort} -m comment --comment "${sp.name}" -j ${ext}`);
  if (sp.localEndpoints === null) {
    nat.push(`-A ${ext} -m comment --comment "masquerade traffic for ${sp.name} external destinations" -j KUBE-MARK-MASQ`, `-A ${ext} -j ${svc}`);
    return;
  }
  // externalTrafficPolicy Local: pods still get the whole Service; outsiders only local endpoints.
  nat.push(`-A ${ext} -s ${fam.clusterCidr} -m comment --comment "pod traffic for ${sp.name} external destinations" -j ${svc}`);
  if (sp.localEndpoints.length === 0) {
    for (const a of sp.externalAddrs) filter.push(`-A KUBE-EXTERNAL-SERVICES ${match(a.addr, a.port)} -m comment --comment "${sp.name} has no local endpoints" -j DROP`);
    if (sp.nodePort) filter.push(`-A KUBE-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL -p ${p} -m ${p} --dport ${sp.nodePort} -j DROP`);
    return;
  }
  const svl = svcChain(sp, 'KUBE-SVL');
  chains.add(svl);
  nat.push(`-A ${ext} -j ${svl}`);
  spreadRules(svl, sp, sp.localEndpoints, nat);
}

// ---------------- nftables ----------------

/** An nft chain name; an endpoint's suffix reads addr/port, an IPv6 address's colons as dots (nft names take no colon or bracket). */
function nftName(kind: string, sp: ServicePort, b?: BackendSpec): string {
  const [svc, port] = sp.name.split(':');
  const suffix = b ? ep(b) : '';
  return `${kind}-${hash16(sp.name + lc(sp.proto) + suffix).slice(0, 8)}-${svc}/${lc(sp.proto)}/${port}${b ? `__${b.addr.replace(/:/g, '.')}/${b.port}` : ''}`;
}

const nftBase = (f: FamilyRules, o: RuleOptions): string => `table ${f.nft} kube-proxy {
  comment "rules for kube-proxy"
  set cluster-ips { type ${f.nftAddr} ; }
  map service-ips { type ${f.nftAddr} . inet_proto . inet_service : verdict ; }
  map service-nodeports { type inet_proto . inet_service : verdict ; }
  map no-endpoint-services { type ${f.nftAddr} . inet_proto . inet_service : verdict ; }
  map no-endpoint-nodeports { type inet_proto . inet_service : verdict ; }
  chain mark-for-masquerade { meta mark set meta mark or 0x4000 ; }
  chain masquerading { meta mark and 0x4000 == 0 return ; meta mark set meta mark xor 0x4000 ; masquerade fully-random ; }
  chain services {
    ${f.nft} daddr . meta l4proto . th dport vmap @service-ips
    fib daddr type local ${f.nft} daddr != ${f.loopback} meta l4proto . th dport vmap @service-nodeports
  }
  chain reject-chain { reject ; }
  chain endpoints-check {
    ${f.nft} daddr . meta l4proto . th dport vmap @no-endpoint-services
    fib daddr type local ${f.nft} daddr != ${f.loopback} meta l4proto . th dport vmap @no-endpoint-nodeports
  }
  chain filter-prerouting { type filter hook prerouting priority -110 ; ct state new jump endpoints-check ; }
  chain filter-output { type filter hook output priority -110 ; ct state new jump endpoints-check ; }${o.invalidDrop ? `
  chain filter-forward { type filter hook forward priority -110 ; ct state invalid drop ; }` : ''}
  chain nat-prerouting { type nat hook prerouting priority dstnat ; jump services ; }
  chain nat-output { type nat hook output priority -100 ; jump services ; }
  chain nat-postrouting { type nat hook postrouting priority srcnat ; jump masquerading ; }
}`;

/** nft -f input for one family of the desired state (replaces any earlier kube-proxy table of that family). */
export function renderNftables(specs: ServiceSpec[], family: Family = 4, o: RuleOptions = {}): string {
  const fam = FAMILY[family];
  const table = `${fam.nft} kube-proxy`;
  const chains: string[] = [];
  const rules: string[] = [];
  const elems: Record<'service-ips' | 'service-nodeports' | 'no-endpoint-services' | 'no-endpoint-nodeports' | 'cluster-ips', string[]> =
    { 'service-ips': [], 'service-nodeports': [], 'no-endpoint-services': [], 'no-endpoint-nodeports': [], 'cluster-ips': [] };
  const rule = (chain: string, r: string) => rules.push(`add rule ${table} ${chain} ${r}`);
  for (const sp of servicePorts(specs, family)) renderNftPort(sp, fam, chains, rule, elems);
  const out = [`add table ${table}`, `delete table ${table}`, nftBase(fam, o)];
  for (const c of chains) out.push(`add chain ${table} ${c}`);
  for (const r of rules) out.push(r); // not push(...rules): 100,000 rules overflow the call stack
  for (const [map, list] of Object.entries(elems)) {
    // Chunks keep single nft commands a reasonable size with 10,000 Services.
    for (let i = 0; i < list.length; i += 1000) out.push(`add element ${table} ${map} { ${list.slice(i, i + 1000).join(', ')} }`);
  }
  return out.join('\n') + '\n';
}

type NftElems = Record<string, string[]>;

function renderNftPort(sp: ServicePort, fam: FamilyRules, chains: string[], rule: (c: string, r: string) => void, elems: NftElems): void {
  const p = lc(sp.proto);
  const external = [...sp.externalAddrs.map((a) => `${a.addr} . ${p} . ${a.port}`)];
  if (sp.clusterIP) elems['cluster-ips'].push(sp.clusterIP.addr);
  if (sp.endpoints.length === 0) {
    if (sp.clusterIP) elems['no-endpoint-services'].push(`${sp.clusterIP.addr} . ${p} . ${sp.clusterIP.port} : goto reject-chain`);
    for (const k of external) elems['no-endpoint-services'].push(`${k} : goto reject-chain`);
    if (sp.nodePort) elems['no-endpoint-nodeports'].push(`${p} . ${sp.nodePort} : goto reject-chain`);
    return;
  }
  const svc = nftName('service', sp);
  chains.push(svc);
  const endpointChain = (b: BackendSpec): string => nftName('endpoint', sp, b);
  for (const b of sp.endpoints) {
    const c = endpointChain(b);
    chains.push(c);
    rule(c, `${fam.nft} saddr ${b.addr} jump mark-for-masquerade`);
    rule(c, `meta l4proto ${p} dnat to ${ep(b)}`);
  }
  const spread = (chain: string, eps: BackendSpec[]) =>
    rule(chain, `numgen random mod ${eps.length} vmap { ${eps.map((b, i) => `${i} : goto ${endpointChain(b)}`).join(', ')} }`);
  if (sp.clusterIP) {
    rule(svc, `${fam.nft} daddr ${sp.clusterIP.addr} ${p} dport ${sp.clusterIP.port} ${fam.nft} saddr != ${fam.clusterCidr} jump mark-for-masquerade`);
    elems['service-ips'].push(`${sp.clusterIP.addr} . ${p} . ${sp.clusterIP.port} : goto ${svc}`);
  }
  spread(svc, sp.endpoints);
  if (!sp.nodePort && external.length === 0) return;
  const ext = nftName('external', sp);
  chains.push(ext);
  for (const k of external) elems['service-ips'].push(`${k} : goto ${ext}`);
  if (sp.nodePort) elems['service-nodeports'].push(`${p} . ${sp.nodePort} : goto ${ext}`);
  if (sp.localEndpoints === null) {
    rule(ext, 'jump mark-for-masquerade');
    rule(ext, `goto ${svc}`);
    return;
  }
  rule(ext, `${fam.nft} saddr ${fam.clusterCidr} goto ${svc}`);
  if (sp.localEndpoints.length === 0) { rule(ext, 'drop'); return; }
  const local = nftName('local', sp);
  chains.push(local);
  rule(ext, `goto ${local}`);
  spread(local, sp.localEndpoints);
}

// ---------------- applying ----------------

export type Baseline = 'iptables' | 'nftables';

/** The rules of one kind and family, as the restore tool's input text. */
export function renderBaseline(kind: Baseline, specs: ServiceSpec[], family: Family = 4, o: RuleOptions = {}): string {
  return kind === 'iptables' ? renderIptables(specs, family, o) : renderNftables(specs, family, o);
}

/** The command (in a namespace) that loads a file of renderBaseline's text; `check` only validates it. */
export function baselineCommand(kind: Baseline, family: Family, file: string, check = false): [string, string[]] {
  if (kind === 'iptables') return [FAMILY[family].restore, [...(check ? ['--test'] : []), file]];
  return ['nft', [...(check ? ['-c'] : []), '-f', file]];
}

/**
 * Install the rules for `node` inside its namespace, every family the Services have (iptables
 * and ip6tables, or nft's ip and ip6 tables); returns how long the kernel loads took.
 */
export async function applyBaseline(kind: Baseline, ns: Netns, specs: ServiceSpec[], o: { check?: boolean } & RuleOptions = {}): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'xlb-baseline-'));
  let ms = 0;
  try {
    for (const family of familiesOf(specs)) {
      const file = join(dir, `rules${family}.${kind === 'iptables' ? 'iptables' : 'nft'}`);
      await writeFile(file, renderBaseline(kind, specs, family, o));
      const [cmd, args] = baselineCommand(kind, family, file, o.check);
      const start = performance.now();
      await run('ip', ['netns', 'exec', ns.name, cmd, ...args], { timeoutMs: 300_000 });
      ms += performance.now() - start;
    }
    return ms;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Remove every baseline rule from a node namespace (the namespace is ours alone). */
export async function flushBaseline(ns: Netns): Promise<void> {
  await run('ip', ['netns', 'exec', ns.name, 'nft', 'flush', 'ruleset']);
}

/** The node's ruleset, for diagnostics. */
export async function listRuleset(ns: Netns): Promise<string> {
  return (await run('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'ruleset'])).stdout;
}
