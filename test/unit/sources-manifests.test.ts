import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { ManifestsSource } from '../../src/sources/manifests.js';
import { INLINE_BYTES, MANIFEST_MAX_DEPTH, SPLIT_BYTES, nestingDepth, parseInWorker, parseManifest, splitDocuments, splitInTwo } from '../../src/sources/manifest-parse.js';
import type { ChangeKind, Problem } from '../../src/sources/types.js';
import { ipPool, ManifestDir, node, service, slice, waitFor, yamlDocs, type KObj } from '../helpers/manifests.js';
import { noAddressReason } from '../../src/sources/lbpools.js';
import { validateObject } from '../../src/sources/validate.js';
import { decode } from '../../src/sources/decode.js';
import { translate } from '../../src/model/translate.js';

const silent = pino({ level: 'silent' });

async function setup(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string>,
  extra: { fsWatch?: boolean; rescanMs?: number; maxBytes?: number; maxDepth?: number } = {}) {
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
  assert.deepEqual(problems[0], { file: 'web.yaml', doc: 1, kind: 'Service', name: 'web', reason: 'spec.ports[0].port 70000 is not a port number (1-65535)' });
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
    'd.yaml#0: spec.ports: several ports need a name each',
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

// Issue 12.9: bad files in the directory are reported per file, skipped, and never take the
// agent down or hold its thread.

test('a symlink loop is reported once, by file name; the other files apply', async (t) => {
  const { dir, src, problems } = await setup(t, { 'web.yaml': yamlDocs(service('web')) }, { fsWatch: false, rescanMs: 50 });
  await symlink('b.yaml', join(dir.path, 'a.yaml'));
  await symlink('a.yaml', join(dir.path, 'b.yaml'));
  await symlink('nowhere.yaml', join(dir.path, 'dangling.yaml'));
  await src.start();
  assert.deepEqual(src.services().map((s) => s.metadata!.name), ['web']);
  await new Promise((r) => setTimeout(r, 300)); // several rescans
  assert.deepEqual(problems.map((p) => `${p.file}: ${p.reason}`).sort(), [
    'a.yaml: symlink loop (ELOOP): cannot be read; skipped',
    'b.yaml: symlink loop (ELOOP): cannot be read; skipped',
    'dangling.yaml: symlink to a file that does not exist; skipped',
  ]);
});

test('a file over --manifest-max-bytes is skipped and reported; a good file that grows too big keeps its objects', async (t) => {
  const { dir, src, problems } = await setup(t, { 'web.yaml': yamlDocs(service('web')) }, { maxBytes: 4096 });
  await dir.write('big.yaml', yamlDocs(service('big', { labels: { filler: 'x'.repeat(5000) } })));
  await src.start();
  assert.deepEqual(src.services().map((s) => s.metadata!.name), ['web']);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.file, 'big.yaml');
  assert.match(problems[0]!.reason, /^\d+ bytes, over --manifest-max-bytes 4096; skipped$/);
  await dir.write('web.yaml', yamlDocs(service('web', { ports: [{ name: 'http', port: 81 }], labels: { filler: 'y'.repeat(5000) } })));
  await waitFor(() => problems.length === 2, 'the grown file reported', 3000);
  assert.match(problems[1]!.reason, /over --manifest-max-bytes 4096; skipped, its last good objects stay$/);
  assert.deepEqual(webPorts('default/web', src), [80], 'the last good Service stays');
});

test('nesting: counted by indentation and flow brackets, outside quotes, comments and block scalars', () => {
  const svc = yamlDocs(service('web'), slice('web-1', 'web', ['10.0.1.5']));
  assert.ok(nestingDepth(svc) >= 3 && nestingDepth(svc) <= 6, `a Service nests ${nestingDepth(svc)} deep`);
  assert.equal(nestingDepth('a: [[1], {b: [2]}]\n'), 4);
  assert.equal(nestingDepth('{"a":{"b":{"c":[1]}}}'), 4, 'JSON');
  assert.equal(nestingDepth('{\n  "a": {\n    "b": [\n      1\n    ]\n  }\n}\n'), 3, 'indented JSON');
  assert.equal(nestingDepth('- [1]\n'), 2);
  assert.equal(nestingDepth('a: "[[[[[["\nb: \'{{{{\'\n# [[[[[[\nc: x[[[[ # [[[\n'), 1, 'quotes, comments, plain scalars');
  assert.equal(nestingDepth('a: |\n  [[[[[[\n  {{{{\nb: 1\n'), 1, 'block scalar');
  assert.equal(nestingDepth('a:\n  b:\n    - - c: 1\n'), 5);
  assert.equal(nestingDepth('['.repeat(1_000_000), 64), 65, 'stops counting past the limit');
  const r = parseManifest(`${'['.repeat(MANIFEST_MAX_DEPTH + 1)}${']'.repeat(MANIFEST_MAX_DEPTH + 1)}`, MANIFEST_MAX_DEPTH);
  assert.deepEqual(r, { skipped: 'nested deeper than 64 levels (--manifest-max-depth); skipped' });
});

test('a 10 MB file of nested brackets and a parser memory bomb are skipped and reported; the thread keeps answering', async (t) => {
  // 10 MB of '[' grew the agent to 4 GB and killed it; a flat 1 MB flow sequence needs ~500 MB
  // in the yaml package: the first is refused by the depth scan, the second by the worker's heap
  // limit. (Its anchor sends it to the yaml package: js-yaml, the fast path, reads it in ~10 MB.)
  const big = yamlDocs(...Array.from({ length: 300 }, (_, i) => service(`svc-${i}`, { ns: 'many' })));
  assert.ok(big.length > INLINE_BYTES, 'parsed in a worker');
  const { src, problems } = await setup(t, {
    'web.yaml': yamlDocs(service('web')),
    'deep.yaml': '['.repeat(10 << 20),
    'flat.yaml': `&flat [${'1,'.repeat(500_000)}1]`,
    'many.yaml': big,
  });
  let maxGap = 0;
  let last = performance.now();
  const tick = setInterval(() => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; }, 10);
  try {
    await src.start();
  } finally {
    clearInterval(tick);
  }
  assert.equal(src.services().length, 301, 'web and the 300 Services of many.yaml');
  assert.deepEqual(problems.map((p) => p.file).sort(), ['deep.yaml', 'flat.yaml']);
  assert.match(problems.find((p) => p.file === 'deep.yaml')!.reason, /^nested deeper than 64 levels \(--manifest-max-depth\); skipped$/);
  assert.match(problems.find((p) => p.file === 'flat.yaml')!.reason, /^parsing needs more than \d+ MB of memory; skipped$/);
  assert.ok(maxGap < 1000, `the event loop was held ${Math.round(maxGap)} ms`);
});

test('a large directory is parsed a document at a time: the event loop turns and progress shows', async (t) => {
  const N = 3000;
  const docs = Array.from({ length: N }, (_, i) => [service(`s${i}`, { clusterIP: `10.96.${i >> 8}.${i & 255}` }), slice(`s${i}-a`, `s${i}`, ['10.0.1.5'])]).flat();
  const { src } = await setup(t, { 'all.yaml': yamlDocs(...docs) });
  const seen: Array<{ done: number; total: number }> = [];
  const timer = setInterval(() => { const p = src.progress; if (p) seen.push({ done: p.done, total: p.total }); }, 1);
  try {
    await src.start();
  } finally {
    clearInterval(timer);
  }
  assert.equal(src.services().length, N);
  const mid = seen.filter((p) => p.done > 0 && p.done < p.total);
  assert.ok(mid.length >= 2, `the event loop turned during parsing (${seen.length} samples, ${mid.length} mid-read)`);
  assert.equal(mid[0]!.total, 2 * N);
  assert.equal(src.progress, undefined, 'no progress once the read is done');
});

test('documents are read exactly as the yaml package reads them: scalars, collections, errors, empty documents', () => {
  // The fast path (js-yaml with the yaml package's YAML 1.2 core rules) and the yaml package
  // must agree on every value a manifest can hold; where they could differ, the yaml package reads.
  const texts = [
    'a: 1\nb: -0\nc: +5\nd: 0o17\ne: 0x1F\nf: 1_000\ng: 08\nh: 1e3\ni: .5\nj: 1.\nk: .inf\nl: -.Inf\nm: .nan\nn: ~\no: Null\np: TRUE\n' +
      'q: yes\nr: off\ns: 2024-01-01\nt: 1:20\nu: 0b11\nv: 12345678901234567890\nw:\nx: ""\ny: \'08\'\nz: "0x1"\naa: 0.10\nab: 010\nac: -012\n',
    'k: [1, "a", b, null, true, {x: 1}]\nm: {a: 1, b: [2]}\nn: [\n 1,\n 2\n]\n',
    'a: |\n  line\n  two\nb: >-\n  folded\n  text\nc: "esc\\t\\u00e9\\n"\nd: \'it\'\'s\'\n"quoted key": 1\n1: a\ntrue: b\n',
    'ports:\n- port: 80\n  targetPort: http\n- {port: 81}\nurl: http://x?y=1#z\nplain: a b c # comment\n',
    'base: &b {port: 80}\nref: *b\ntagged: !!str 80\nmerge:\n  <<: *b\n', // anchors, tags, merge keys
    'x: 1\nx: 2\n', 'kind: EndpointSlice\n  bad: [indent\n', 'a: b: c\n', '- a\n- b\n', 'just a string\n', '42\n', 'a: 1\n...\n', '---\n',
    '%YAML 1.2\n---\na: 1\n---\nb: 2\n',
  ];
  for (const text of texts) {
    const reference = splitDocuments(text).flatMap((part) => parseAllDocuments(part)).map((d) =>
      d.errors.length > 0 ? { error: `invalid YAML: ${d.errors[0]!.message.split('\n')[0]}` } : { value: d.toJS() as unknown });
    assert.deepEqual(parseManifest(text, MANIFEST_MAX_DEPTH), { docs: reference }, JSON.stringify(text));
  }
});

test('documents split at --- markers only, a stream with directives stays whole', () => {
  assert.deepEqual(splitDocuments('# head\n---\na: 1\n--- \nb: |\n  ---x\n---\n'), ['---\na: 1\n', '--- \nb: |\n  ---x\n', '---\n']);
  assert.deepEqual(splitDocuments('a: 1\n---\nb: 2\n'), ['a: 1\n', '---\nb: 2\n']);
  assert.deepEqual(splitDocuments('%YAML 1.2\n---\na: 1\n---\nb: 2\n'), ['%YAML 1.2\n---\na: 1\n---\nb: 2\n']);
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

test('a manifest Service is held to the model\'s rules: the source rejects exactly what translate calls invalid', () => {
  const bad: Array<[string, (s: KObj) => void]> = [
    ['port out of range', (s) => { s.spec.ports[0].port = 70000; }],
    ['one port twice', (s) => { s.spec.ports.push({ ...s.spec.ports[0], name: 'again' }); }],
    ['a bad externalIP', (s) => { s.spec.externalIPs = ['nope']; }],
    ['a bad policy', (s) => { s.spec.externalTrafficPolicy = 'Nearest'; }],
    ['a bad affinity timeout', (s) => { s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 0 } }; }],
    ['no ports', (s) => { delete s.spec.ports; }],
    ['a port name not a string', (s) => { s.spec.ports[0].name = 7; }],
    ['a bad type', (s) => { s.spec.type = 'Gateway'; }],
  ];
  for (const [what, edit] of bad) {
    const s = service('web');
    edit(s);
    const reason = validateObject(s);
    assert.ok(reason, `${what}: rejected`);
    const r = translate(decode('Service', s), [], undefined, { nodeName: 'node-a' });
    assert.deepEqual(r.ok ? undefined : r.skipped, `invalid Service: ${reason}`, what);
  }
  // A field of the wrong type is a reason too (decoding would turn this string into a list of characters).
  const notList = service('web');
  notList.spec.externalIPs = '192.0.2.1';
  assert.equal(validateObject(notList), 'spec.externalIPs is not a list');
  // Services xlb does not proxy need only their identity; their ports are not xlb's business.
  const external = service('dns', { type: 'ExternalName' });
  delete external.spec.ports;
  const other = service('other', { labels: { 'service.kubernetes.io/service-proxy-name': 'elsewhere' } });
  other.spec.ports[0].port = 0;
  assert.deepEqual([validateObject(external), validateObject(other)], [undefined, undefined]);
});

test('a large file is parsed by two workers, cut at a document marker: the same documents, numbered as one parse numbers them', async () => {
  assert.deepEqual(splitInTwo('a: 1\n---\nb: 2\n---\nc: 3\n'), ['a: 1\n---\nb: 2\n', '---\nc: 3\n']);
  assert.deepEqual(splitInTwo('a: 1\nb: 2\n'), ['a: 1\nb: 2\n'], 'no marker after the middle: whole');
  assert.deepEqual(splitInTwo('%YAML 1.2\n---\na: 1\n---\nb: 2\n'), ['%YAML 1.2\n---\na: 1\n---\nb: 2\n'], 'directives: whole');
  assert.deepEqual(splitInTwo('x: "a\n--- b"\n'.repeat(3)), ['x: "a\n--- b"\nx: "a\n', '--- b"\nx: "a\n--- b"\n'], 'cut where splitDocuments cuts');
  const docs = Array.from({ length: 6000 }, (_, i) => service(`svc-${i}`, { ns: 'many' }));
  const text = `${yamlDocs(...docs)}---\nbroken: [\n---\n`;
  assert.ok(text.length >= SPLIT_BYTES);
  const halves = splitInTwo(text);
  assert.equal(halves.length, 2);
  assert.ok(halves[1]!.startsWith('---'));
  const inWorkers = await parseInWorker(text, MANIFEST_MAX_DEPTH);
  assert.deepEqual(inWorkers, parseManifest(text, MANIFEST_MAX_DEPTH));
  assert.ok('docs' in inWorkers && 'error' in inWorkers.docs[6000]!, 'the broken document keeps its number');
});
