import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { ManifestsSource } from '../../src/sources/manifests.js';
import type { ChangeKind, Problem } from '../../src/sources/types.js';
import { ipPool, ManifestDir, node, service, slice, waitFor, yamlDocs, type KObj } from '../helpers/manifests.js';
import { noAddressReason } from '../../src/sources/lbpools.js';

const silent = pino({ level: 'silent' });

async function setup(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string>, extra: { fsWatch?: boolean; rescanMs?: number } = {}) {
  const dir = await ManifestDir.create();
  for (const [f, text] of Object.entries(files)) await dir.write(f, text);
  const src = new ManifestsSource({ dir: dir.path, nodeName: 'node-a', log: silent, ...extra });
  const changes: Array<[ChangeKind, string]> = [];
  const problems: Problem[] = [];
  src.on('change', (k, key) => changes.push([k, key]));
  src.on('problem', (p) => problems.push(p));
  t.after(async () => {
    await src.stop();
    await dir.cleanup();
  });
  return { dir, src, changes, problems };
}

const webPorts = (svcKey: string, src: ManifestsSource) => src.service(svcKey)?.spec?.ports?.map((p) => p.port);
const webAddrs = (svcKey: string, src: ManifestsSource) =>
  src.slices(svcKey).flatMap((s) => s.endpoints.flatMap((e) => e.addresses)).sort();

test('a multi-document file yields its Services, slices and the own Node', async (t) => {
  const text = yamlDocs(
    service('web', { ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'dns', port: 53, protocol: 'UDP' }] }),
    slice('web-1', 'web', ['10.0.1.5', '10.0.1.6']),
    slice('web-2', 'web', ['10.0.2.7']),
    node('node-a', '192.168.50.2', { 'xlb.io/enabled': 'true' }),
    node('node-b', '192.168.50.3'),
  ) + '---\n';
  const { src, problems } = await setup(t, { 'app.yaml': text, 'other.yml': yamlDocs(service('api', { ns: 'shop' })) });
  await src.start();
  assert.equal(src.synced, true);
  assert.deepEqual(src.services().map((s) => `${s.metadata!.namespace}/${s.metadata!.name}`).sort(), ['default/web', 'shop/api']);
  assert.deepEqual(webPorts('default/web', src), [80, 53]);
  assert.equal(src.service('default/web')!.spec!.ports![0]!.targetPort, 'http');
  assert.deepEqual(webAddrs('default/web', src), ['10.0.1.5', '10.0.1.6', '10.0.2.7']);
  assert.equal(src.node()?.metadata?.name, 'node-a');
  assert.equal(src.node()?.metadata?.labels?.['xlb.io/enabled'], 'true');
  assert.deepEqual(problems, []);
});

test('an edit takes effect within 1 s, also when the editor saves by rename', async (t) => {
  const { dir, src, changes } = await setup(t, { 'web.yaml': yamlDocs(service('web'), slice('web-1', 'web', ['10.0.1.5'])) });
  await src.start();
  changes.length = 0;
  await dir.write('web.yaml', yamlDocs(service('web', { ports: [{ name: 'http', port: 81 }] }), slice('web-1', 'web', ['10.0.1.5'])));
  const ms1 = await waitFor(() => webPorts('default/web', src)?.[0] === 81, 'port 81', 1000);
  assert.deepEqual(changes, [['service', 'default/web']], 'only the Service changed');
  changes.length = 0;
  await dir.writeByRename('web.yaml', yamlDocs(service('web', { ports: [{ name: 'http', port: 81 }] }), slice('web-1', 'web', ['10.0.1.9'])));
  const ms2 = await waitFor(() => webAddrs('default/web', src)[0] === '10.0.1.9', 'new endpoint', 1000);
  assert.deepEqual(changes, [['slices', 'default/web']]);
  t.diagnostic(`edit applied in ${ms1} ms; rename-save applied in ${ms2} ms`);
});

test('without change notifications the periodic rescan still applies edits and new files', async (t) => {
  const { dir, src } = await setup(t, { 'web.yaml': yamlDocs(service('web')) }, { fsWatch: false, rescanMs: 300 });
  await src.start();
  await dir.writeByRename('web.yaml', yamlDocs(service('web', { ports: [{ name: 'http', port: 90 }] })));
  await dir.write('api.yaml', yamlDocs(service('api')));
  const ms = await waitFor(() => webPorts('default/web', src)?.[0] === 90 && !!src.service('default/api'), 'rescan picked up the edit', 1000);
  t.diagnostic(`applied by rescan after ${ms} ms`);
});

test('a ConfigMap volume update (atomic ..data symlink swap) is applied', async (t) => {
  const { dir, src } = await setup(t, {});
  const version = async (v: string, port: number) => {
    await mkdir(join(dir.path, `..${v}`));
    await writeFile(join(dir.path, `..${v}`, 'web.yaml'), yamlDocs(service('web', { ports: [{ name: 'http', port }] })));
  };
  await version('v1', 80);
  await symlink('..v1', join(dir.path, '..data'));
  await symlink('..data/web.yaml', join(dir.path, 'web.yaml'));
  await src.start();
  assert.deepEqual(webPorts('default/web', src), [80]);
  await version('v2', 8080);
  await symlink('..v2', join(dir.path, '..data_tmp'));
  await rename(join(dir.path, '..data_tmp'), join(dir.path, '..data'));
  await waitFor(() => webPorts('default/web', src)?.[0] === 8080, 'the new ConfigMap version', 1000);
});

test('an invalid file is reported with file, document and reason, and its last good state stays', async (t) => {
  const good = yamlDocs(service('web'), slice('web-1', 'web', ['10.0.1.5']));
  const { dir, src, problems } = await setup(t, { 'web.yaml': good });
  await src.start();

  await dir.write('web.yaml', yamlDocs(service('web', { ports: [{ name: 'http', port: 82 }] })) + '---\nkind: EndpointSlice\n  bad: [indent\n');
  await waitFor(() => problems.length > 0, 'a problem report', 1000);
  assert.equal(problems[0]!.file, 'web.yaml');
  assert.equal(problems[0]!.doc, 1);
  assert.match(problems[0]!.reason, /invalid YAML/);
  assert.deepEqual(webPorts('default/web', src), [80], 'the valid half of a broken file is not applied either');
  assert.deepEqual(webAddrs('default/web', src), ['10.0.1.5']);

  problems.length = 0;
  const badPorts = service('web');
  badPorts.spec.ports = [{ name: 'http', port: 70000 }];
  await dir.write('web.yaml', yamlDocs(slice('web-1', 'web', ['10.0.1.5']), badPorts));
  await waitFor(() => problems.length > 0, 'a validation problem', 1000);
  assert.deepEqual(problems[0], { file: 'web.yaml', doc: 1, kind: 'Service', name: 'web', reason: 'spec.ports[0]: port 70000 must be an integer 1-65535' });
  assert.deepEqual(webPorts('default/web', src), [80]);

  await dir.write('web.yaml', yamlDocs(service('web', { ports: [{ name: 'http', port: 83 }] }), slice('web-1', 'web', ['10.0.1.5'])));
  await waitFor(() => webPorts('default/web', src)?.[0] === 83, 'the fixed file applied', 1000);
});

test('validation reasons name the field at fault', async (t) => {
  const noLabel = slice('s1', 'web', ['10.0.1.5']);
  delete noLabel.metadata.labels;
  const badFamily = slice('s2', 'web', ['fd00::1']);
  const noName = service('x');
  delete noName.metadata.name;
  const unnamedPorts = service('y', { ports: [{ port: 80 }, { port: 81 }] });
  const files = { 'a.yaml': yamlDocs(noLabel), 'b.yaml': yamlDocs(badFamily), 'c.yaml': yamlDocs(noName), 'd.yaml': yamlDocs(unnamedPorts), 'e.yaml': '- just\n- a list\n' };
  const { src, problems } = await setup(t, files);
  await src.start();
  assert.deepEqual(problems.map((p) => `${p.file}#${p.doc}: ${p.reason}`), [
    'a.yaml#0: missing label kubernetes.io/service-name (the Service this slice belongs to)',
    'b.yaml#0: endpoints[0]: address "fd00::1" is not a valid IPv4 address',
    'c.yaml#0: missing metadata.name',
    'd.yaml#0: spec.ports[0]: name is required when a Service has more than one port',
    'e.yaml#0: document is not a mapping',
  ]);
  assert.equal(src.services().length, 0);
});

test('deleting a file removes its objects', async (t) => {
  const { dir, src, changes } = await setup(t, {
    'web.yaml': yamlDocs(service('web'), slice('web-1', 'web', ['10.0.1.5'])),
    'node.yaml': yamlDocs(node('node-a')),
  });
  await src.start();
  changes.length = 0;
  await dir.remove('web.yaml');
  await waitFor(() => src.service('default/web') === undefined, 'web gone', 1000);
  await waitFor(() => changes.length === 2, 'two change events', 1000);
  assert.deepEqual(src.slices('default/web'), []);
  assert.deepEqual(changes.sort(), [['service', 'default/web'], ['slices', 'default/web']]);
  await dir.remove('node.yaml');
  await waitFor(() => src.node() === undefined, 'own node gone', 1000);
});

test('other kinds are reported as ignored and the rest of the file applies', async (t) => {
  const deploy = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: {} };
  const { src, problems } = await setup(t, { 'all.yaml': yamlDocs(deploy, service('web')) });
  await src.start();
  assert.deepEqual(problems, [{ file: 'all.yaml', doc: 0, kind: 'Deployment', name: 'web', reason: 'kind Deployment ignored' }]);
  assert.ok(src.service('default/web'));
});

test('a Service defined twice is reported and the first file wins', async (t) => {
  const { src, problems } = await setup(t, {
    'a.yaml': yamlDocs(service('web', { clusterIP: '10.96.0.1' })),
    'b.yaml': yamlDocs(service('web', { clusterIP: '10.96.0.2' })),
  });
  await src.start();
  assert.equal(src.service('default/web')!.spec!.clusterIP, '10.96.0.1');
  assert.deepEqual(problems.map((p) => [p.file, p.reason]), [['b.yaml', 'Service default/web is already defined in a.yaml; ignored']]);
});

test('start fails with a clear message when the directory is missing', async () => {
  const src = new ManifestsSource({ dir: '/nonexistent/xlb-manifests', nodeName: 'n', log: silent });
  await assert.rejects(src.start(), /manifests directory \/nonexistent\/xlb-manifests does not exist/);
});

test('LoadBalancerIPPools: LoadBalancer Services get addresses in their status, pool edits re-assign, a reason when none', async (t) => {
  const lbSvc = (name: string, extra: KObj = {}) => ({ ...service(name, { type: 'LoadBalancer' }), ...extra });
  const { dir, src, changes, problems } = await setup(t, {
    'pool.yaml': yamlDocs(ipPool('pool', ['192.0.2.10-192.0.2.11'])),
    'svc.yaml': yamlDocs(lbSvc('a'), lbSvc('b'), lbSvc('c'), service('cip'),
      lbSvc('manual', { status: { loadBalancer: { ingress: [{ ip: '192.0.2.11' }] } } })),
  });
  await src.start();
  const ingress = (k: string) => src.service(k)?.status?.loadBalancer?.ingress?.map((i) => `${i.ip}/${i.ipMode}`).join(',');
  // The hand-written status stays; the others get what is left, then a reason.
  assert.equal(ingress('default/manual'), '192.0.2.11/undefined');
  assert.equal(ingress('default/a'), '192.0.2.10/VIP');
  assert.equal(ingress('default/b'), undefined);
  assert.equal(noAddressReason(src.service('default/b')!), 'no free IPv4 address in pool pool');
  assert.equal(noAddressReason(src.service('default/a')!), undefined);
  assert.equal(src.service('default/cip')?.status, undefined, 'other types untouched');
  assert.deepEqual(problems, []);
  changes.length = 0;
  await dir.write('pool.yaml', yamlDocs(ipPool('pool', ['192.0.2.10-192.0.2.13'])));
  await waitFor(() => ingress('default/c') === '192.0.2.13/VIP', 'a grown pool serves c', 3000);
  assert.equal(ingress('default/a'), '192.0.2.10/VIP', 'a keeps its address');
  assert.equal(ingress('default/b'), '192.0.2.12/VIP');
  assert.deepEqual(changes.map(([, k]) => k).sort(), ['default/b', 'default/c'], 'only the Services whose address changed');
  // A bad entry: the file's last good pool stays in effect.
  await dir.write('pool.yaml', yamlDocs(ipPool('pool', ['192.0.2.10-192.0.2.'])));
  await waitFor(() => problems.length > 0, 'a bad pool is a problem', 3000);
  assert.equal((problems as Problem[]).at(0)?.reason, 'spec.addresses: "192.0.2.10-192.0.2." is not a CIDR, an address or a FIRST-LAST range');
  assert.equal(ingress('default/c'), '192.0.2.13/VIP');
});
