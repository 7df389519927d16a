// Small assertions the end-to-end suites share: polling until something holds, who answers
// a URL, and which XDP program a node's device runs.
import assert from 'node:assert/strict';
import { run } from './netns.js';
import { buildTopology, SERVICE_VIP_RANGE, SERVICE_VIP_RANGE6, type Topology } from './topology.js';
import { startPodServers } from './podserver.js';
import { nodeObj, type KObj, type XlbCluster } from './cluster.js';

/** Poll `fn` until it holds, failing the test with `what` after `timeoutMs`. */
export async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.fail(`${what}: not true within ${timeoutMs} ms`);
}

/** `n` sequential GETs from a namespace: the pod names that answered and how many failed. */
export async function answers(topo: Topology, from: string, url: string, n: number): Promise<{ names: Set<string>; failed: number }> {
  const names = new Set<string>();
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const r = await topo.curl(from, url, { timeoutMs: 1500 });
    if (r.status === 200) names.add(r.body.trim().replace('Hello, ', '')); else failed++;
  }
  return { names, failed };
}

/** Id of the XDP program on a node's eth0 (0: none). */
export async function xdpProgId(topo: Topology, node: string): Promise<number> {
  const r = await run('ip', ['-n', topo.nsFor(node).name, '-j', '-d', 'link', 'show', 'eth0']);
  const j = JSON.parse(r.stdout) as Array<{ xdp?: { prog?: { id: number } } }>;
  return j[0]?.xdp?.prog?.id ?? 0;
}

/**
 * One pod per node on a segment the client shares with the nodes, with no route for Service
 * addresses (LoadBalancer addresses are announced there, ARP/NDP from the datapath; with
 * `dualStack` the IPv6 route goes too), pod servers started; with each node's eth0 MAC by node
 * name, to check the client's neighbour entries.
 */
export async function buildSegmentTopology(tag: string, o: { dualStack?: boolean } = {}): Promise<{ topo: Topology; macs: Map<string, string> }> {
  const topo = await buildTopology({ tag, apps: ['app1'], podsPerNode: 1, dualStack: o.dualStack });
  await topo.client.ns.ip('route', 'del', SERVICE_VIP_RANGE);
  if (o.dualStack) await topo.client.ns.ip('-6', 'route', 'del', SERVICE_VIP_RANGE6);
  await startPodServers(topo);
  const macs = new Map<string, string>();
  for (const n of topo.nodes) {
    const link = JSON.parse((await n.ns.ip('-j', 'link', 'show', 'eth0')).stdout) as Array<{ address: string }>;
    macs.set(n.name, link[0].address);
  }
  return { topo, macs };
}

/** The client's neighbour entry (MAC) for addr on its eth0, undefined when it has none. */
export async function neighMac(topo: Topology, addr: string): Promise<string | undefined> {
  const out = (await topo.client.ns.ip('-j', ...(addr.includes(':') ? ['-6'] : []), 'neigh', 'show', addr, 'dev', 'eth0')).stdout;
  return (JSON.parse(out || '[]') as Array<{ lladdr?: string }>)[0]?.lladdr;
}

/** The node announcing addr by its own `xlb status`, '' when none. */
export async function announcingNode(c: XlbCluster, addr: string): Promise<string> {
  for (const n of ['node1', 'node2']) {
    const s = JSON.parse(await c.cli(n, ['status', '-o', 'json'])) as { lbAddresses: Array<{ addr: string; announcing: boolean }> };
    if (s.lbAddresses.some((a) => a.addr === addr && a.announcing)) return n;
  }
  return '';
}

/** The topology's Node objects, all Ready except `notReady`. */
export function segmentNodes(topo: Topology, notReady?: string): KObj[] {
  return topo.nodes.map((n) => {
    const o = nodeObj(n.name, n.ip);
    o.status.conditions = [{ type: 'Ready', status: n.name === notReady ? 'False' : 'True' }];
    return o;
  });
}
