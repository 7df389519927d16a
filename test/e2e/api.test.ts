// The status API, CLI, health and metrics of a real agent on the namespace topology: the
// agent runs in node1 with a manifests directory; the client probes it the way a load
// balancer and Prometheus would (over node1's address), and the CLI reads its socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { AGENT_NODE_FLAGS, agentEnv } from '../../src/agent/node-flags.js';
import { loadStatusProto } from '../../src/api/proto.js';
import { buildTopology, NODE_IPS, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { stopProcess, sweepStale } from '../helpers/netns.js';
import { ManifestDir, yamlDocs, type KObj } from '../helpers/manifests.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const LB_IP = '198.18.100.10';
const HC_PORT = 32000;
const HEALTHZ = 10256;
const METRICS = 10249;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

async function cliJson(sock: string, ...args: string[]): Promise<any> {
  const r = await cli([...args, '--socket', sock, '-o', 'json']);
  assert.equal(r.code, 0, `xlb ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function nodeObj(name: string, ip: string): KObj {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: {} }, status: { addresses: [{ type: 'InternalIP', address: ip }] } };
}

function lbService(): KObj {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' },
    spec: {
      type: 'LoadBalancer', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Local', healthCheckNodePort: HC_PORT,
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }],
    },
    status: { loadBalancer: { ingress: [{ ip: LB_IP }] } },
  };
}

function webSlice(endpoints: { ip: string; node: string }[]): KObj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: true, serving: true, terminating: false } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

describe('status API of a running agent', () => {
  let topo: Topology;
  let manifests: ManifestDir;
  let dir: string;
  let sock: string;
  let pinPath: string;
  let agent: ChildProcess;
  let agentLog = '';
  const node1 = NODE_IPS[0];

  before(async () => {
    await sweepStale('api');
    topo = await buildTopology({ tag: 'api', podsPerNode: 1 });
    await startPodServers(topo);
    await topo.setClientRoute(`${LB_IP}/32`, 0);
    manifests = await ManifestDir.create();
    const [p1, p2] = topo.pods;
    await manifests.write('nodes.yaml', yamlDocs(nodeObj('node1', node1), nodeObj('node2', NODE_IPS[1])));
    await manifests.write('web.yaml', yamlDocs(lbService()));
    await manifests.write('web-slice.yaml', yamlDocs(webSlice([{ ip: p1.ip, node: p1.node }, { ip: p2.ip, node: p2.node }])));
    dir = await mkdtemp(join(tmpdir(), 'xlb-e2e-api-'));
    sock = join(dir, 'run', 'xlb.sock');
    pinPath = `/sys/fs/bpf/${topo.set.prefix}-node1`;
    agent = topo.set.track(topo.nodes[0].ns.spawn(process.execPath, [...AGENT_NODE_FLAGS, MAIN, 'agent',
      '--source', 'manifests', '--manifests', manifests.path, '--node', 'node1', '--devices', 'eth0',
      '--pin-path', pinPath, '--api-socket', sock, '--conntrack-size', '4096', '--maglev-table-size', '251', '--socket-lb', 'off',
      '--drain-timeout', '0', // the toggle test checks the immediate detach; hitless.test.ts the drain
      '--healthz-bind-address', `0.0.0.0:${HEALTHZ}`, '--metrics-bind-address', `0.0.0.0:${METRICS}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: agentEnv() }));
    agent.stdout?.on('data', (d: Buffer) => { agentLog = (agentLog + d.toString()).slice(-8000); });
    agent.stderr?.on('data', (d: Buffer) => { agentLog = (agentLog + d.toString()).slice(-8000); });
    await until('the agent to finish its first sync', async () => {
      if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}: ${agentLog}`);
      const s = await cliJson(sock, 'status');
      return s.lastSyncMs > 0 && s.pendingChanges === 0 && s.enabled ? s : undefined;
    }, 60_000).catch((e: Error) => { throw new Error(`${e.message}\nagent log:\n${agentLog}`); });
  });

  after(async () => {
    if (agent) await stopProcess(agent, 'SIGTERM', 5000);
    await topo?.teardown();
    await manifests?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (pinPath) await rm(pinPath, { recursive: true, force: true });
  });

  test('the socket is root-only', async () => {
    assert.equal((await stat(sock)).mode & 0o777, 0o600);
  });

  test('xlb status: node, attachment, source and map fill', async () => {
    const s = await cliJson(sock, 'status');
    assert.equal(s.node, 'node1');
    assert.equal(s.enabled, true);
    assert.equal(s.pinPath, pinPath);
    assert.deepEqual(s.source, { kind: 'manifests', synced: true, connection: s.source.connection });
    const eth0 = s.devices.find((d: any) => d.name === 'eth0');
    assert.ok(eth0 && eth0.progId > 0, `eth0 has an XDP program: ${JSON.stringify(s.devices)}`);
    assert.ok(s.podInterfaces.some((p: any) => p.name === topo.pods[0].hostIf && p.progIds.length > 0), JSON.stringify(s.podInterfaces));
    assert.ok(s.mapFill.some((m: any) => m.entries > 0 && m.maxEntries >= m.entries), JSON.stringify(s.mapFill));
    const table = await cli(['status', '--socket', sock]);
    assert.match(table.stdout, /^Node:\s+node1$/m);
    assert.match(table.stdout, /^eth0\s+\d+\s+\S+\s+\d+\s+\d+$/m);
  });

  test('xlb services shows the LoadBalancer frontends with the node-local endpoint', async () => {
    const svcs = await cliJson(sock, 'services');
    const web = svcs.find((s: any) => s.key === 'shop/web');
    assert.ok(web, JSON.stringify(svcs.map((s: any) => s.key)));
    assert.equal(web.healthCheckNodePort, HC_PORT);
    assert.equal(web.localReadyEndpoints, 1);
    const lb = web.frontends.find((f: any) => f.type === 'LoadBalancer' && f.addr === LB_IP && f.scope === 'external');
    assert.ok(lb, JSON.stringify(web.frontends));
    assert.deepEqual(lb.backends.filter((b: any) => b.selectable).map((b: any) => b.addr), [topo.pods[0].ip]);
    const table = await cli(['services', '--socket', sock]);
    assert.match(table.stdout, new RegExp(`^shop/web\\s+LoadBalancer\\s+${LB_IP.replace(/\./g, '\\.')}\\s+${LB_IP.replace(/\./g, '\\.')}:80\\s+IPv4\\s+TCP\\s+external`, 'm'));
  });

  test('xlb maps decodes the kernel state for the Service', async () => {
    const maps = await cliJson(sock, 'maps');
    assert.ok(maps.length >= 5, maps.map((m: any) => m.name).join(','));
    const all = JSON.stringify(maps);
    assert.ok(all.includes(LB_IP), 'the LoadBalancer IP is in a decoded map');
    assert.ok(all.includes(topo.pods[0].ip), 'the local backend is in a decoded map');
  });

  test('traffic to the LoadBalancer IP shows up in xlb stats and /metrics', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await topo.curl('client', `http://${LB_IP}/`);
      const why = r.status === 200 ? '' : `${r.error}; datapath drops: ${JSON.stringify((await cliJson(sock, 'stats')).drops)}`;
      assert.equal(r.status, 200, why);
      assert.equal(r.body, `Hello, ${topo.pods[0].name}\n`);
    }
    const stats = await until('counters for shop/web', async () => {
      const s = await cliJson(sock, 'stats');
      const row = s.services.find((x: any) => x.service === 'shop/web' && x.packets > 0);
      return row ? s : undefined;
    }, 5000);
    const row = stats.services.find((x: any) => x.service === 'shop/web' && x.packets > 0);
    assert.ok(row.newFlows >= 3, JSON.stringify(row));
    assert.ok(row.bytes > 0);
    const m = await topo.curl('client', `http://${node1}:${METRICS}/metrics`);
    assert.equal(m.status, 200, m.error);
    assert.match(m.body, /^xlb_service_new_flows_total\{service="shop\/web",frontend="[^"]+",ip_family="IPv4"\} [1-9]\d*$/m);
    assert.match(m.body, /^xlb_map_entries\{map="[^"]+"\} [1-9]\d*$/m);
    assert.match(m.body, /^xlb_sync_proxy_rules_last_timestamp_seconds [1-9][\d.e+]*$/m);
    assert.match(m.body, /^xlb_sync_proxy_rules_duration_seconds_count [1-9]\d*$/m);
  });

  test('/healthz and /livez answer over the node address', async () => {
    const h = await topo.curl('client', `http://${node1}:${HEALTHZ}/healthz`);
    assert.equal(h.status, 200, h.error);
    const b = JSON.parse(h.body);
    assert.equal(b.nodeEligible, true);
    assert.ok(Math.abs(Date.parse(b.currentTime) - Date.now()) < 60_000);
    const l = await topo.curl('client', `http://${node1}:${HEALTHZ}/livez`);
    assert.equal(l.status, 200, l.error);
  });

  test('healthCheckNodePort: 200 with a local endpoint, 503 once the local endpoint is gone', async () => {
    const ok = await topo.curl('client', `http://${node1}:${HC_PORT}/`);
    assert.equal(ok.status, 200, ok.error);
    assert.deepEqual(JSON.parse(ok.body), { service: { namespace: 'shop', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: true });
    const p2 = topo.pods[1];
    await manifests.writeByRename('web-slice.yaml', yamlDocs(webSlice([{ ip: p2.ip, node: p2.node }])));
    const gone = await until('the health check to turn 503', async () => {
      const r = await topo.curl('client', `http://${node1}:${HC_PORT}/`);
      return r.status === 503 ? r : undefined;
    }, 10_000);
    assert.equal(JSON.parse(gone.body).localEndpoints, 0);
  });

  test('WatchEvents streams the programming of a changed Service', async () => {
    const { grpcObj } = loadStatusProto();
    const client = new grpcObj.xlb.v1.Status(`unix:${sock}`, grpc.credentials.createInsecure());
    const stream = client.WatchEvents({});
    try {
      const seen = new Promise<any>((resolve, reject) => {
        stream.on('data', (ev: any) => { if (ev.service === 'shop/web') resolve(ev); });
        stream.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
      });
      await new Promise((r) => setTimeout(r, 300)); // the stream is subscribed once the call lands
      const [p1, p2] = topo.pods;
      await manifests.writeByRename('web-slice.yaml', yamlDocs(webSlice([{ ip: p1.ip, node: p1.node }, { ip: p2.ip, node: p2.node }])));
      let timer: NodeJS.Timeout | undefined;
      const ev = await Promise.race([seen, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('no event within 10 s')), 10_000); })])
        .finally(() => clearTimeout(timer)) as any;
      assert.equal(ev.ok, true, ev.error);
      assert.ok(ev.frontends >= 1);
      assert.ok(Math.abs(ev.timeMs - Date.now()) < 60_000);
    } finally {
      stream.cancel();
      client.close();
    }
  });

  test('xlb toggle off detaches from eth0 and on attaches again', async () => {
    const off = await cli(['toggle', 'off', '--socket', sock]);
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout.trim(), 'xlb is off on this node (toggle)');
    const s = await cliJson(sock, 'status');
    assert.equal(s.enabled, false);
    assert.equal(s.enabledReason, 'toggle');
    const xdpOff = await topo.nodes[0].ns.ip('-j', 'link', 'show', 'eth0');
    assert.ok(!JSON.parse(xdpOff.stdout)[0].xdp, `no XDP program on eth0 while off: ${xdpOff.stdout}`);
    const on = await cli(['toggle', 'on', '--socket', sock]);
    assert.equal(on.code, 0, on.stderr);
    const s2 = await until('eth0 attached again', async () => {
      const st = await cliJson(sock, 'status');
      return st.enabled && st.devices.some((d: any) => d.name === 'eth0' && d.progId > 0) ? st : undefined;
    }, 10_000);
    assert.equal(s2.enabledReason, 'toggle');
    const r = await topo.curl('client', `http://${LB_IP}/`);
    assert.equal(r.status, 200, r.error);
  });

  test('after the agent stops, the CLI says no agent is listening', async () => {
    const gone = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await gone;
    const r = await cli(['status', '--socket', sock]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `xlb: no agent is listening on ${sock} (is the xlb agent running on this node?)\n`);
  });
});
