// `xlb agent` options: precedence flag > env > config file > default, and the one-line
// errors a user sees for each kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { agentHelp, conntrackSizeFromMemory, DEFAULTS, isPrime, parseAgentOptions, splitHostPort, UsageError } from '../../src/agent/options.js';

const KUBE_ENV = { KUBERNETES_SERVICE_HOST: '192.0.2.1', KUBERNETES_SERVICE_PORT: '6443' };

function withConfig(yaml: string, fn: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-options-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, yaml);
    fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function usageError(argv: string[], env: NodeJS.ProcessEnv, pattern: RegExp, configFile?: string): void {
  assert.throws(() => parseAgentOptions(argv, env, { configFile }), (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected UsageError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return true;
  });
}

test('defaults: in-cluster kube source, kube-proxy ports, /sys/fs/bpf/xlb, prime Maglev size', () => {
  const o = parseAgentOptions([], { ...KUBE_ENV });
  assert.deepEqual(o, {
    source: 'kube',
    apiServer: 'https://192.0.2.1:6443',
    manifestMaxBytes: 64 << 20,
    manifestMaxDepth: 64,
    node: hostname(),
    devices: [],
    waitForDevices: false,
    deviceMode: 'auto',
    localDelivery: 'stack',
    socketLb: 'host',
    pinPath: '/sys/fs/bpf/xlb',
    mountBpffs: false,
    apiSocket: DEFAULTS.apiSocket,
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '0.0.0.0:10249',
    podInterfaces: [],
    logLevel: 'info',
    nodePortRange: { min: 30000, max: 32767 },
    snatPortRange: { min: 1024, max: 65535 },
    conntrackSize: conntrackSizeFromMemory(totalmem()),
    conntrackSizeFrom: 'memory',
    flowCacheSize: DEFAULTS.flowCacheSize,
    maglevTableSize: DEFAULTS.maglevTableSize,
    healthTimeout: 60,
    announceLeaseDuration: 15,
    enabledByDefault: true,
    drainTimeout: 600,
    netfilterLookup: 'auto',
    externalIpCidrs: [],
    leaseNamespace: 'xlb-system',
  });
  assert.ok(isPrime(o.maglevTableSize));
});

test('--drain-timeout takes a duration (0: detach at once); --netfilter-lookup auto|off, anything else is one line', () => {
  assert.equal(parseAgentOptions(['--drain-timeout', '10m'], KUBE_ENV).drainTimeout, 600);
  assert.equal(parseAgentOptions(['--drain-timeout', '0'], KUBE_ENV).drainTimeout, 0);
  assert.equal(parseAgentOptions(['--netfilter-lookup', 'off'], KUBE_ENV).netfilterLookup, 'off');
  assert.throws(() => parseAgentOptions(['--netfilter-lookup', 'maybe'], KUBE_ENV), /netfilter/i);
});

test('--lease-namespace: the flag, else the pod namespace (POD_NAMESPACE), else xlb-system', () => {
  assert.equal(parseAgentOptions([], { ...KUBE_ENV, POD_NAMESPACE: 'lb' }).leaseNamespace, 'lb');
  assert.equal(parseAgentOptions(['--lease-namespace', 'other'], { ...KUBE_ENV, POD_NAMESPACE: 'lb' }).leaseNamespace, 'other');
});

test('--external-ip-cidrs: a list of CIDRs, none by default; a bad one is one clear line', () => {
  assert.deepEqual(parseAgentOptions(['--external-ip-cidrs', '203.0.113.7/24, 2001:db8::/64'], { ...KUBE_ENV }).externalIpCidrs, ['203.0.113.0/24', '2001:db8::/64']);
  assert.deepEqual(parseAgentOptions(['--external-ip-cidrs', '2001:DB8:0:0:1::7/64,::/0'], { ...KUBE_ENV }).externalIpCidrs, ['2001:db8::/64', '::/0'], 'IPv6 normalized as IPv4 is');
  assert.throws(() => parseAgentOptions(['--external-ip-cidrs', '203.0.113.7'], { ...KUBE_ENV }),
    (e: Error) => e instanceof UsageError && /--external-ip-cidrs: '203\.0\.113\.7' is not a CIDR/.test(e.message));
});

test('--socket-lb off|host|all (default host) and --cgroup DIR, from flag, env or config file', () => {
  assert.equal(parseAgentOptions(['--socket-lb', 'all', '--cgroup', '/sys/fs/cgroup/x'], { ...KUBE_ENV }).socketLb, 'all');
  assert.equal(parseAgentOptions(['--cgroup', '/sys/fs/cgroup/x'], { ...KUBE_ENV }).cgroup, '/sys/fs/cgroup/x');
  assert.equal(parseAgentOptions([], { ...KUBE_ENV, XLB_SOCKET_LB: 'off' }).socketLb, 'off');
  assert.equal(parseAgentOptions([], { ...KUBE_ENV }).cgroup, undefined, 'no --cgroup: the agent finds the cgroup v2 mount');
  withConfig('socketLb: all\ncgroup: /host/sys/fs/cgroup\n', (file) => {
    const o = parseAgentOptions([], { ...KUBE_ENV }, { configFile: file });
    assert.equal(o.socketLb, 'all');
    assert.equal(o.cgroup, '/host/sys/fs/cgroup');
  });
  usageError(['--socket-lb', 'pods'], { ...KUBE_ENV }, /--socket-lb must be one of off, host, all, not 'pods'/);
  usageError(['--cgroup', ''], { ...KUBE_ENV }, /--cgroup must not be empty/);
});

test('node name: --node > XLB_NODE > NODE_NAME > config file > host name', () => {
  withConfig('node: from-file\n', (file) => {
    const env = { ...KUBE_ENV, XLB_NODE: 'from-xlb-env', NODE_NAME: 'from-downward-api' };
    assert.equal(parseAgentOptions(['--node', 'from-flag'], env, { configFile: file }).node, 'from-flag');
    assert.equal(parseAgentOptions([], env, { configFile: file }).node, 'from-xlb-env');
    assert.equal(parseAgentOptions([], { ...KUBE_ENV, NODE_NAME: 'from-downward-api' }, { configFile: file }).node, 'from-downward-api');
    assert.equal(parseAgentOptions([], { ...KUBE_ENV }, { configFile: file }).node, 'from-file');
  });
});

test('precedence for every layer: flag > env > config file > default', () => {
  const yaml = [
    'pinPath: /sys/fs/bpf/file',
    'healthzBindAddress: 127.0.0.1:1001',
    'metricsBindAddress: 127.0.0.1:2001',
    'devices: [eth1, eth2]',
    'logLevel: debug',
    'maglevTableSize: 65537',
    'nodePortRange: 31000-31999',
    'enabledByDefault: false',
    'healthTimeout: 2m',
    '',
  ].join('\n');
  withConfig(yaml, (file) => {
    const fileOnly = parseAgentOptions(['--config', file], { ...KUBE_ENV });
    assert.equal(fileOnly.pinPath, '/sys/fs/bpf/file');
    assert.equal(fileOnly.healthzBindAddress, '127.0.0.1:1001');
    assert.deepEqual(fileOnly.devices, ['eth1', 'eth2']);
    assert.equal(fileOnly.logLevel, 'debug');
    assert.equal(fileOnly.maglevTableSize, 65537);
    assert.deepEqual(fileOnly.nodePortRange, { min: 31000, max: 31999 });
    assert.equal(fileOnly.enabledByDefault, false);
    assert.equal(fileOnly.healthTimeout, 120);
    assert.equal(fileOnly.configFile, file);
    // untouched keys keep their defaults
    assert.equal(fileOnly.apiSocket, DEFAULTS.apiSocket);

    const env = { ...KUBE_ENV, XLB_CONFIG: file, XLB_PIN_PATH: '/sys/fs/bpf/env', XLB_HEALTHZ_BIND_ADDRESS: '127.0.0.1:1002', XLB_DEVICES: 'eth3', XLB_ENABLED_BY_DEFAULT: 'true' };
    const envWins = parseAgentOptions([], env);
    assert.equal(envWins.pinPath, '/sys/fs/bpf/env');
    assert.equal(envWins.healthzBindAddress, '127.0.0.1:1002');
    assert.deepEqual(envWins.devices, ['eth3']);
    assert.equal(envWins.enabledByDefault, true);
    assert.equal(envWins.metricsBindAddress, '127.0.0.1:2001', 'file still fills what env leaves unset');

    const flagWins = parseAgentOptions(['--pin-path', '/sys/fs/bpf/flag', '--devices=eth4,eth5', '--enabled-by-default', 'false'], env);
    assert.equal(flagWins.pinPath, '/sys/fs/bpf/flag');
    assert.deepEqual(flagWins.devices, ['eth4', 'eth5']);
    assert.equal(flagWins.enabledByDefault, false);
    assert.equal(flagWins.healthzBindAddress, '127.0.0.1:1002', 'env still fills what flags leave unset');
  });
});

test('--config beats XLB_CONFIG, which beats the caller-supplied default file', () => {
  withConfig('pinPath: /sys/fs/bpf/a\n', (a) => {
    withConfig('pinPath: /sys/fs/bpf/b\n', (b) => {
      withConfig('pinPath: /sys/fs/bpf/c\n', (c) => {
        assert.equal(parseAgentOptions(['--config', a], { ...KUBE_ENV, XLB_CONFIG: b }, { configFile: c }).pinPath, '/sys/fs/bpf/a');
        assert.equal(parseAgentOptions([], { ...KUBE_ENV, XLB_CONFIG: b }, { configFile: c }).pinPath, '/sys/fs/bpf/b');
        assert.equal(parseAgentOptions([], { ...KUBE_ENV }, { configFile: c }).pinPath, '/sys/fs/bpf/c');
      });
    });
  });
});

test('API server: --api-server, else kubeconfig as given, else KUBERNETES_SERVICE_HOST/PORT', () => {
  assert.equal(parseAgentOptions(['--api-server', 'https://203.0.113.5:6443/'], { ...KUBE_ENV }).apiServer, 'https://203.0.113.5:6443');
  const kc = parseAgentOptions(['--kubeconfig', '/etc/xlb/kubeconfig'], { ...KUBE_ENV });
  assert.equal(kc.kubeconfig, '/etc/xlb/kubeconfig');
  assert.equal(kc.apiServer, undefined, 'the kubeconfig names its own server');
  assert.equal(parseAgentOptions([], { KUBECONFIG: '/root/.kube/config' }).kubeconfig, '/root/.kube/config');
  assert.equal(parseAgentOptions([], { KUBERNETES_SERVICE_HOST: '2001:db8::1', KUBERNETES_SERVICE_PORT: '443' }).apiServer, 'https://[2001:db8::1]:443');
  usageError([], {}, /^no API server: give --api-server URL or --kubeconfig FILE/);
  usageError(['--api-server', 'ftp://x'], {}, /--api-server must be an http\(s\) URL/);
  usageError(['--api-server', 'not a url'], {}, /--api-server must be a URL such as https:\/\//);
});

test('manifests source: implied by --manifests, and required with --source manifests', () => {
  const o = parseAgentOptions(['--manifests', '/etc/xlb/manifests'], {});
  assert.equal(o.source, 'manifests');
  assert.equal(o.manifests, '/etc/xlb/manifests');
  assert.equal(o.apiServer, undefined);
  usageError(['--source', 'manifests'], {}, /^--source manifests needs --manifests DIR/);
  usageError(['--source', 'etcd'], { ...KUBE_ENV }, /^--source must be kube or manifests, not 'etcd'$/);
  assert.equal(parseAgentOptions(['--source', 'kube', '--manifests', '/m'], { ...KUBE_ENV }).source, 'kube', 'an explicit source wins');
});

test('unknown flags, missing values and stray arguments say what to do', () => {
  usageError(['--pin-paht', '/x'], { ...KUBE_ENV }, /^unknown flag --pin-paht; run 'xlb agent --help' for the flags$/);
  usageError(['--pin-path'], { ...KUBE_ENV }, /^--pin-path needs a value/);
  usageError(['eth0'], { ...KUBE_ENV }, /^unexpected argument 'eth0': every setting is a --flag/);
});

test('HOST:PORT validation for every bind address', () => {
  for (const good of ['0.0.0.0:10256', '127.0.0.1:0', '[::]:10256', '[::1]:65535', 'localhost:8080']) {
    assert.equal(parseAgentOptions(['--healthz-bind-address', good], { ...KUBE_ENV }).healthzBindAddress, good);
  }
  for (const bad of ['10256', ':10256', '0.0.0.0:', '0.0.0.0:70000', '::1:80', '[127.0.0.1]:80', '0.0.0.0:port']) {
    usageError(['--healthz-bind-address', bad], { ...KUBE_ENV }, /^--healthz-bind-address must be HOST:PORT \(e\.g\. 0\.0\.0\.0:10256/);
  }
  usageError([], { ...KUBE_ENV, XLB_METRICS_BIND_ADDRESS: 'everywhere' }, /^--metrics-bind-address must be HOST:PORT/);
  usageError(['--api-address', '1.2.3.4'], { ...KUBE_ENV }, /^--api-address must be HOST:PORT/);
  assert.deepEqual(splitHostPort('[::1]:10256'), { host: '::1', port: 10256 });
  assert.deepEqual(splitHostPort('0.0.0.0:10249'), { host: '0.0.0.0', port: 10249 });
});

test('device mode: auto by default; flag > XLB_DEVICE_MODE > config file', () => {
  withConfig('deviceMode: xdp\n', (file) => {
    assert.equal(parseAgentOptions([], { ...KUBE_ENV }).deviceMode, 'auto');
    assert.equal(parseAgentOptions([], { ...KUBE_ENV }, { configFile: file }).deviceMode, 'xdp');
    assert.equal(parseAgentOptions([], { ...KUBE_ENV, XLB_DEVICE_MODE: 'TC' }, { configFile: file }).deviceMode, 'tc');
    assert.equal(parseAgentOptions(['--device-mode', 'auto'], { ...KUBE_ENV, XLB_DEVICE_MODE: 'tc' }, { configFile: file }).deviceMode, 'auto');
  });
});

test('range, size, level, duration and boolean validation', () => {
  const e = { ...KUBE_ENV };
  usageError(['--node-port-range', '32767-30000'], e, /^--node-port-range must be MIN-MAX with 1 <= MIN <= MAX <= 65535/);
  usageError(['--node-port-range', '30000'], e, /^--node-port-range must be MIN-MAX/);
  usageError(['--node-port-range', '0-100'], e, /^--node-port-range must be MIN-MAX/);
  usageError(['--snat-port-range', '65535-1024'], e, /^--snat-port-range must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535 \(e\.g\. 1024-65535\), not '65535-1024'$/);
  usageError(['--snat-port-range', '1024'], e, /^--snat-port-range must be FIRST-LAST/);
  assert.deepEqual(parseAgentOptions(['--snat-port-range', '20000-29999'], e).snatPortRange, { min: 20000, max: 29999 });
  usageError(['--maglev-table-size', '16384'], e, /^--maglev-table-size must be prime \(Maglev needs it\), 16384 is not: use 16381 or 16411$/);
  usageError(['--maglev-table-size', '7'], e, /^--maglev-table-size must be an integer from 251 to 131071/);
  usageError(['--conntrack-size', '1e6'], e, /^--conntrack-size must be an integer from 1024 to 16777216, not '1e6'$/);
  usageError(['--flow-cache-size', '5000'], e, /^--flow-cache-size must be a power of two \(or 0 for off\), 5000 is not: use 4096 or 8192$/);
  usageError(['--flow-cache-size', '2097152'], e, /^--flow-cache-size must be an integer from 0 to 1048576/);
  assert.equal(parseAgentOptions(['--flow-cache-size', '0'], e).flowCacheSize, 0);
  usageError(['--log-level', 'verbose'], e, /^--log-level must be one of trace, debug, info, warn, error, fatal, silent, not 'verbose'$/);
  usageError(['--health-timeout', 'soon'], e, /^--health-timeout must be a duration from 1s to 24h/);
  usageError(['--enabled-by-default', 'yes'], e, /^--enabled-by-default must be true or false, not 'yes'$/);
  usageError(['--wait-for-devices', 'later'], e, /^--wait-for-devices must be true or false, not 'later'$/);
  usageError(['--mount-bpffs', '1'], e, /^--mount-bpffs must be true or false, not '1'$/);
  usageError(['--manifest-max-bytes', '10MB'], e, /^--manifest-max-bytes must be an integer from 1024 to 1073741824, not '10MB'$/);
  usageError(['--manifest-max-depth', '3'], e, /^--manifest-max-depth must be an integer from 8 to 1000, not '3'$/);
  usageError(['--devices', 'eth0,a/b'], e, /^--devices: 'a\/b' is not a network interface name/);
  usageError(['--device-mode', 'generic'], e, /^--device-mode must be one of auto, xdp, tc, not 'generic'$/);
  usageError(['--local-delivery', 'bpf'], e, /^--local-delivery must be one of stack, peer, not 'bpf'$/);
  assert.equal(parseAgentOptions(['--local-delivery', 'PEER'], e).localDelivery, 'peer');
  assert.equal(parseAgentOptions(['--health-timeout', '1500ms'], e).healthTimeout, 1.5);
  assert.equal(parseAgentOptions(['--log-level', 'WARN'], e).logLevel, 'warn');
  assert.deepEqual(parseAgentOptions(['--pod-interfaces', 'veth*, cali*,,veth*'], e).podInterfaces, ['veth*', 'cali*']);
});

test('config file problems: unreadable, not YAML, not a mapping, unknown key', () => {
  usageError(['--config', '/nonexistent/xlb.yaml'], { ...KUBE_ENV }, /^cannot read config file \/nonexistent\/xlb\.yaml: ENOENT; fix --config or XLB_CONFIG$/);
  withConfig('pinPath: [unclosed\n', (f) => usageError(['--config', f], { ...KUBE_ENV }, /is not valid YAML/));
  withConfig('- a\n- b\n', (f) => usageError(['--config', f], { ...KUBE_ENV }, /must be a YAML mapping of settings/));
  withConfig('pin-path: /x\n', (f) => usageError(['--config', f], { ...KUBE_ENV }, /unknown key 'pin-path' \(known: .*pinPath/));
  withConfig('', (f) => assert.equal(parseAgentOptions(['--config', f], { ...KUBE_ENV }).pinPath, '/sys/fs/bpf/xlb', 'an empty file is no settings'));
});

test('help names every flag with its environment variable', () => {
  const help = agentHelp();
  for (const flag of ['source', 'manifests', 'kubeconfig', 'api-server', 'node', 'devices', 'pin-path', 'api-socket', 'api-address',
    'healthz-bind-address', 'metrics-bind-address', 'pod-interfaces', 'log-level', 'config', 'node-port-range', 'snat-port-range', 'conntrack-size',
    'flow-cache-size', 'maglev-table-size', 'health-timeout', 'enabled-by-default', 'device-mode', 'local-delivery',
    'wait-for-devices', 'mount-bpffs', 'manifest-max-bytes', 'manifest-max-depth',
    'api-tls-ca', 'api-tls-cert', 'api-tls-key', 'api-token-file', 'external-ip-cidrs']) {
    assert.match(help, new RegExp(`--${flag} `), flag);
    assert.match(help, new RegExp(`env XLB_${flag.replace(/-/g, '_').toUpperCase()}\\b`), flag);
  }
});

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('xlb agent: --help exits 0, a usage error exits 2 with one line on stderr', () => {
  const help = spawnSync(process.execPath, [MAIN, 'agent', '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: xlb agent \[flags\]/);
  const bad = spawnSync(process.execPath, [MAIN, 'agent', '--log-level', 'loud'], { encoding: 'utf8', timeout: 10_000, env: { ...KUBE_ENV, PATH: process.env.PATH } });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, "xlb agent: --log-level must be one of trace, debug, info, warn, error, fatal, silent, not 'loud'\n");
  assert.equal(bad.stdout, '');
});

test('the default conntrack size follows the node memory: 0.5 % over 168 bytes an entry, a power of two, clamped; a flag wins', () => {
  const GiB = 2 ** 30;
  assert.equal(conntrackSizeFromMemory(16 * GiB), 262144);
  assert.equal(conntrackSizeFromMemory(8 * GiB), 131072);
  assert.equal(conntrackSizeFromMemory(64 * GiB), 1048576);
  assert.equal(conntrackSizeFromMemory(24 * GiB), 524288);
  assert.equal(conntrackSizeFromMemory(64 * 2 ** 20), 1024, 'never below 1024');
  assert.equal(conntrackSizeFromMemory(16 * 2 ** 40), 1 << 24, 'never above 2^24');
  const d = parseAgentOptions([], KUBE_ENV);
  assert.equal(d.conntrackSizeFrom, 'memory');
  assert.equal(d.conntrackSize, conntrackSizeFromMemory(totalmem()));
  const f = parseAgentOptions(['--conntrack-size', '65536'], KUBE_ENV);
  assert.deepEqual([f.conntrackSize, f.conntrackSizeFrom], [65536, 'flag']);
});
