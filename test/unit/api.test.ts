// The xlb.v1.Status server over a real unix socket: every RPC's content, error codes,
// the event stream, socket permissions, stale sockets, grpc.health.v1 and reflection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pino } from 'pino';
import { setLogger } from '../../src/log.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { loadStatusProto, packageRoot, protoPath } from '../../src/api/proto.js';
import type { StatusClient } from '../../src/api/generated/xlb/v1/Status.js';
import { ViewError } from '../../src/api/view.js';
import { FakeView, T0 } from '../helpers/fake-view.js';

setLogger(pino({ level: 'silent' }));
const require = createRequire(import.meta.url);

function unary<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

/** Every message of a server stream. */
async function collect<T>(stream: AsyncIterable<unknown>): Promise<T[]> {
  const out: T[] = [];
  for await (const m of stream) out.push(m as T);
  return out;
}

function rpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  return p.then(() => assert.fail('expected the RPC to fail'), (e: grpc.ServiceError) => e);
}

describe('status API server', () => {
  let dir: string;
  let sock: string;
  let view: FakeView;
  let server: ApiServer;
  let client: StatusClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xlb-api-'));
    sock = join(dir, 'run', 'xlb.sock');
    view = new FakeView();
    server = await startApiServer(view, { socketPath: sock, tcpAddress: '127.0.0.1:0' });
    const { grpcObj } = loadStatusProto();
    client = new grpcObj.xlb.v1.Status(`unix:${sock}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the .proto is found from the package root, not from the compiled file', () => {
    assert.equal(protoPath(), join(packageRoot(), 'src/api/xlb/v1/status.proto'));
  });

  test('socket is 0600 in a directory created 0700', async () => {
    const s = await stat(sock);
    assert.ok(s.isSocket());
    assert.equal(s.mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'run'))).mode & 0o777, 0o700);
  });

  test('GetStatus returns node, toggle reason, devices, maps, kernel and source', async () => {
    const s = await unary<any>((cb) => client.GetStatus({}, cb));
    assert.equal(s.node, 'node-a');
    assert.equal(s.enabled, true);
    assert.equal(s.enabledReason, 'default');
    assert.deepEqual(s.devices, [{ name: 'eth0', ifindex: 2, xdpMode: 'native', progId: 41, linkId: 7 }]);
    assert.deepEqual(s.podInterfaces, [{ name: 'veth1a2b', progIds: [42, 43] }]);
    assert.equal(s.lastSyncMs, T0);
    assert.equal(s.pendingChanges, 2);
    assert.deepEqual(s.mapFill[0], { name: 'services', entries: 3, maxEntries: 65536 });
    assert.equal(s.kernel.release, '6.18.0-test');
    assert.deepEqual(s.kernel.checks[1], { name: 'bpf_link_xdp', ok: false, detail: 'needs 5.9' });
    assert.deepEqual(s.source, { kind: 'manifests', synced: true, connection: 'up' });
  });

  test('ListServices returns the desired state with frontends and backends', async () => {
    const msgs = await collect<any>(client.ListServices({}));
    assert.equal(msgs.length, 1);
    const { services, total } = msgs[0];
    assert.equal(total, 2);
    assert.deepEqual(services.map((s: any) => s.key), ['default/web', 'shop/lb']);
    const lb = services[1];
    assert.equal(lb.healthCheckNodePort, 32100);
    assert.deepEqual(lb.warnings, ['port 9/SCTP: protocol not supported']);
    const np = lb.frontends[1];
    assert.equal(np.type, 'NodePort');
    assert.equal(np.addr, '', 'NodePort (every node address) is sent as an empty addr');
    assert.equal(np.port, 30053);
    const b = services[0].frontends[0].backends[1];
    assert.deepEqual(b, { addr: '10.244.2.7', port: 8080, state: 'terminating', selectable: false, local: false, weight: 1, nodeName: 'node-b', zone: '', target: 'web-2' });
    assert.deepEqual(lb.frontends[0].sourceRanges, ['198.51.100.0/24']);
    assert.equal(lb.frontends[0].affinityTimeoutSec, 10800);
  });

  test('ListServices filters in the agent and streams pages, each with the total', async () => {
    const keys = async (req: object) => (await collect<any>(client.ListServices(req))).map((m) => [m.total, m.services.map((s: any) => s.key)]);
    assert.deepEqual(await keys({ pageSize: 1 }), [[2, ['default/web']], [2, ['shop/lb']]]);
    assert.deepEqual(await keys({ filter: { namespace: 'shop' } }), [[1, ['shop/lb']]]);
    assert.deepEqual(await keys({ filter: { namespace: 'shop', name: 'lb' } }), [[1, ['shop/lb']]]);
    assert.deepEqual(await keys({ filter: { name: 'web' } }), [[1, ['default/web']]]);
    assert.deepEqual(await keys({ filter: { type: 'loadbalancer' } }), [[1, ['shop/lb']]]);
    assert.deepEqual(await keys({ filter: { namespace: 'sho' } }), [[0, []]], 'a namespace is matched whole, not as a prefix');
    assert.deepEqual(await keys({ filter: { namespace: 'default', name: 'lb' } }), [[0, []]]);
  });

  test('GetStats pages: drops and conntrack in the first page only, filtered by Service', async () => {
    const msgs = await collect<any>(client.GetStats({ pageSize: 1 }));
    assert.deepEqual(msgs.map((m) => [m.total, m.services.map((x: any) => x.service), Object.keys(m.drops).length]), [[2, ['default/web'], 2], [2, ['shop/lb'], 0]]);
    const shop = await collect<any>(client.GetStats({ filter: { namespace: 'shop' } }));
    assert.deepEqual(shop.map((m) => m.services.map((x: any) => x.service)), [['shop/lb']]);
  });

  test('ListMaps sends entries as JSON, u64 beyond 2^53 as a string, bytes as hex', async () => {
    const { maps } = await unary<any>((cb) => client.ListMaps({}, cb));
    assert.deepEqual(maps.map((m: any) => [m.name, m.type, m.maxEntries, m.entries.length]), [
      ['services', 'hash', 65536, 1], ['stats', 'percpu_array', 4, 1], ['affinity', 'lru_hash', 1024, 0],
    ]);
    assert.deepEqual(JSON.parse(maps[0].entries[0].keyJson), { addr: '10.96.0.10', port: 80, proto: 'TCP', scope: 'internal' });
    assert.deepEqual(JSON.parse(maps[1].entries[0].valueJson), { packets: 12, bytes: '9007199254740993', raw: '0102ff' });
  });

  test('GetStats returns per-frontend counters, drops by reason and conntrack fill', async () => {
    const [s] = await collect<any>(client.GetStats({}));
    assert.equal(s.total, 2);
    assert.deepEqual(s.services[0], { service: 'default/web', frontend: '10.96.0.10:80/TCP', packets: 1200, bytes: 3_500_000, newFlows: 40, ipFamily: 'IPv4' });
    assert.deepEqual(s.drops, { no_backend: 3, malformed: 1 });
    assert.deepEqual(s.conntrack, { entries: 47, max: 65536 });
  });

  test('a failing view call becomes INTERNAL with its message; ViewError keeps its code', async () => {
    view.mapsError = new Error('map services: EPERM');
    try {
      const e = await rpcError(unary((cb) => client.ListMaps({}, cb)));
      assert.equal(e.code, grpc.status.INTERNAL);
      assert.match(e.details, /map services: EPERM/);
      view.mapsError = new ViewError('UNAVAILABLE', 'datapath is off on this node');
      const e2 = await rpcError(unary((cb) => client.ListMaps({}, cb)));
      assert.equal(e2.code, grpc.status.UNAVAILABLE);
      assert.equal(e2.details, 'datapath is off on this node');
    } finally {
      view.mapsError = undefined;
    }
  });

  test('Toggle switches in manifests mode and is refused with FAILED_PRECONDITION in kube mode', async () => {
    const r = await unary<any>((cb) => client.Toggle({ on: false }, cb));
    assert.deepEqual(r, { enabled: false, reason: 'toggle' });
    const s = await unary<any>((cb) => client.GetStatus({}, cb));
    assert.equal(s.enabled, false);
    assert.equal(s.enabledReason, 'toggle');
    view.kubeMode = true;
    try {
      const e = await rpcError(unary((cb) => client.Toggle({ on: true }, cb)));
      assert.equal(e.code, grpc.status.FAILED_PRECONDITION);
      assert.match(e.details, /use the node label/);
      assert.equal(view.enabled, false);
    } finally {
      view.kubeMode = false;
      await view.toggle(true);
    }
  });

  test('WatchEvents streams programmed events and unsubscribes on cancel', async () => {
    const stream = client.WatchEvents({});
    const got: any[] = [];
    const two = new Promise<void>((resolve) => stream.on('data', (ev: any) => { got.push(ev); if (got.length === 2) resolve(); }));
    stream.on('error', () => undefined);
    // The subscription is made when the call reaches the server.
    for (let i = 0; i < 100 && view.events.listenerCount('programmed') === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(view.events.listenerCount('programmed'), 1);
    view.events.emit('programmed', { time: T0, service: 'default/web', frontends: 1, backends: 2, durationMs: 1.5, ok: true });
    view.events.emit('programmed', { time: T0 + 1, service: 'shop/lb', frontends: 2, backends: 1, durationMs: 0.25, ok: false, error: 'map full' });
    await two;
    assert.deepEqual(got[0], { timeMs: T0, service: 'default/web', frontends: 1, backends: 2, durationMs: 1.5, ok: true, error: '' });
    assert.equal(got[1].error, 'map full');
    assert.equal(got[1].ok, false);
    stream.cancel();
    for (let i = 0; i < 100 && view.events.listenerCount('programmed') > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(view.events.listenerCount('programmed'), 0);
  });

  test('the same service answers on the optional TCP address', async () => {
    assert.ok(server.tcpPort && server.tcpPort > 0);
    const { grpcObj } = loadStatusProto();
    const tcp = new grpcObj.xlb.v1.Status(`127.0.0.1:${server.tcpPort}`, grpc.credentials.createInsecure());
    try {
      const s = await unary<any>((cb) => tcp.GetStatus({}, cb));
      assert.equal(s.node, 'node-a');
    } finally {
      tcp.close();
    }
  });

  test('grpc.health.v1 reports SERVING for the server and for xlb.v1.Status', async () => {
    const hp = require.resolve('grpc-health-check/proto/health/v1/health.proto');
    const def = protoLoader.loadSync(hp, { enums: String });
    const Health = (grpc.loadPackageDefinition(def) as any).grpc.health.v1.Health;
    const h = new Health(`unix:${sock}`, grpc.credentials.createInsecure());
    try {
      for (const service of ['', 'xlb.v1.Status']) {
        const r = await unary<any>((cb) => h.Check({ service }, cb));
        assert.equal(r.status, 'SERVING');
      }
      const e = await rpcError(unary((cb) => h.Check({ service: 'nope.v1.Nothing' }, cb)));
      assert.equal(e.code, grpc.status.NOT_FOUND);
    } finally {
      h.close();
    }
  });

  test('server reflection lists xlb.v1.Status and the health service', async () => {
    const rp = join(require.resolve('@grpc/reflection/package.json'), '..', 'build/proto/grpc/reflection/v1/reflection.proto');
    const def = protoLoader.loadSync(rp);
    const Refl = (grpc.loadPackageDefinition(def) as any).grpc.reflection.v1.ServerReflection;
    const r = new Refl(`unix:${sock}`, grpc.credentials.createInsecure());
    try {
      const call = r.ServerReflectionInfo();
      const res = await new Promise<any>((resolve, reject) => {
        call.on('data', resolve);
        call.on('error', reject);
        call.write({ listServices: '' });
      });
      call.end();
      const names = res.listServicesResponse.service.map((s: any) => s.name);
      assert.ok(names.includes('xlb.v1.Status'), names.join(','));
      assert.ok(names.includes('grpc.health.v1.Health'), names.join(','));
    } finally {
      r.close();
    }
  });
});

describe('status API socket lifecycle', () => {
  async function killedListener(sock: string): Promise<void> {
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`]);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`listener exited early (${c})`)));
    });
    child.removeAllListeners('exit');
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  test('a socket left by a dead agent is replaced, and close removes the socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xlb-api-'));
    const sock = join(dir, 'xlb.sock');
    try {
      await killedListener(sock);
      assert.ok((await stat(sock)).isSocket(), 'the killed process left its socket file');
      const srv = await startApiServer(new FakeView(), { socketPath: sock });
      const { grpcObj } = loadStatusProto();
      const c = new grpcObj.xlb.v1.Status(`unix:${sock}`, grpc.credentials.createInsecure());
      const s = await unary<any>((cb) => c.GetStatus({}, cb));
      c.close();
      assert.equal(s.node, 'node-a');
      await srv.close();
      await assert.rejects(stat(sock), { code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('refuses to take over a socket another process still listens on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xlb-api-'));
    const sock = join(dir, 'xlb.sock');
    const live = createServer();
    try {
      await new Promise<void>((r) => live.listen(sock, r));
      await assert.rejects(startApiServer(new FakeView(), { socketPath: sock }), /another xlb agent is already listening on/);
      assert.ok((await stat(sock)).isSocket());
    } finally {
      await new Promise((r) => live.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('refuses to replace a file that is not a socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xlb-api-'));
    const sock = join(dir, 'xlb.sock');
    try {
      await writeFile(sock, 'precious');
      await assert.rejects(startApiServer(new FakeView(), { socketPath: sock }), /is not a socket; refusing to replace it/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
