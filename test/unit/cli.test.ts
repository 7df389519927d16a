// The `xlb` CLI as a user runs it: a child process talking to a real status API socket.
// Checks what each command prints in table, json and yaml, and the one-line failures.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { pino } from 'pino';
import { setLogger } from '../../src/log.js';
import * as grpc from '@grpc/grpc-js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { loadStatusProto } from '../../src/api/proto.js';
import { FakeView, T0 } from '../helpers/fake-view.js';
import type { BackendSpec, ServiceSpec } from '../../src/model/types.js';

setLogger(pino({ level: 'silent' }));

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
/** uid 0 without capabilities: file permissions apply to it like to any other user. */
const WITHOUT_CAPS = ['--bounding-set=-all', '--inh-caps=-all'];

function xlb(args: string[], opts: { env?: NodeJS.ProcessEnv; setpriv?: string[]; timeoutMs?: number } = {}): Promise<Run> {
  const [cmd, argv] = opts.setpriv
    ? ['setpriv', [...opts.setpriv, process.execPath, MAIN, ...args]]
    : [process.execPath, [MAIN, ...args]];
  return new Promise((resolve) => {
    const o = { env: { ...process.env, XLB_SOCKET: '', ...opts.env }, timeout: opts.timeoutMs ?? 20_000, maxBuffer: 512 << 20 };
    execFile(cmd, argv, o, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every row's cell for `header` starts where the header does (left-aligned columns). */
function columnStart(lines: string[], header: string): number[] {
  const at = lines[0].indexOf(header);
  assert.ok(at >= 0, `header ${header} missing in: ${lines[0]}`);
  return lines.slice(1).map((l) => (l.length > at && l[at] !== ' ' && (at === 0 || l[at - 1] === ' ') ? at : -1));
}

function tableAt(out: string, firstHeader: string): string[] {
  const lines = out.split('\n');
  const i = lines.findIndex((l) => l.startsWith(firstHeader));
  assert.ok(i >= 0, `no table starting with ${firstHeader} in:\n${out}`);
  const end = lines.findIndex((l, j) => j > i && l === '');
  return lines.slice(i, end < 0 ? undefined : end);
}

describe('xlb CLI against a running agent', () => {
  let dir: string;
  let sock: string;
  let view: FakeView;
  let server: ApiServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xlb-cli-'));
    sock = join(dir, 'xlb.sock');
    view = new FakeView();
    server = await startApiServer(view, { socketPath: sock });
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('status: table', async () => {
    const r = await xlb(['status', '--socket', sock]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Node:\s+node-a$/m);
    assert.match(r.stdout, /^Enabled:\s+yes \(default\)$/m);
    assert.match(r.stdout, /^Source:\s+manifests, synced, connection up$/m);
    assert.match(r.stdout, new RegExp(`^Last sync:\\s+${new Date(T0).toISOString().replace(/\./g, '\\.')} \\(\\d+d ago\\)$`, 'm'));
    assert.match(r.stdout, /^Pending changes:\s+2$/m);
    assert.match(r.stdout, /^SNAT ports:\s+1230 of 36280 in use \(3\.4%; range 1024-65535, 28232 used by the node left out\)$/m);
    assert.match(r.stdout, /^ANNOUNCED ADDRESS\s+DEVICE\s+SINCE\s+SERVICES\s+WHY$/m);
    assert.match(r.stdout, /^192\.0\.2\.10\s+eth0\s+.+\s+shop\/lb\s+eligible: ready, xlb on$/m);
    assert.match(r.stdout, /^ARP replies 12, unanswered \(expired\) 1, NDP replies 5, unanswered \(expired\) 2, takeovers 1$/m);
    assert.match(r.stdout, /^Kernel:\s+6\.18\.0-test \(2\/3 checks ok\)$/m);
    assert.match(r.stdout, /^eth0\s+2\s+native\s+41\s+7$/m);
    assert.match(r.stdout, /^veth1a2b\s+42,43$/m);
    assert.match(r.stdout, /^services\s+3\s+65536\s+0\.0%$/m);
    assert.match(r.stdout, /^bpf_link_xdp\s+no\s+needs 5\.9$/m);
    const labels = r.stdout.split('\n\n')[0].split('\n');
    const valueCol = new Set(labels.map((l) => l.search(/(?<=:\s+)\S/)));
    assert.equal(valueCol.size, 1, `values aligned:\n${labels.join('\n')}`);
  });

  test('status: json and yaml carry the same data', async () => {
    const j = await xlb(['status', '--socket', sock, '-o', 'json']);
    assert.equal(j.code, 0, j.stderr);
    const s = JSON.parse(j.stdout);
    assert.equal(s.node, 'node-a');
    assert.equal(s.lastSyncMs, T0);
    assert.deepEqual(s.devices[0], { name: 'eth0', ifindex: 2, xdpMode: 'native', progId: 41, linkId: 7 });
    const y = await xlb(['status', '--socket', sock, '--output', 'yaml']);
    assert.equal(y.code, 0, y.stderr);
    assert.deepEqual(YAML.parse(y.stdout), s);
  });

  test('status during a cold start counts what is programmed', async () => {
    view.progress = { stage: 'programmed', done: 4200, total: 10_000 };
    try {
      const r = await xlb(['status', '--socket', sock]);
      assert.match(r.stdout, /^Starting:\s+programmed 4,200 \/ 10,000$/m);
    } finally {
      view.progress = undefined;
    }
    assert.doesNotMatch((await xlb(['status', '--socket', sock])).stdout, /Starting/);
  });

  test('status while switched off and draining shows the flows and time left, and the netfilter lookup', async () => {
    view.drain = { flows: 3, secondsLeft: 540 };
    try {
      const r = await xlb(['status', '--socket', sock]);
      assert.match(r.stdout, /^Enabled:\s+\w+ \(\w+\), draining: 3 flows, 540 s left$/m);
      assert.match(r.stdout, /^Netfilter conntrack lookup:\s+yes: connections netfilter conntrack tracks stay with it$/m);
      const j = JSON.parse((await xlb(['status', '--socket', sock, '-o', 'json'])).stdout) as { drain: unknown };
      assert.deepEqual(j.drain, { flows: 3, secondsLeft: 540 });
    } finally {
      view.drain = undefined;
    }
    assert.doesNotMatch((await xlb(['status', '--socket', sock])).stdout, /draining/);
  });

  test('services: one aligned row per frontend, warnings and health check port after', async () => {
    const r = await xlb(['services', '--socket', sock]);
    assert.equal(r.code, 0, r.stderr);
    const t = tableAt(r.stdout, 'SERVICE');
    assert.equal(t.length, 4);
    assert.match(t[1], /^default\/web\s+ClusterIP\s+<none>\s+10\.96\.0\.10:80\s+IPv4\s+TCP\s+internal\s+1\/2\s+1\s+random\s+10\.244\.1\.5:8080$/);
    assert.match(t[2], /^shop\/lb\s+LoadBalancer\s+192\.0\.2\.10\s+192\.0\.2\.10:53\s+IPv4\s+UDP\s+external\s+1\/1\s+1\s+maglev,local,affinity=10800s,ranges=1\s+10\.244\.1\.9:5353$/);
    assert.match(t[3], /^shop\/lb\s+NodePort\s+192\.0\.2\.10\s+\*:30053\s+IPv4\s+UDP/);
    for (const h of ['TYPE', 'EXTERNAL-IP', 'FRONTEND', 'FAMILY', 'PROTO', 'SCOPE', 'POLICY', 'ENDPOINTS']) {
      const at = t[0].indexOf(h);
      assert.deepEqual(columnStart(t, h), [at, at, at], `column ${h} aligned`);
    }
    assert.match(r.stdout, /^shop\/lb: healthCheckNodePort 32100, 1 local ready endpoint\(s\)$/m);
    assert.match(r.stdout, /^192\.0\.2\.10: announced \(ARP\) by node-a$/m);
    assert.match(r.stdout, /^warning: shop\/lb: port 9\/SCTP: protocol not supported$/m);
  });

  test('services: json and yaml', async () => {
    const j = JSON.parse((await xlb(['services', '--socket', sock, '-o', 'json'])).stdout);
    assert.deepEqual(j.map((s: any) => s.key), ['default/web', 'shop/lb']);
    assert.equal(j[0].frontends[0].backends[1].state, 'terminating');
    const y = YAML.parse((await xlb(['services', '--socket', sock, '-o', 'yaml'])).stdout);
    assert.deepEqual(y, j);
  });

  test('maps: one table per map with key and value fields as columns, numbers right-aligned', async () => {
    const r = await xlb(['maps', '--socket', sock]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^SVC_ID  PACKETS  BYTES {13}RAW\n {5}1 {7}12  9007199254740993  0102ff$/m);
    assert.match(r.stdout, /^services \(hash, 1\/65536 entries\)\nADDR\s+PORT\s+PROTO\s+SCOPE\s+SVC_ID\s+COUNT\s+FLAGS\n10\.96\.0\.10\s+80\s+TCP\s+internal\s+1\s+1\s+0$/m);
    assert.match(r.stdout, /^stats \(percpu_array, 1\/4 entries\)\nSVC_ID\s+PACKETS\s+BYTES\s+RAW\n\s+1\s+12\s+9007199254740993\s+0102ff$/m);
    assert.match(r.stdout, /^affinity \(lru_hash, 0\/1024 entries\)\n {2}\(empty\)$/m);
  });

  test('maps NAME filters; an unknown name is a usage error listing the maps', async () => {
    const j = await xlb(['maps', 'affinity', '--socket', sock, '-o', 'json']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), [{ name: 'affinity', type: 'lru_hash', maxEntries: 1024, entries: [] }]);
    const y = YAML.parse((await xlb(['maps', 'services', '--socket', sock, '-o', 'yaml'])).stdout);
    assert.deepEqual(y[0].entries[0].key, { addr: '10.96.0.10', port: 80, proto: 'TCP', scope: 'internal' });
    const bad = await xlb(['maps', 'nope', '--socket', sock]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim(), 'xlb: no map named nope (maps: services, stats, affinity)');
  });

  test('stats: counters, human bytes, drops and conntrack', async () => {
    const r = await xlb(['stats', '--socket', sock]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^default\/web\s+10\.96\.0\.10:80\/TCP\s+1200\s+3\.3 MiB\s+40$/m);
    assert.match(r.stdout, /^no_backend\s+3$/m);
    assert.match(r.stdout, /^Conntrack: 47 \/ 65536 entries \(0\.1%\)$/m);
    const j = JSON.parse((await xlb(['stats', '--socket', sock, '-o', 'json'])).stdout);
    assert.deepEqual(j.drops, { no_backend: 3, malformed: 1 });
    assert.equal(j.services[0].bytes, 3_500_000);
    const y = YAML.parse((await xlb(['stats', '--socket', sock, '-o', 'yaml'])).stdout);
    assert.deepEqual(y, j);
  });

  test('stats --count samples repeatedly: NDJSON for json, rates in the table', async () => {
    const j = await xlb(['stats', '--socket', sock, '-o', 'json', '--count', '2', '--interval', '0.2']);
    assert.equal(j.code, 0, j.stderr);
    const lines = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.ok(Date.parse(lines[1].time) - Date.parse(lines[0].time) >= 150);
    const t = await xlb(['stats', '--socket', sock, '--watch', '--count', '2', '--interval', '0.2']);
    assert.equal(t.code, 0, t.stderr);
    const headers = t.stdout.split('\n').filter((l) => l.startsWith('SERVICE'));
    assert.equal(headers.length, 2);
    assert.doesNotMatch(headers[0], /PKT\/S/);
    assert.match(headers[1], /PKT\/S\s+FLOWS\/S$/);
    assert.match(t.stdout, /^default\/web\s+10\.96\.0\.10:80\/TCP\s+1200\s+3\.3 MiB\s+40\s+0\.0\s+0\.0$/m);
  });

  test('stats rejects a bad interval', async () => {
    const r = await xlb(['stats', '--socket', sock, '--interval', 'soon']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), "xlb: --interval must be a number >= 0.1 (got 'soon')");
  });

  test('toggle off/on in manifests mode; refused with the agent\'s reason in kube mode', async () => {
    const off = await xlb(['toggle', 'off', '--socket', sock]);
    assert.equal(off.code, 0, off.stderr);
    assert.equal(off.stdout.trim(), 'xlb is off on this node (toggle)');
    assert.equal(view.enabled, false);
    const on = await xlb(['toggle', 'on', '--socket', sock, '-o', 'json']);
    assert.deepEqual(JSON.parse(on.stdout), { enabled: true, reason: 'toggle' });
    view.kubeMode = true;
    try {
      const k = await xlb(['toggle', 'off', '--socket', sock]);
      assert.equal(k.code, 1);
      assert.equal(k.stderr.trim(), 'xlb: xlb follows the node label xlb.io/enabled here: use the node label');
      assert.equal(view.enabled, true);
    } finally {
      view.kubeMode = false;
    }
    const bad = await xlb(['toggle', 'maybe', '--socket', sock]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim(), "xlb: toggle needs exactly one of 'on' or 'off'");
  });

  test('XLB_SOCKET selects the socket when --socket is absent', async () => {
    const r = await xlb(['status', '-o', 'json'], { env: { XLB_SOCKET: sock } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).node, 'node-a');
  });

  test('an unknown flag is one usage line, exit 2', async () => {
    const r = await xlb(['services', '--bogus', '--socket', sock]);
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^xlb: Unknown option '--bogus'/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

describe('xlb CLI without a reachable agent', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'xlb-cli-')); });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const cmd of [['status'], ['services'], ['maps'], ['stats'], ['toggle', 'on']]) {
    test(`${cmd[0]}: no agent -> one line naming the socket, exit 1`, async () => {
      const sock = join(dir, 'absent.sock');
      const r = await xlb([...cmd, '--socket', sock]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `xlb: no agent is listening on ${sock} (is the xlb agent running on this node?)\n`);
      assert.equal(r.stdout, '');
    });
  }

  test('the default socket path is named when nothing is given', async () => {
    const r = await xlb(['status'], { env: { XLB_SOCKET: '' } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^xlb: (no agent is listening on|permission denied on) \/run\/xlb\/xlb\.sock/);
  });

  test('a socket file nobody listens on reads as no agent', async () => {
    const sock = join(dir, 'dead.sock');
    const s = createServer();
    await new Promise<void>((r) => s.listen(sock, r));
    // Closing the handle directly leaves the file behind, like a crashed agent.
    (s as unknown as { _handle: { close(): void } })._handle.close();
    const r = await xlb(['status', '--socket', sock]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `xlb: no agent is listening on ${sock} (is the xlb agent running on this node?)\n`);
  });

  /**
   * Runs the CLI as `nobody` when nobody can read the checkout; otherwise (a checkout under
   * a private home) as root without capabilities against files owned by nobody - the same
   * situation for the kernel: a caller that does not own a 0600 socket.
   */
  async function unprivileged(): Promise<{ setpriv: string[]; owner?: number }> {
    const probe = await new Promise<number>((resolve) => execFile('setpriv', [...AS_NOBODY, process.execPath, '-e',
      `require('fs').accessSync(${JSON.stringify(MAIN)}, 4)`], (err) => resolve(err ? 1 : 0)));
    return probe === 0 ? { setpriv: AS_NOBODY } : { setpriv: WITHOUT_CAPS, owner: 65534 };
  }

  test('a user who does not own the socket gets "run as root", for the socket and for its directory', async () => {
    const who = await unprivileged();
    const open = join(dir, 'open');
    await mkdir(open);
    await chmod(open, 0o755);
    await chmod(dir, 0o755);
    const sock = join(open, 'xlb.sock');
    const server = await startApiServer(new FakeView(), { socketPath: sock });
    try {
      if (who.owner !== undefined) await chown(sock, who.owner, who.owner);
      const r = await xlb(['status', '--socket', sock], { setpriv: who.setpriv });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `xlb: permission denied on ${sock}: run as root\n`);
      await chmod(open, 0o700);
      if (who.owner !== undefined) await chown(open, who.owner, who.owner);
      const r2 = await xlb(['stats', '--socket', sock], { setpriv: who.setpriv });
      assert.equal(r2.code, 1);
      assert.equal(r2.stderr, `xlb: permission denied on ${sock}: run as root\n`);
      if (who.owner === undefined) {
        const root = await xlb(['status', '--socket', sock, '-o', 'json']);
        assert.equal(root.code, 0, 'root still gets through');
      }
    } finally {
      await server.close();
    }
  });
});

/** n ClusterIP Services, one frontend each, 1,000 per namespace ns-0, ns-1, ... */
function manyServices(n: number): ServiceSpec[] {
  const backends: BackendSpec[] = [1, 2].map((i) => ({ addr: `10.244.0.${i}`, port: 8080, state: 'active', selectable: true, local: false, weight: 1 }));
  return Array.from({ length: n }, (_, i) => {
    const key = `ns-${Math.floor(i / 1000)}/svc-${i % 1000}`;
    const addr = `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    return {
      key, type: 'ClusterIP', localReadyEndpoints: 0, warnings: [],
      frontends: [{
        id: `${key}|http|TCP|ClusterIP|${addr}:80|internal`, service: key, portName: 'http', type: 'ClusterIP', addr, port: 80,
        proto: 'TCP', scope: 'internal', backends, affinityTimeoutSec: 0, sourceRanges: [], localOnly: false, maglev: false,
      }],
    };
  });
}

describe('xlb CLI against an agent with 100,000 frontends', () => {
  const N = 100_000;
  let dir: string;
  let sock: string;
  let server: ApiServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xlb-cli-scale-'));
    sock = join(dir, 'xlb.sock');
    const view = new FakeView([]);
    view.setServices(manyServices(N), false);
    server = await startApiServer(view, { socketPath: sock });
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('services lists every one (table and json), far past one 4 MB message', async () => {
    const r = await xlb(['services', '--socket', sock], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, N + 1);
    assert.match(lines[1]!, /^ns-0\/svc-0\s+ClusterIP\s+<none>\s+10\.96\.0\.0:80\s+IPv4\s+TCP/);
    const j = await xlb(['services', '--socket', sock, '-o', 'json'], { timeoutMs: 120_000 });
    assert.equal(j.code, 0, j.stderr);
    assert.ok(j.stdout.length > 8 << 20, `${j.stdout.length} bytes of JSON`);
    assert.equal((JSON.parse(j.stdout) as unknown[]).length, N);
  });

  test('stats has a row per frontend', async () => {
    const r = await xlb(['stats', '--socket', sock, '-o', 'json'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { services: unknown[]; total: number };
    assert.equal(s.services.length, N);
    assert.equal(s.total, N);
    const one = JSON.parse((await xlb(['stats', 'ns-42/svc-7', '--socket', sock, '-o', 'json'])).stdout) as { services: Array<{ service: string }> };
    assert.deepEqual(one.services.map((x) => x.service), ['ns-42/svc-7']);
  });

  test('one Service by name, or one namespace, well under a second', async () => {
    const r = await xlb(['services', 'ns-42/svc-7', '--socket', sock]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['ns-42/svc-7']);
    // The request the CLI makes, timed without node's start-up (seconds on a loaded machine);
    // the best of a few runs must be fast, not every run.
    const client = new (loadStatusProto().grpcObj.xlb.v1.Status)(`unix:${sock}`, grpc.credentials.createInsecure());
    let best = Infinity;
    try {
      for (let i = 0; i < 5 && best >= 100; i++) {
        const t0 = performance.now();
        const got: string[] = [];
        for await (const m of client.ListServices({ filter: { namespace: 'ns-42', name: 'svc-7' } })) got.push(...(m as { services: Array<{ key: string }> }).services.map((x) => x.key));
        best = Math.min(best, performance.now() - t0);
        assert.deepEqual(got, ['ns-42/svc-7']);
      }
    } finally {
      client.close();
    }
    assert.ok(best < 100, `one Service out of ${N} took ${best.toFixed(1)} ms`);
    const ns = await xlb(['services', '-n', 'ns-99', '--socket', sock, '-o', 'json']);
    assert.equal((JSON.parse(ns.stdout) as unknown[]).length, 1000);
    const byName = await xlb(['services', 'svc-999', '--socket', sock, '-o', 'json']);
    assert.equal((JSON.parse(byName.stdout) as unknown[]).length, 100, 'a bare NAME matches in every namespace');
    const missing = await xlb(['services', 'ns-1/nope', '--socket', sock]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'xlb: no Service ns-1/nope\n');
    const both = await xlb(['services', '-n', 'a', '-A', '--socket', sock]);
    assert.equal(both.code, 2);
  });
});
