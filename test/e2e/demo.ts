// `npm run demo`: from a list of NodePorts to one address per app, on a namespace topology
// (no cluster: the agent reads ordinary Kubernetes YAML from a folder). Every address lives
// in namespaces this run creates; they are deleted at the end, also on Ctrl-C or failure.
//   node dist/test/e2e/demo.js [--quiet] [--keep-manifests]
import { writeFileSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTopology, SERVICE_VIP_RANGE, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, type SvcDef, type EpDef } from '../helpers/cluster.js';
import { sweepStale, type Netns } from '../helpers/netns.js';
import { ipPool } from '../helpers/manifests.js';

const quiet = process.argv.includes('--quiet');
const t0 = Date.now();
const say = (s = ''): void => { if (!quiet) console.log(s); };
const step = (n: string, s: string): void => say(`\n\x1b[1m== ${n}. ${s}\x1b[0m`);
const show = (cmd: string): void => say(`  $ ${cmd}`);

class DemoError extends Error {}
function check(cond: boolean, msg: string): void {
  if (!cond) throw new DemoError(msg);
}

const EDGE_IP = '198.18.0.5';
/** The LoadBalancerIPPool the demo applies, on the nodes' own segment: the node announcing
 *  each address answers ARP for it, so neither the client nor the edge needs a route. LB holds
 *  what xlb assigned from it. */
const LB_POOL = '198.18.0.100-198.18.0.101';
const LB = { app1: '', app2: '' };
const CIP = { app1: '10.96.0.11', app2: '10.96.0.12' };
const NODEPORT = { app1: 30081, app2: 30082 };
/** A dual-stack ClusterIP Service in front of app1: one ClusterIP per family, each fed by that family's EndpointSlice. */
const DUAL: SvcDef = { name: 'app1-dual', clusterIP: '10.96.0.13', clusterIP6: 'fd00:96::13', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
/** Requests a step may add until a second pod answers (see requests()). */
const ROTATE = 24;

function svc(app: 'app1' | 'app2', type: 'NodePort' | 'LoadBalancer'): SvcDef {
  return {
    name: app, type, clusterIP: CIP[app],
    ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: NODEPORT[app] }],
  };
}

/** Waits until both agents agree on an address from the pool for each app; fills LB. */
async function assigned(cluster: XlbCluster): Promise<void> {
  const end = Date.now() + 10_000;
  let seen = '';
  while (Date.now() < end) {
    const per = await Promise.all(['node1', 'node2'].map(async (n) => {
      const list = JSON.parse(await cluster.cli(n, ['services', '-o', 'json'])) as Array<{ key: string; frontends: Array<{ type: string; addr: string }> }>;
      return (['app1', 'app2'] as const).map((app) => list.find((x) => x.key === `default/${app}`)?.frontends.find((f) => f.type === 'LoadBalancer')?.addr ?? '');
    }));
    seen = JSON.stringify(per);
    if (per[0]!.every(Boolean) && per[0]!.join() === per[1]!.join()) {
      [LB.app1, LB.app2] = per[0] as [string, string];
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new DemoError(`the agents assigned no LoadBalancer addresses from ${LB_POOL} within 10 s (node1, node2: ${seen})`);
}

/**
 * `n` requests from `ns`; the answers, and how many failed. Every new connection is hashed
 * to a pod, so a short run can land on one pod by chance (4 requests over 3 pods: 1 in 27);
 * with `rotateUpTo`, the run goes on until two pods have answered or that many requests were
 * made (24 over 3 pods: 1 in 3^23 that they all land on one).
 */
async function requests(topo: Topology, ns: string, url: string, n: number, headers: string[] = [], rotateUpTo = n): Promise<{ bodies: string[]; failed: number; ms: number[] }> {
  const bodies: string[] = [];
  const ms: number[] = [];
  let failed = 0;
  for (let i = 0; i < n || (i < rotateUpTo && new Set(bodies).size < 2); i++) {
    const r = await curl(topo.nsFor(ns), url, headers, 2000);
    ms.push(r.ms);
    if (r.status === 200) bodies.push(r.body.trim()); else failed++;
  }
  return { bodies, failed, ms };
}

async function curl(ns: Netns, url: string, headers: string[], timeoutMs: number): Promise<{ status: number; body: string; ms: number; err?: string }> {
  const start = performance.now();
  const args = ['-sS', '--max-time', String(timeoutMs / 1000), '-o', '-', '-w', '\n%{http_code}', ...headers.flatMap((h) => ['-H', h]), url];
  try {
    const r = await ns.exec('curl', args, { timeoutMs: timeoutMs + 2000 });
    const cut = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut), ms: performance.now() - start };
  } catch (e) {
    const msg = (e as Error).message;
    return { status: 0, body: '', ms: performance.now() - start, err: msg.slice(msg.lastIndexOf('curl: ')).trim() };
  }
}

function rotation(bodies: string[]): string {
  const counts = new Map<string, number>();
  for (const b of bodies) counts.set(b, (counts.get(b) ?? 0) + 1);
  return [...counts].map(([b, n]) => `${b.replace('Hello, ', '')} x${n}`).join(', ');
}

async function showAnswers(label: string, r: { bodies: string[]; failed: number }, expectPods: TopoPod[]): Promise<void> {
  for (const b of r.bodies.slice(0, 6)) say(`    ${b}`);
  say(`  ${label}: ${r.bodies.length} answers (${rotation(r.bodies)})${r.failed ? `, ${r.failed} FAILED` : ''}`);
  check(r.failed === 0, `${label}: ${r.failed} requests failed`);
  const seen = new Set(r.bodies);
  check(seen.size >= Math.min(2, expectPods.length), `${label}: answers did not rotate across pods (${[...seen].join(', ')})`);
  for (const b of seen) check(expectPods.some((p) => b === `Hello, ${p.name}`), `${label}: unexpected answer '${b}'`);
}

async function startEdge(topo: Topology, work: string): Promise<{ ns: Netns }> {
  const ns = await topo.set.add('edge');
  await topo.set.veth(ns, 'eth0', topo.bridge, 'vedge');
  await topo.bridge.ip('link', 'set', 'vedge', 'master', 'br0', 'up');
  await ns.ip('addr', 'add', `${EDGE_IP}/24`, 'dev', 'eth0');
  await ns.ip('link', 'set', 'eth0', 'up');
  await ns.exec('ethtool', ['-K', 'eth0', 'tx', 'off']); // a wire carries full checksums (see wireLike)
  const dir = join(work, 'nginx');
  rmSync(dir, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const conf = [
    'daemon off;', 'master_process off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log warn;`,
    'events { worker_connections 256; }',
    'http {', '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
    `  server { listen 80; server_name app1.example; location / { proxy_pass http://${LB.app1}:80; } }`,
    `  server { listen 80; server_name app2.example; location / { proxy_pass http://${LB.app2}:80; } }`,
    '}',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), conf);
  topo.set.track(ns.spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' }));
  for (let i = 0; i < 50; i++) {
    const r = await curl(ns, `http://${EDGE_IP}/`, ['Host: app1.example'], 500);
    if (r.status === 200) return { ns };
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new DemoError('nginx in the edge namespace did not start serving');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new DemoError('the demo creates network namespaces and loads BPF programs: run it as root');
  await sweepStale('demo');
  const work = mkdtempSync(join(tmpdir(), 'xlb-demo-'));
  let topo: Topology | undefined;
  let cluster: XlbCluster | undefined;
  let cleaning = false;
  const cleanup = async (): Promise<void> => {
    if (cleaning) return;
    cleaning = true;
    await cluster?.teardown().catch(() => undefined);
    await topo?.teardown().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (sig: string) => {
    console.error(`\ndemo: ${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    step('1', 'Two nodes, app1 and app2 with three pods each (network namespaces on this machine)');
    topo = await buildTopology({ tag: 'demo', apps: ['app1', 'app2'], podsPerNode: 2, dualStack: true });
    // No route for Service addresses: the LoadBalancer ones are announced on the segment.
    await topo.client.ns.ip('route', 'del', SERVICE_VIP_RANGE);
    // Three pods per app are the Deployment's replicas; the fourth namespace stays idle.
    const pods = { app1: topo.pods.filter((p) => p.app === 'app1').slice(0, 3), app2: topo.pods.filter((p) => p.app === 'app2').slice(0, 3) };
    await startPodServers(topo, [...pods.app1, ...pods.app2]);
    for (const app of ['app1', 'app2'] as const) say(`  ${app}: ${pods[app].map((p) => `${p.name} (${p.ip} on ${p.node})`).join(', ')}`);
    cluster = new XlbCluster(topo, 'demo');
    const eps = (app: 'app1' | 'app2', f: (p: TopoPod) => Partial<EpDef> = () => ({})): EpDef[] => pods[app].map((pod) => ({ pod, ...f(pod) }));
    cluster.apply(svc('app1', 'NodePort'), eps('app1'));
    cluster.apply(svc('app2', 'NodePort'), eps('app2'));
    cluster.apply(DUAL, eps('app1'));
    say(`  Services and EndpointSlices are ordinary YAML in ${cluster.dir}:`);
    say(readFileSync(join(cluster.dir, 'app1.yaml'), 'utf8').split('\n').slice(0, 14).map((l) => `    ${l}`).join('\n') + '\n    ...');
    for (const n of topo.nodes) {
      show(`ip netns exec ${n.ns.name} xlb agent --source manifests --manifests ${cluster.dir} --node ${n.name} --devices eth0 --pod-interfaces 'lxc*'`);
      await cluster.startAgent(n.name);
    }

    step('2', 'ClusterIP from a pod: one virtual address inside the cluster');
    const from = topo.pods.find((p) => p.app === 'app2')!.name;
    show(`curl http://${CIP.app1}/   (from pod ${from}, 6+ times)`);
    await showAnswers('ClusterIP', await requests(topo, from, `http://${CIP.app1}/`, 6, [], ROTATE), pods.app1);

    step('3', 'NodePort from outside: the list of node IP:port pairs a user would otherwise hand out');
    for (const n of topo.nodes) {
      show(`curl http://${n.ip}:${NODEPORT.app1}/   (from the client, 4+ times)`);
      await showAnswers(`NodePort on ${n.name}`, await requests(topo, 'client', `http://${n.ip}:${NODEPORT.app1}/`, 4, [], ROTATE), pods.app1);
    }

    step('4', 'type: LoadBalancer: one EXTERNAL-IP per app instead of a NodePort list');
    cluster.write('pool.yaml', [ipPool('demo', [LB_POOL])]);
    say(`  An address pool, ${join(cluster.dir, 'pool.yaml')}:`);
    say(readFileSync(join(cluster.dir, 'pool.yaml'), 'utf8').trimEnd().split('\n').map((l) => `    ${l}`).join('\n'));
    cluster.apply(svc('app1', 'LoadBalancer'), eps('app1'));
    cluster.apply(svc('app2', 'LoadBalancer'), eps('app2'));
    await assigned(cluster);
    show('kubectl get svc   (what the agents assigned, as kubectl shows it)');
    say('  NAME   TYPE           CLUSTER-IP   EXTERNAL-IP    PORT(S)');
    for (const app of ['app1', 'app2'] as const) say(`  ${app}   LoadBalancer   ${CIP[app]}   ${LB[app]}   80:${NODEPORT[app]}/TCP`);
    await cluster.settle(1200);
    const announcers = new Map((await Promise.all(['node1', 'node2'].map(async (n) =>
      (JSON.parse(await cluster!.cli(n, ['status', '-o', 'json'])) as { lbAddresses: Array<{ addr: string; announcing: boolean }> })
        .lbAddresses.filter((a) => a.announcing).map((a) => [a.addr, n] as const)))).flat());
    for (const app of ['app1', 'app2'] as const) {
      check(announcers.has(LB[app]), `no node announces ${LB[app]}`);
      say(`  ${LB[app]} is announced by ${announcers.get(LB[app])}: it answers ARP for it, no route needed`);
    }
    for (const app of ['app1', 'app2'] as const) {
      show(`curl http://${LB[app]}/   (from the client, 6+ times)`);
      await showAnswers(`LoadBalancer ${app}`, await requests(topo, 'client', `http://${LB[app]}/`, 6, [], ROTATE), pods[app]);
    }

    step('5', 'One URL: nginx (its own namespace) routes app1.example and app2.example to the two LoadBalancer IPs');
    await startEdge(topo, work);
    for (const app of ['app1', 'app2'] as const) {
      show(`curl -H 'Host: ${app}.example' http://${EDGE_IP}/   (4+ times)`);
      await showAnswers(`${app}.example`, await requests(topo, 'client', `http://${EDGE_IP}/`, 4, [`Host: ${app}.example`], ROTATE), pods[app]);
    }

    step('6', 'What xlb programmed on node1');
    show('xlb services --socket ' + cluster.socket('node1'));
    const programmed = await cluster.cli('node1', ['services']);
    say(programmed.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
    say(`  ${DUAL.name} is dual-stack: a ClusterIP in each family, each fed by that family's EndpointSlice.`);
    check(programmed.includes(`${DUAL.clusterIP}:80`) && programmed.includes(`[${DUAL.clusterIP6}]:80`),
      `xlb services shows ${DUAL.name} in both families (${DUAL.clusterIP}:80 and [${DUAL.clusterIP6}]:80)`);
    show(`curl http://[${DUAL.clusterIP6}]/   (from pod ${from}, over IPv6, 4+ times)`);
    const dual6 = await requests(topo, from, `http://[${DUAL.clusterIP6}]/`, 4, [], ROTATE);
    await showAnswers(`${DUAL.name} over IPv6`, dual6, pods.app1);
    // printed in --quiet too: demo.test.ts checks that the IPv6 step ran and was answered
    console.log(`demo: ${DUAL.name} answered over IPv6 at [${DUAL.clusterIP6}] by ${[...new Set(dual6.bodies)].map((b) => b.replace('Hello, ', '')).sort().join(', ')}`);
    show('xlb status --socket ' + cluster.socket('node1'));
    say((await cluster.cli('node1', ['status'])).trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));

    step('7', 'Scale app1 from 3 pods to 2 by editing its EndpointSlice, under load: no request fails');
    const victim = pods.app1[2];
    const load = requests(topo, 'client', `http://${LB.app1}/`, 60);
    await new Promise((r) => setTimeout(r, 300));
    say(`  ${victim.name} is terminating (ready: false, serving: true, terminating: true) ...`);
    cluster.apply(svc('app1', 'LoadBalancer'), eps('app1', (p) => (p === victim ? { ready: false, serving: true, terminating: true } : {})));
    await new Promise((r) => setTimeout(r, 800));
    say(`  ... and gone from the EndpointSlice`);
    cluster.apply(svc('app1', 'LoadBalancer'), pods.app1.slice(0, 2).map((pod) => ({ pod })));
    const under = await load;
    say(`  ${under.bodies.length + under.failed} requests during the change: ${under.failed} failed (${rotation(under.bodies)})`);
    check(under.failed === 0, `scale-down: ${under.failed} requests failed`);
    const after = await requests(topo, 'client', `http://${LB.app1}/`, 6);
    check(!after.bodies.includes(`Hello, ${victim.name}`) && after.failed === 0, `after scale-down ${victim.name} still answers new requests, or requests failed`);
    say(`  after: ${rotation(after.bodies)}`);

    step('8', 'Remove every app1 endpoint: requests are refused at once, not left hanging');
    cluster.apply(svc('app1', 'LoadBalancer'), []);
    await cluster.settle(1000);
    show(`curl http://${LB.app1}/`);
    const refused = await curl(topo.client.ns, `http://${LB.app1}/`, [], 5000);
    say(`  ${refused.err ?? refused.status} after ${Math.round(refused.ms)} ms`);
    // curl exit 7 "Couldn't connect to server" is its word for a connection refused (RST).
    check(refused.status === 0 && /\(7\)|refused|reset/i.test(refused.err ?? '') && refused.ms < 1500,
      `with no endpoints the request should be refused at once (got ${refused.err ?? refused.status} after ${Math.round(refused.ms)} ms)`);
    const ok2 = await requests(topo, 'client', `http://${LB.app2}/`, 2);
    check(ok2.failed === 0, 'app2 stopped answering while app1 had no endpoints');
    say(`  app2 is unaffected: ${rotation(ok2.bodies)}`);

    say(`\ndemo: done in ${((Date.now() - t0) / 1000).toFixed(1)} s; cleaning up the namespaces`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => { if (quiet) console.log(`demo: ok in ${((Date.now() - t0) / 1000).toFixed(1)} s`); },
  (e: unknown) => {
    const msg = e instanceof DemoError ? e.message : (e as Error).stack ?? String(e);
    console.error(`\ndemo FAILED: ${msg}`);
    process.exitCode = 1;
  },
);
