// deploy/: every manifest is a valid Kubernetes object, the DaemonSet has the properties the
// datapath and the install procedure rely on, and its flags and config are ones the agent
// accepts (checked against the real `xlb agent --help` and option parser).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS, parseAgentOptions, splitHostPort } from '../../src/agent/options.js';
import { startHealthServer } from '../../src/api/health.js';
import { FakeView } from '../helpers/fake-view.js';
import {
  applyJsonPatch, baseObjects, DEPLOY, find, loadYaml, ROOT, schemaErrors, unknownFields, yamlFiles, type KObj,
} from './deploy-manifests.js';

const docs = baseObjects();
const ds = find(docs, 'DaemonSet', 'xlb');
const cm = find(docs, 'ConfigMap');
const pod = ds.spec.template.spec;
const agent = pod.containers.find((c: KObj) => c.name === 'agent');
const init = pod.initContainers.find((c: KObj) => c.name === 'mount-bpffs');

function flagValue(args: string[], flag: string): string | undefined {
  const a = args.find((x) => x.startsWith(`--${flag}=`));
  return a?.slice(flag.length + 3);
}

test('every YAML file in deploy/ parses, and the kustomization lists every manifest', () => {
  const files = yamlFiles().map((f) => f.slice(DEPLOY.length + 1));
  for (const f of files) assert.ok(loadYaml(join(DEPLOY, f)).length > 0, `${f} has documents`);
  const listed = new Set((loadYaml(join(DEPLOY, 'kustomization.yaml'))[0]!.resources as string[]));
  const manifests = readdirSync(DEPLOY).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
  assert.deepEqual([...listed].sort(), manifests.sort(), 'kustomization.yaml resources = the manifests in deploy/');
  assert.deepEqual(docs.map((d) => d.obj.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'CustomResourceDefinition', 'DaemonSet', 'Namespace', 'Role', 'RoleBinding', 'ServiceAccount']);
});

test('every manifest validates against the Kubernetes schema and has no unknown fields', () => {
  for (const { file, obj } of docs) {
    assert.equal(schemaErrors(obj), '', `${file} ${obj.kind}`);
    assert.deepEqual(unknownFields(obj, `V1${obj.kind}`), [], `${file} ${obj.kind}: fields the API does not know`);
  }
});

test('the schema checks catch what they are meant to catch', () => {
  const broken = structuredClone(ds);
  broken.spec.template.spec.containers[0].ports[0].containerPort = 'healthz';
  assert.match(schemaErrors(broken), /containerPort must be integer/);
  const misspelt = structuredClone(ds);
  misspelt.spec.template.spec.containers[0].volumeMounts[0].mountPropogation = 'HostToContainer';
  assert.deepEqual(unknownFields(misspelt, 'V1DaemonSet'), ['.spec.template.spec.containers[0].volumeMounts[0].mountPropogation']);
});

test('one namespace; every namespaced object is in it and the RBAC names line up', () => {
  const ns = find(docs, 'Namespace').metadata.name;
  assert.equal(ns, 'xlb-system');
  for (const { obj } of docs) {
    if (['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'].includes(obj.kind)) assert.equal(obj.metadata.namespace, undefined, obj.kind);
    else assert.equal(obj.metadata.namespace, ns, obj.kind);
  }
  const sa = find(docs, 'ServiceAccount');
  const crb = find(docs, 'ClusterRoleBinding');
  assert.equal(pod.serviceAccountName, sa.metadata.name);
  assert.deepEqual(crb.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: ns }]);
  assert.deepEqual(crb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: find(docs, 'ClusterRole').metadata.name });
  const rb = find(docs, 'RoleBinding');
  assert.deepEqual(rb.subjects, crb.subjects);
  assert.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: find(docs, 'Role').metadata.name });
});

test('DaemonSet: host network, node-critical, every taint tolerated, one node at a time', () => {
  assert.deepEqual(ds.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'xlb' });
  for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) assert.equal(ds.spec.template.metadata.labels[k], v, 'selector matches the pods');
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
});

test('DaemonSet: NODE_NAME and POD_NAMESPACE (the Lease, where the Role allows it) from the downward API, the API server from the ConfigMap', () => {
  const env = Object.fromEntries(agent.env.map((e: KObj) => [e.name, e]));
  assert.deepEqual(env.NODE_NAME.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  assert.deepEqual(env.POD_NAMESPACE.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  assert.equal(find(docs, 'Role').metadata.namespace, find(docs, 'DaemonSet').metadata.namespace, 'the Lease Role is in the pods\' namespace');
  for (const k of ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) {
    assert.deepEqual(env[k].valueFrom, { configMapKeyRef: { name: cm.metadata.name, key: k } }, k);
    assert.equal(typeof cm.data[k], 'string', `ConfigMap has ${k}`);
  }
});

test('DaemonSet: least privilege for the agent, privileges only where mount needs them', () => {
  const sc = agent.securityContext;
  assert.equal(sc.privileged, false);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.deepEqual(sc.capabilities, { drop: ['ALL'], add: ['BPF', 'NET_ADMIN', 'NET_RAW', 'PERFMON'] });
  // The API server rejects Bidirectional propagation outside privileged containers.
  for (const c of [...pod.initContainers, ...pod.containers]) {
    for (const m of c.volumeMounts ?? []) {
      if (m.mountPropagation === 'Bidirectional') assert.equal(c.securityContext?.privileged, true, `${c.name} mounts ${m.mountPath} Bidirectional`);
    }
  }
  const bpffsVolume = pod.volumes.find((v: KObj) => v.hostPath?.path === '/sys/fs/bpf');
  assert.ok(bpffsVolume, '/sys/fs/bpf hostPath volume');
  const initMount = init.volumeMounts.find((m: KObj) => m.name === bpffsVolume.name);
  assert.deepEqual([initMount.mountPath, initMount.mountPropagation], ['/sys/fs/bpf', 'Bidirectional'], 'the bpffs mount reaches the host');
  assert.match(init.command.join(' '), /mount -t bpf bpf \/sys\/fs\/bpf/);
  const agentMount = agent.volumeMounts.find((m: KObj) => m.name === bpffsVolume.name);
  assert.deepEqual([agentMount.mountPath, agentMount.mountPropagation], ['/sys/fs/bpf', 'HostToContainer']);
  assert.ok(pod.volumes.some((v: KObj) => v.hostPath?.path === '/run/xlb'), '/run/xlb hostPath for the socket');
  const names = new Set(pod.volumes.map((v: KObj) => v.name));
  for (const c of [...pod.initContainers, ...pod.containers]) {
    for (const m of c.volumeMounts ?? []) assert.ok(names.has(m.name), `${c.name}: volume ${m.name} exists`);
    assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${c.name} has requests and limits`);
  }
});

test('DaemonSet args, env and ConfigMap config are accepted by the agent as deployed', () => {
  assert.equal(agent.command, undefined, "the image's entrypoint runs xlb");
  assert.equal(agent.args[0], 'agent');
  const args: string[] = agent.args.slice(1);
  const configPath = flagValue(args, 'config')!;
  const cfgMount = agent.volumeMounts.find((m: KObj) => configPath.startsWith(`${m.mountPath}/`));
  const cfgVolume = pod.volumes.find((v: KObj) => v.name === cfgMount?.name);
  assert.equal(cfgVolume?.configMap?.name, cm.metadata.name, '--config is a file of the ConfigMap');
  const key = configPath.slice(cfgMount.mountPath.length + 1);
  assert.ok(cfgVolume.configMap.items.some((i: KObj) => i.path === key && typeof cm.data[i.key] === 'string'));

  const dir = mkdtempSync(join(tmpdir(), 'xlb-deploy-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, cm.data[key]);
    const localArgs = args.map((a) => (a.startsWith('--config=') ? `--config=${file}` : a));
    const env = { NODE_NAME: 'node-a', KUBERNETES_SERVICE_HOST: '192.0.2.10', KUBERNETES_SERVICE_PORT: cm.data.KUBERNETES_SERVICE_PORT };
    const o = parseAgentOptions(localArgs, env);
    assert.equal(o.source, 'kube');
    assert.equal(o.node, 'node-a');
    assert.equal(o.apiServer, 'https://192.0.2.10:6443');
    assert.equal(o.enabledByDefault, false, 'installed next to kube-proxy, xlb stays off until a node is labelled');
    assert.equal(o.pinPath, '/sys/fs/bpf/xlb');
    assert.equal(o.apiSocket.startsWith('/run/xlb/'), true);
    const healthPort = splitHostPort(o.healthzBindAddress).port;
    assert.deepEqual(agent.readinessProbe.httpGet, { path: '/healthz', port: healthPort });
    assert.deepEqual(agent.livenessProbe.httpGet, { path: '/livez', port: healthPort });
    assert.notEqual(healthPort, 10256, "kube-proxy's healthz port is taken while both run");
    assert.notEqual(splitHostPort(o.metricsBindAddress).port, 10249, "kube-proxy's metrics port is taken while both run");
    // Left empty, the ConfigMap's API server gives a clear error rather than a guess.
    assert.throws(() => parseAgentOptions(localArgs, { ...env, KUBERNETES_SERVICE_HOST: cm.data.KUBERNETES_SERVICE_HOST }), /no API server/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the deployed agent runs with the defaults (src/agent/options.ts DEFAULTS) except where deploy/ departs on purpose', () => {
  const args: string[] = agent.args.slice(1);
  const dir = mkdtempSync(join(tmpdir(), 'xlb-deploy-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, cm.data['config.yaml']);
    const env = { NODE_NAME: 'node-a', KUBERNETES_SERVICE_HOST: '192.0.2.10', KUBERNETES_SERVICE_PORT: '6443' };
    const deployed: KObj = parseAgentOptions(args.map((a) => (a.startsWith('--config=') ? `--config=${file}` : a)), env);
    const defaults: KObj = parseAgentOptions([], env);
    const differ = Object.keys({ ...deployed, ...defaults }).filter((k) => JSON.stringify(deployed[k]) !== JSON.stringify(defaults[k]));
    // Off until a node is labelled, ports beside kube-proxy's, the host cgroup as mounted, and the file itself;
    // any other value the ConfigMap or the DaemonSet writes must be the default it restates.
    assert.deepEqual(differ.sort(), ['cgroup', 'configFile', 'enabledByDefault', 'healthzBindAddress', 'metricsBindAddress']);
    for (const k of ['flowCacheSize', 'maglevTableSize', 'apiSocket'] as const) assert.equal(deployed[k], DEFAULTS[k], k);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every flag the DaemonSet passes exists in `xlb agent --help`', () => {
  const main = join(ROOT, 'dist/src/cli/main.js');
  const r = spawnSync(process.execPath, [main, 'agent', '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  const flags = (agent.args as string[]).filter((a) => a.startsWith('--')).map((a) => a.replace(/=.*$/, ''));
  assert.ok(flags.length >= 5);
  for (const f of flags) assert.match(r.stdout, new RegExp(`^\\s+${f} `, 'm'), `${f} in xlb agent --help`);
});

test("after-kube-proxy overlay moves /healthz and /metrics to kube-proxy's ports and nothing else", () => {
  const kust = loadYaml(join(DEPLOY, 'after-kube-proxy/kustomization.yaml'))[0]!;
  assert.deepEqual(kust.resources, ['..']);
  assert.equal(kust.patches.length, 1);
  assert.deepEqual(kust.patches[0].target, { group: 'apps', version: 'v1', kind: 'DaemonSet', name: 'xlb', namespace: 'xlb-system' });
  const ops = loadYaml(join(DEPLOY, 'after-kube-proxy', kust.patches[0].path))[0] as unknown as Array<{ op: string; path: string; value?: unknown }>;
  const patched = applyJsonPatch(ds, ops);
  assert.equal(schemaErrors(patched), '');
  const c = patched.spec.template.spec.containers[0];
  assert.equal(flagValue(c.args, 'healthz-bind-address'), '0.0.0.0:10256');
  assert.equal(flagValue(c.args, 'metrics-bind-address'), '0.0.0.0:10249');
  assert.equal(c.readinessProbe.httpGet.port, 10256);
  assert.equal(c.livenessProbe.httpGet.port, 10256);
  assert.deepEqual(c.ports.map((p: KObj) => p.containerPort), [10256, 10249]);
  const untouched = (a: string) => !/^--(healthz|metrics)-bind-address=/.test(a);
  assert.deepEqual(c.args.filter(untouched), agent.args.filter(untouched));
  // The patch's test ops refuse a DaemonSet whose args moved.
  const moved = structuredClone(ds);
  moved.spec.template.spec.containers[0].args.reverse();
  assert.throws(() => applyJsonPatch(moved, ops), /patch test failed/);
});

test("the probes' paths are served by the agent's health server; liveness survives a drain", async (t) => {
  const view = new FakeView();
  const ep = await startHealthServer(view, '127.0.0.1:0', { healthTimeoutMs: 60_000 });
  t.after(() => ep.close());
  const status = async (path: string) => (await fetch(`http://127.0.0.1:${ep.port}${path}`)).status;
  view.healthInfo = { ...view.healthInfo, pendingSince: null, nodeEligible: true };
  assert.equal(await status(agent.readinessProbe.httpGet.path), 200);
  assert.equal(await status(agent.livenessProbe.httpGet.path), 200);
  // A node being drained is not eligible: not ready, but the agent must not be restarted.
  view.healthInfo = { ...view.healthInfo, nodeEligible: false };
  assert.equal(await status(agent.readinessProbe.httpGet.path), 503);
  assert.equal(await status(agent.livenessProbe.httpGet.path), 200);
});
