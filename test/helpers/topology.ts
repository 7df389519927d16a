// The end-to-end topology (DESIGN §7): a client and two "nodes" on a bridge, and pods wired
// into their node the way a routed CNI (Calico-style) does it. Every address lives only in
// namespaces created here; the bridge itself sits in its own namespace so the root namespace
// gets nothing.
//
//   client (198.18.0.1) ─┐
//   node1  (198.18.0.11) ├─ br0 (in namespace "br")
//   node2  (198.18.0.12) ┘
//   nodeN: eth0 + one lxc<node#><pod#> veth per pod, /32 route per pod, the other node's
//          pod CIDR via the other node's address, default via the client, ip_forward=1
//   pod:   eth0 with its /32, default route via 169.254.1.1 (a static neighbor pointing at
//          the host-side veth's MAC, so no proxy ARP tuning is needed)
//
// Pods: each app gets `podsPerNode` pods on EACH node, numbered <app>-1, <app>-2, ... and
// placed alternately on node1, node2, node1, ... (so odd numbers on node1, even on node2).
//
// Dual stack (`dualStack: true`) adds the same plan in IPv6, ULA addresses (fd00::/8) only, each
// added `nodad` (no duplicate address detection to wait for): the bridge subnet fd00:18::/64
// (client ::1, nodes ::11 and ::12), pod CIDRs fd00:244:<node>::/64, pods' default route via
// fe80::1 (a static neighbour for the host-side veth, as 169.254.1.1 in IPv4), IPv6 forwarding
// on the nodes. Sysctls are set inside the namespaces only.
import { NetnsSet, Netns, run } from './netns.js';

export const CLIENT_IP = '198.18.0.1';
export const NODE_IPS = ['198.18.0.11', '198.18.0.12'] as const;
export const POD_CIDRS = ['10.244.1.0/24', '10.244.2.0/24'] as const;
/** Where the client sends LoadBalancer IPs / externalIPs by default. */
export const SERVICE_VIP_RANGE = '198.18.100.0/24';
const POD_GATEWAY = '169.254.1.1';

export const CLIENT_IP6 = 'fd00:18::1';
export const NODE_IPS6 = ['fd00:18::11', 'fd00:18::12'] as const;
export const POD_CIDRS6 = ['fd00:244:1::/64', 'fd00:244:2::/64'] as const;
/** Where the client sends IPv6 LoadBalancer IPs / externalIPs by default. */
export const SERVICE_VIP_RANGE6 = 'fd00:18:100::/64';
const POD_GATEWAY6 = 'fe80::1';

export type IpFamily = 4 | 6;
/** Both families, for suites that run each check in IPv4 and IPv6 on one dual-stack topology. */
export const FAMILIES: readonly IpFamily[] = [4, 6];

/** The address of a node, pod or the client in one family (6: built with dualStack). */
export function addrOf(h: { ip: string; ip6?: string }, family: IpFamily): string {
  if (family === 4) return h.ip;
  if (!h.ip6) throw new Error(`topology: ${h.ip} has no IPv6 address (build with dualStack: true)`);
  return h.ip6;
}

/** An address as a URL host: IPv6 in brackets. */
export const hostOf = (addr: string): string => (addr.includes(':') ? `[${addr}]` : addr);

/** http://addr[:port]/path, IPv6 in brackets. */
export const httpUrl = (addr: string, port?: number, path = '/'): string => `http://${hostOf(addr)}${port ? `:${port}` : ''}${path}`;

/** ip6/podCidr6: set on a dual-stack topology only */
export interface TopoNode { name: string; ns: Netns; ip: string; podCidr: string; device: 'eth0'; ip6?: string; podCidr6?: string }
export interface TopoPod { name: string; app: string; node: string; ns: Netns; ip: string; hostIf: string; ip6?: string }
export interface CurlResult { status: number; body: string; ms: number; error?: string }

export interface Topology {
  client: { ns: Netns; ip: string; ip6?: string };
  bridge: Netns;
  nodes: TopoNode[];
  pods: TopoPod[];
  set: NetnsSet;
  /** The namespace for 'client', 'br', 'node1', 'node2' or a pod name. */
  nsFor(name: string): Netns;
  /** Route `prefix` (either family) from the client via node `nodeIndex` (0-based). */
  setClientRoute(prefix: string, nodeIndex: number): Promise<void>;
  /** HTTP GET from inside `ns`; status 0 (and `error`) when no HTTP answer came. */
  curl(ns: Netns | string, url: string, opts?: { timeoutMs?: number }): Promise<CurlResult>;
  /** One UDP datagram from inside `ns`; the reply's text, or null on timeout. */
  udpEcho(ns: Netns | string, addr: string, port: number, payload: string, timeoutMs?: number): Promise<string | null>;
  /** One datagram per payload, one after the other, each from a new socket: the replies (null:
   *  none within timeoutMs). The same as udpEcho per payload, in one process. */
  udpEchoEach(ns: Netns | string, addr: string, port: number, payloads: string[], timeoutMs?: number): Promise<Array<string | null>>;
  teardown(): Promise<void>;
}

export interface TopologyOptions { tag: string; podsPerNode?: number; apps?: string[]; dualStack?: boolean }

/** Build the topology; on failure everything already made is torn down before rethrowing. */
export async function buildTopology(opts: TopologyOptions): Promise<Topology> {
  const set = new NetnsSet(opts.tag);
  try {
    return await build(set, opts);
  } catch (e) {
    await set.teardown();
    throw e;
  }
}

async function build(set: NetnsSet, opts: TopologyOptions): Promise<Topology> {
  const podsPerNode = opts.podsPerNode ?? 3;
  const apps = opts.apps ?? ['app1'];
  if (podsPerNode < 1 || podsPerNode * apps.length > 99) throw new Error('topology: 1..99 pods per node');
  // The first namespace alone (the first `ip netns add` on a machine sets up /run/netns), then
  // every independent step at once: one `ip` process costs tens of ms on a loaded machine, and
  // a topology is a hundred of them. Each namespace's own commands go in one `ip -batch`.
  const bridge = await set.add('br');
  await bridge.ipBatch([['link', 'add', 'br0', 'type', 'bridge'], ['link', 'set', 'br0', 'up']]);

  const v6 = opts.dualStack === true;
  const nodes: TopoNode[] = NODE_IPS.map((ip, i) => ({
    name: `node${i + 1}`, ns: new Netns(`${set.prefix}-node${i + 1}`), ip, podCidr: POD_CIDRS[i], device: 'eth0' as const,
    ...(v6 ? { ip6: NODE_IPS6[i], podCidr6: POD_CIDRS6[i] } : {}),
  }));
  const clientReady = set.add('client').then(async (ns) => {
    await attachToBridge(set, bridge, ns, 'vclient', `${CLIENT_IP}/24`, v6 ? `${CLIENT_IP6}/64` : undefined);
    return ns;
  });
  await allDone([clientReady, ...nodes.map(async (node) => {
    node.ns = await set.add(node.name);
    await attachToBridge(set, bridge, node.ns, `v${node.name}`, `${node.ip}/24`, node.ip6 ? `${node.ip6}/64` : undefined);
    await sysctls(node.ns, ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.eth0.rp_filter=0',
      ...(v6 ? ['net.ipv6.conf.all.forwarding=1'] : [])]);
  })]);
  const client = await clientReady;
  const clientRoutes: string[][] = [];
  const nodeRoutes = nodes.map((node, i) => {
    const routes: string[][] = [];
    for (let j = 0; j < nodes.length; j++) {
      if (i !== j) routes.push(['route', 'add', nodes[j].podCidr, 'via', nodes[j].ip, 'dev', 'eth0']);
    }
    clientRoutes.push(['route', 'add', node.podCidr, 'via', node.ip, 'dev', 'eth0']);
    // Nodes have a default gateway, as real ones do: packets for Service addresses that no
    // rule translated are routed (and reach the FORWARD hook, where kube-proxy REJECTs
    // Services without endpoints) instead of dying in the routing lookup. The client does
    // not forward, so such packets end there.
    routes.push(['route', 'add', 'default', 'via', CLIENT_IP, 'dev', 'eth0']);
    if (v6) routes.push(...routes6(clientRoutes, nodes, i));
    return routes;
  });
  clientRoutes.push(['route', 'add', SERVICE_VIP_RANGE, 'via', nodes[0].ip, 'dev', 'eth0']);
  // (ip -batch takes no -6: each family follows from the addresses)
  if (v6) clientRoutes.push(['route', 'add', SERVICE_VIP_RANGE6, 'via', nodes[0].ip6!, 'dev', 'eth0']);

  const plan: Array<{ node: TopoNode; nodeNo: number; podIdx: number; name: string; app: string }> = [];
  const perNodeCount = nodes.map(() => 0);
  for (const app of apps) {
    for (let n = 1; n <= podsPerNode * nodes.length; n++) {
      const nodeIdx = (n - 1) % nodes.length;
      plan.push({ node: nodes[nodeIdx], nodeNo: nodeIdx + 1, podIdx: ++perNodeCount[nodeIdx], name: `${app}-${n}`, app });
    }
  }
  const pods = plan.map((p) => addPod(set, p.node, p.nodeNo, p.podIdx, p.name, p.app));
  await allDone([...pods, client.ipBatch(clientRoutes), ...nodes.map((n, i) => n.ns.ipBatch(nodeRoutes[i]))]);
  return makeTopology(set, bridge, client, nodes, await Promise.all(pods));
}

/** Like Promise.all, but settles only once every promise has (a failed build tears down the
 *  set: nothing may still be adding namespaces to it then); rejects with the first failure. */
async function allDone(ps: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(ps)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Node i's IPv6 routes as its IPv4 ones (returned): the other nodes' pod CIDRs, default via the
 *  client; and the client's to node i's pods (added to clientRoutes). */
function routes6(clientRoutes: string[][], nodes: TopoNode[], i: number): string[][] {
  const routes: string[][] = [];
  for (let j = 0; j < nodes.length; j++) {
    if (i !== j) routes.push(['route', 'add', nodes[j].podCidr6!, 'via', nodes[j].ip6!, 'dev', 'eth0']);
  }
  clientRoutes.push(['route', 'add', nodes[i].podCidr6!, 'via', nodes[i].ip6!, 'dev', 'eth0']);
  routes.push(['route', 'add', 'default', 'via', CLIENT_IP6, 'dev', 'eth0']);
  return routes;
}

async function attachToBridge(set: NetnsSet, bridge: Netns, ns: Netns, brSide: string, cidr: string, cidr6?: string): Promise<void> {
  await set.veth(ns, 'eth0', bridge, brSide);
  await allDone([
    bridge.ip('link', 'set', brSide, 'master', 'br0', 'up'),
    ns.ipBatch([['addr', 'add', cidr, 'dev', 'eth0'], ...(cidr6 ? [['addr', 'add', cidr6, 'dev', 'eth0', 'nodad']] : []), ['link', 'set', 'eth0', 'up']]),
  ]);
}

async function sysctls(ns: Netns, settings: string[]): Promise<void> {
  await ns.exec('sysctl', ['-q', '-w', ...settings]);
}

/** A pod veth's MAC, fixed (locally administered) so no command has to read it back: node
 *  number, pod index and side (1 the node's end, 2 the pod's). Unique on each pair's own link. */
function podMac(nodeNo: number, podIdx: number, side: 1 | 2): string {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `02:78:6c:${hex(nodeNo)}:${hex(podIdx)}:${hex(side)}`;
}

async function addPod(set: NetnsSet, node: TopoNode, nodeNo: number, podIdx: number, name: string, app: string): Promise<TopoPod> {
  const ns = await set.add(name);
  const hostIf = `lxc${nodeNo}${podIdx}`;
  const ip = `10.244.${nodeNo}.${10 + podIdx}`;
  const [hostMac, podMac_] = [podMac(nodeNo, podIdx, 1), podMac(nodeNo, podIdx, 2)];
  await set.veth(ns, 'eth0', node.ns, hostIf, { a: podMac_, b: hostMac });
  // Static neighbors both ways: the pod's gateway is the host veth, and the node (and an
  // XDP/tc FIB lookup on it) can reach the pod without waiting for ARP.
  const podSide: string[][] = [
    ['addr', 'add', `${ip}/32`, 'dev', 'eth0'],
    ['link', 'set', 'eth0', 'up'],
    ['route', 'add', `${POD_GATEWAY}/32`, 'dev', 'eth0', 'scope', 'link'],
    ['neigh', 'add', POD_GATEWAY, 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent'],
    ['route', 'add', 'default', 'via', POD_GATEWAY, 'dev', 'eth0'],
  ];
  const nodeSide: string[][] = [
    ['link', 'set', hostIf, 'up'],
    ['route', 'add', `${ip}/32`, 'dev', hostIf],
    ['neigh', 'add', ip, 'lladdr', podMac_, 'dev', hostIf, 'nud', 'permanent'],
  ];
  const ip6 = node.podCidr6 ? `${node.podCidr6.split('::')[0]}::${10 + podIdx}` : undefined;
  if (ip6) {
    podSide.push(
      ['addr', 'add', `${ip6}/128`, 'dev', 'eth0', 'nodad'],
      ['neigh', 'add', POD_GATEWAY6, 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent'],
      ['route', 'add', 'default', 'via', POD_GATEWAY6, 'dev', 'eth0'],
    );
    nodeSide.push(
      ['addr', 'add', `${POD_GATEWAY6}/64`, 'dev', hostIf, 'nodad'],
      ['route', 'add', `${ip6}/128`, 'dev', hostIf],
      ['neigh', 'add', ip6, 'lladdr', podMac_, 'dev', hostIf, 'nud', 'permanent'],
    );
  }
  await allDone([ns.ipBatch(podSide), node.ns.ipBatch(nodeSide).then(() => sysctls(node.ns, [`net.ipv4.conf.${hostIf}.rp_filter=0`]))]);
  return { name, app, node: node.name, ns, ip, hostIf, ...(ip6 ? { ip6 } : {}) };
}

function makeTopology(set: NetnsSet, bridge: Netns, client: Netns, nodes: TopoNode[], pods: TopoPod[]): Topology {
  const byName = new Map<string, Netns>([['client', client], ['br', bridge]]);
  for (const n of nodes) byName.set(n.name, n.ns);
  for (const p of pods) byName.set(p.name, p.ns);
  const nsFor = (name: string): Netns => {
    const ns = byName.get(name);
    if (!ns) throw new Error(`topology: no namespace called '${name}'`);
    return ns;
  };
  const resolve = (ns: Netns | string): Netns => (typeof ns === 'string' ? nsFor(ns) : ns);
  let torn = false;
  return {
    client: { ns: client, ip: CLIENT_IP, ...(nodes[0]?.ip6 ? { ip6: CLIENT_IP6 } : {}) },
    bridge,
    nodes,
    pods,
    set,
    nsFor,
    setClientRoute: async (prefix, nodeIndex) => {
      const node = nodes[nodeIndex];
      if (!node) throw new Error(`topology: no node with index ${nodeIndex}`);
      const via = prefix.includes(':') ? node.ip6 : node.ip;
      if (!via) throw new Error(`topology: node ${node.name} has no IPv6 address (build with dualStack: true)`);
      await client.ip('route', 'replace', prefix, 'via', via, 'dev', 'eth0');
    },
    curl: (ns, url, o = {}) => curlIn(resolve(ns), url, o.timeoutMs ?? 3000),
    udpEcho: (ns, addr, port, payload, timeoutMs = 2000) => udpEchoIn(resolve(ns), addr, port, payload, timeoutMs),
    udpEchoEach: async (ns, addr, port, payloads, timeoutMs = 2000) => {
      const r = await run('ip', ['netns', 'exec', resolve(ns).name, process.execPath, helperScript('nsclient.js'),
        'udp-each', addr, String(port), JSON.stringify(payloads), String(timeoutMs)], { timeoutMs: payloads.length * timeoutMs + 5000 });
      return JSON.parse(r.stdout) as Array<string | null>;
    },
    teardown: async () => {
      if (torn) return;
      torn = true;
      await set.teardown();
    },
  };
}

/** curl inside a namespace; an unanswered request is a result (status 0), not an exception. */
export async function curlIn(ns: Netns, url: string, timeoutMs: number): Promise<CurlResult> {
  const start = performance.now();
  const args = ['-sS', '--max-time', String(timeoutMs / 1000), '-o', '-', '-w', '\n%{http_code}', url];
  try {
    const r = await ns.exec('curl', args, { timeoutMs: timeoutMs + 2000 });
    const cut = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut), ms: performance.now() - start };
  } catch (e) {
    return { status: 0, body: '', ms: performance.now() - start, error: (e as Error).message };
  }
}

/** Path of the compiled helper scripts (dist/test/helpers/*.js), next to this module. */
export function helperScript(name: string): string {
  return new URL(`./${name}`, import.meta.url).pathname;
}

export async function udpEchoIn(ns: Netns, addr: string, port: number, payload: string, timeoutMs: number): Promise<string | null> {
  const r = await run('ip', ['netns', 'exec', ns.name, process.execPath, helperScript('nsclient.js'),
    'udp', addr, String(port), payload, String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
  const out = r.stdout.trim();
  return out === '' ? null : out;
}
