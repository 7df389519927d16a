// The status API over TCP (issue 12.11): anyone who reaches the port may read, only an
// authenticated client may change state. Without --api-tls-ca or --api-token-file TCP
// refuses Toggle (PERMISSION_DENIED); with a token every TCP call needs it; with mTLS a
// client without a certificate the CA signed does not get in. The unix socket serves all.
// Certificates are made for the test with openssl in a temp directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { setLogger } from '../../src/log.js';
import { readTcpAuth, startApiServer, type ApiServer, type TcpAuth } from '../../src/api/server.js';
import { loadStatusProto } from '../../src/api/proto.js';
import type { StatusClient } from '../../src/api/generated/xlb/v1/Status.js';
import { parseAgentOptions } from '../../src/agent/options.js';
import { FakeView } from '../helpers/fake-view.js';
import { cliPath } from '../helpers/cluster.js';
import { makeCerts } from '../helpers/certs.js';

setLogger(pino({ level: 'silent' }));
const pexec = promisify(execFile);
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xlb-api-auth-'));
  await makeCerts(dir);
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

const pem = (name: string): Promise<Buffer> => readFile(join(dir, name));

function unary<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

async function code(p: Promise<unknown>): Promise<number> {
  return p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);
}

function tcpClient(port: number, creds = grpc.credentials.createInsecure(), token?: string): StatusClient {
  const { grpcObj } = loadStatusProto();
  const interceptors: grpc.Interceptor[] = token === undefined ? [] : [(options, next) => new grpc.InterceptingCall(next(options), {
    start(md, listener, start) { md.set('authorization', `Bearer ${token}`); start(md, listener); },
  })];
  return new grpcObj.xlb.v1.Status(`127.0.0.1:${port}`, creds, { interceptors });
}

const status = (c: StatusClient) => code(unary((cb) => c.GetStatus({}, cb)));
const toggle = (c: StatusClient) => code(unary((cb) => c.Toggle({ on: false }, cb)));

/** The xlb CLI as a user runs it. */
async function xlb(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return pexec(process.execPath, [cliPath(), ...args], { timeout: 20_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));
}

async function withServer(auth: TcpAuth | undefined, fn: (port: number, socket: string, view: FakeView) => Promise<void>): Promise<void> {
  const view = new FakeView();
  const socket = join(dir, `run-${Math.random().toString(36).slice(2)}`, 'xlb.sock');
  const server: ApiServer = await startApiServer(view, { socketPath: socket, tcpAddress: '127.0.0.1:0', tcpAuth: auth });
  try {
    await fn(server.tcpPort!, socket, view);
  } finally {
    await server.close();
  }
}

describe('TCP status API', () => {
  test('without authentication: reads work, Toggle is PERMISSION_DENIED; the unix socket toggles', async () => {
    await withServer(undefined, async (port, socket, view) => {
      const c = tcpClient(port);
      try {
        assert.equal(await status(c), grpc.status.OK);
        assert.equal(await toggle(c), grpc.status.PERMISSION_DENIED);
        assert.equal(view.enabled, true, 'the refused Toggle changed nothing');
      } finally {
        c.close();
      }
      const maps = await xlb(['maps', 'services', '--api-address', `127.0.0.1:${port}`, '-o', 'json']);
      assert.equal(maps.code, 0, maps.stderr);
      assert.equal(JSON.parse(maps.stdout)[0].name, 'services');
      const t = await xlb(['toggle', 'off', '--api-address', `127.0.0.1:${port}`]);
      assert.equal(t.code, 1);
      assert.match(t.stderr, /^xlb: Toggle changes state and is not served over TCP without authentication: use the unix socket on the node, or configure --api-tls-ca or --api-token-file\n$/);
      const local = await xlb(['toggle', 'off', '--socket', socket]);
      assert.equal(local.code, 0, local.stderr);
      assert.equal(view.enabled, false);
    });
  });

  test('bearer token: a missing or wrong token is UNAUTHENTICATED, the right one may toggle', async () => {
    await writeFile(join(dir, 'token'), 's3cret-token\n');
    await withServer(readTcpAuth({ tokenFile: join(dir, 'token') }), async (port, _socket, view) => {
      for (const [token, want] of [[undefined, grpc.status.UNAUTHENTICATED], ['wrong', grpc.status.UNAUTHENTICATED], ['s3cret-token', grpc.status.OK]] as const) {
        const c = tcpClient(port, undefined, token);
        try {
          assert.equal(await status(c), want, `GetStatus with token ${token}`);
          assert.equal(await toggle(c), want, `Toggle with token ${token}`);
        } finally {
          c.close();
        }
      }
      assert.equal(view.enabled, false, 'toggled by the right token');
      const t = await xlb(['toggle', 'on', '--api-address', `127.0.0.1:${port}`, '--api-token-file', join(dir, 'token')]);
      assert.equal(t.code, 0, t.stderr);
      assert.equal(view.enabled, true);
      const no = await xlb(['status', '--api-address', `127.0.0.1:${port}`]);
      assert.equal(no.code, 1);
      assert.match(no.stderr, /bearer token/);
    });
  });

  test('mTLS: a client without a certificate, or with one another CA signed, is refused; the right one may toggle', async () => {
    const auth = readTcpAuth({ ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') });
    await withServer(auth, async (port, _socket, view) => {
      const ca = await pem('ca.crt');
      const clients = {
        plaintext: grpc.credentials.createInsecure(),
        'no certificate': grpc.credentials.createSsl(ca),
        'another CA': grpc.credentials.createSsl(ca, await pem('stranger.key'), await pem('stranger.crt')),
      };
      for (const [what, creds] of Object.entries(clients)) {
        const c = tcpClient(port, creds);
        try {
          assert.notEqual(await status(c), grpc.status.OK, `${what}: GetStatus refused`);
          assert.notEqual(await toggle(c), grpc.status.OK, `${what}: Toggle refused`);
        } finally {
          c.close();
        }
      }
      assert.equal(view.enabled, true);
      const good = tcpClient(port, grpc.credentials.createSsl(ca, await pem('client.key'), await pem('client.crt')));
      try {
        assert.equal(await toggle(good), grpc.status.OK);
        assert.equal(view.enabled, false);
      } finally {
        good.close();
      }
      const t = await xlb(['toggle', 'on', '--api-address', `127.0.0.1:${port}`, '--api-tls-ca', join(dir, 'ca.crt'),
        '--api-tls-cert', join(dir, 'client.crt'), '--api-tls-key', join(dir, 'client.key')]);
      assert.equal(t.code, 0, t.stderr);
      assert.equal(view.enabled, true);
    });
  });

  test('flags: files only with --api-address, certificate with key, CA with both; unreadable or empty files are one line', async () => {
    const env = { KUBERNETES_SERVICE_HOST: '192.0.2.1', KUBERNETES_SERVICE_PORT: '6443' };
    assert.throws(() => parseAgentOptions(['--api-token-file', '/x'], env), /^UsageError: --api-token-file secures the TCP API: give --api-address HOST:PORT too$/);
    assert.throws(() => parseAgentOptions(['--api-address', '0.0.0.0:9901', '--api-tls-cert', '/c'], env), /--api-tls-cert and --api-tls-key go together/);
    assert.throws(() => parseAgentOptions(['--api-address', '0.0.0.0:9901', '--api-tls-ca', '/ca'], env), /--api-tls-ca \(mTLS\) needs --api-tls-cert and --api-tls-key/);
    const o = parseAgentOptions(['--api-address', '0.0.0.0:9901', '--api-tls-ca', '/ca', '--api-tls-cert', '/c', '--api-tls-key', '/k', '--api-token-file', '/t'], env);
    assert.deepEqual([o.apiTlsCa, o.apiTlsCert, o.apiTlsKey, o.apiTokenFile], ['/ca', '/c', '/k', '/t']);
    assert.throws(() => readTcpAuth({ tokenFile: join(dir, 'nope') }), /^Error: --api-token-file .*nope: cannot read it \(ENOENT\)$/);
    assert.equal(readTcpAuth({}), undefined);
    await writeFile(join(dir, 'empty'), '\n');
    assert.throws(() => readTcpAuth({ tokenFile: join(dir, 'empty') }), /is empty: put the bearer token in it$/);
  });
});
