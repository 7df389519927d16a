// The agent's own API client (src/sources/kubeclient.ts) over TLS, with the credentials the
// kube source takes: a kubeconfig (CA and token file relative to it), the in-cluster service
// account, a client certificate; a wrong CA, a wrong token and an exec-plugin user fail with
// a clear error. Certificates are made for the test with openssl in a temp directory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, KubeClient, readKubeconfig } from '../../src/sources/kubeclient.js';
import { loadKubeConfig } from '../../src/sources/kube.js';
import { makeCerts } from '../helpers/certs.js';

let dir: string;
let server: Server;
let url: string;
const TOKEN = 'tok-123';
/** the client certificate's CN of the last request that presented one */
let lastClient = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xlb-kubeclient-'));
  await makeCerts(dir);
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  const pem = (n: string): Promise<Buffer> => readFile(join(dir, n));
  server = createServer({ key: await pem('server.key'), cert: await pem('server.crt'), ca: await pem('ca.crt'), requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    lastClient = (req.socket as import('node:tls').TLSSocket).authorized ? String(peer?.subject?.CN ?? '') : '';
    const ok = req.headers.authorization === `Bearer ${TOKEN}` || lastClient === 'client';
    res.setHeader('Content-Type', 'application/json');
    if (!ok) return void res.writeHead(401).end(JSON.stringify({ kind: 'Status', code: 401, message: 'Unauthorized' }));
    res.end(JSON.stringify({ kind: 'NodeList', items: [{ metadata: { name: 'node-a' } }], metadata: { resourceVersion: '7' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await rm(dir, { recursive: true, force: true });
});

async function kubeconfig(name: string, cluster: string, user: string): Promise<string> {
  const f = join(dir, `${name}.kubeconfig`);
  await writeFile(f, ['apiVersion: v1', 'kind: Config', 'current-context: c', 'contexts:', '- name: c', '  context: {cluster: k, user: u}',
    'clusters:', '- name: k', '  cluster:', `    server: ${url}`, `    ${cluster}`, 'users:', '- name: u', '  user:', ...user.split('\n').map((l) => `    ${l}`)].join('\n'));
  return f;
}

test('kubeconfig: CA and token file relative to the file, over TLS', async () => {
  const c = new KubeClient(readKubeconfig(await kubeconfig('token', 'certificate-authority: ca.crt', 'tokenFile: token')));
  const page = await c.list<{ metadata: { name: string } }>('/api/v1/nodes', { limit: 1 });
  assert.deepEqual(page.items.map((n) => n.metadata.name), ['node-a']);
  assert.equal(page.metadata?.resourceVersion, '7');
});

test('kubeconfig: inline CA data and client certificate data', async () => {
  const b64 = async (n: string): Promise<string> => (await readFile(join(dir, n))).toString('base64');
  const f = await kubeconfig('cert', `certificate-authority-data: ${await b64('ca.crt')}`,
    `client-certificate-data: ${await b64('client.crt')}\nclient-key-data: ${await b64('client.key')}`);
  await new KubeClient(readKubeconfig(f)).list('/api/v1/nodes', {});
  assert.equal(lastClient, 'client');
});

test('in cluster: the service account\'s CA and token', async () => {
  const c = new KubeClient(loadKubeConfig({ inCluster: true, server: url, serviceAccountDir: dir }));
  assert.equal((await c.list('/api/v1/nodes', {})).items.length, 1);
});

test('a CA that did not sign the server, a wrong token and an exec-plugin user fail clearly', async () => {
  const wrongCa = new KubeClient(readKubeconfig(await kubeconfig('wrongca', 'certificate-authority: other-ca.crt', `token: ${TOKEN}`)));
  await assert.rejects(wrongCa.list('/api/v1/nodes', {}), (e: Error & { code?: string }) => typeof e.code === 'string' && /CERT|SIGNATURE|ISSUER/.test(e.code));
  const wrongToken = new KubeClient(loadKubeConfig({ server: url, token: 'nope', caFile: join(dir, 'ca.crt') }));
  await assert.rejects(wrongToken.list('/api/v1/nodes', {}), (e: unknown) => e instanceof ApiError && e.code === 401 && e.message === 'HTTP 401: Unauthorized');
  const exec = await kubeconfig('exec', 'insecure-skip-tls-verify: true', 'exec:\n  command: aws');
  assert.throws(() => readKubeconfig(exec), /gets credentials from an exec plugin, which xlb does not run; use a token, a token file or a client certificate/);
});
