// `xlb agent` options: one table drives the flags, the environment variables, the config file
// keys and the help text, so the four cannot drift apart. Precedence: flag > env > config file
// > default. This module imports nothing heavy: `xlb agent --help` must stay instant.
import { readFileSync } from 'node:fs';
import { hostname, totalmem } from 'node:os';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { MAGLEV_DEFAULT_M } from '../model/maglev.js';
import { parseCidr } from '../model/ip.js';
import { DEFAULT_CONFIG, DEFAULT_FLOW_CACHE_SIZE } from '../datapath/codecs.js';
import { DEFAULT_API_SOCKET } from '../api/view.js';
import { MANIFEST_MAX_BYTES, MANIFEST_MAX_DEPTH } from '../sources/manifest-parse.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export type SourceKind = 'kube' | 'manifests';
/** How node devices run the datapath: XDP, tc ingress, or per device (tc on veths). */
export const DEVICE_MODES = ['auto', 'xdp', 'tc'] as const;
export type DeviceMode = (typeof DEVICE_MODES)[number];
export const LOCAL_DELIVERIES = ['stack', 'peer'] as const;
export type LocalDelivery = (typeof LOCAL_DELIVERIES)[number];
/** Socket-level load balancing: off, the node's own network namespace, or every socket. */
export const SOCKET_LB_MODES = ['off', 'host', 'all'] as const;
export type SocketLbMode = (typeof SOCKET_LB_MODES)[number];
export const NETFILTER_LOOKUPS = ['auto', 'off'] as const;
export type NetfilterLookup = (typeof NETFILTER_LOOKUPS)[number];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface PortRange {
  min: number;
  max: number;
}

export interface AgentOptions {
  source: SourceKind;
  /** manifests directory (source manifests) */
  manifests?: string;
  /** manifest files larger than this are skipped and reported */
  manifestMaxBytes: number;
  /** manifest files nested deeper than this are skipped and reported */
  manifestMaxDepth: number;
  kubeconfig?: string;
  /** kube mode: namespace of the Lease that elects the agent writing LoadBalancer status and Events */
  leaseNamespace: string;
  /** kube mode: seconds a per-address announce Lease lasts without renewal (failover takes about this long) */
  announceLeaseDuration: number;
  /** API server URL; from --api-server, or KUBERNETES_SERVICE_HOST/PORT when no kubeconfig */
  apiServer?: string;
  node: string;
  /** node devices (external traffic); empty = the agent detects them */
  devices: string[];
  /** start although a --devices interface is missing, and attach it when it appears */
  waitForDevices: boolean;
  /** XDP or tc ingress on the devices; auto: tc on veths, XDP otherwise */
  deviceMode: DeviceMode;
  /** how translated packets for pods on this node reach them */
  localDelivery: LocalDelivery;
  /** connect()-time translation for sockets: off, the node's namespace (host), or all */
  socketLb: SocketLbMode;
  /** cgroup v2 directory the socket LB hooks attach to; undefined = the cgroup v2 mount's root */
  cgroup?: string;
  pinPath: string;
  /** mount a bpffs at the pin path itself when it is not on one (outside /sys/fs/bpf) */
  mountBpffs: boolean;
  apiSocket: string;
  /** optional TCP address for the gRPC API, HOST:PORT */
  apiAddress?: string;
  /** PEM CA: TCP clients must present a certificate it signed (mTLS) */
  apiTlsCa?: string;
  /** PEM certificate and key the TCP API serves TLS with */
  apiTlsCert?: string;
  apiTlsKey?: string;
  /** file holding the bearer token every TCP call must carry */
  apiTokenFile?: string;
  healthzBindAddress: string;
  metricsBindAddress: string;
  /** interface-name globs for pod host-side veths; empty = every veth that is not a device */
  podInterfaces: string[];
  logLevel: LogLevel;
  /** the config file that was read, if any */
  configFile?: string;
  nodePortRange: PortRange;
  /** node source ports for SNATed flows to remote backends (ports the node uses are left out) */
  snatPortRange: PortRange;
  /** conntrack map entries */
  conntrackSize: number;
  /** where conntrackSize came from: --conntrack-size (or env/config), or the node's memory */
  conntrackSizeFrom: 'flag' | 'memory';
  /** flow cache entries per CPU (a power of two), 0 = off */
  flowCacheSize: number;
  /** Maglev lookup table size per Service (prime) */
  maglevTableSize: number;
  /** seconds without a successful sync after which /healthz reports unhealthy */
  healthTimeout: number;
  /** whether xlb runs on a node that has no xlb.io/enabled label */
  enabledByDefault: boolean;
  /** seconds a switched-off node keeps translating xlb's flows before its programs detach */
  drainTimeout: number;
  /** auto: leave flows netfilter conntrack tracks to it where the kernel can tell (hitless switch-on) */
  netfilterLookup: NetfilterLookup;
  /** CIDRs Services may claim addresses from in spec.externalIPs; empty: none */
  externalIpCidrs: string[];
}

/** Defaults, each written once: the help shows them and resolve() applies them. Those the
 *  datapath also knows (its config entry's, the map sizes bpf/xlb_maps.h mirrors) come from it. */
export const DEFAULTS = {
  deviceMode: 'auto',
  localDelivery: 'stack',
  socketLb: 'host',
  pinPath: '/sys/fs/bpf/xlb',
  apiSocket: DEFAULT_API_SOCKET,
  healthzBindAddress: '0.0.0.0:10256',
  metricsBindAddress: '0.0.0.0:10249',
  logLevel: 'info',
  nodePortRange: `${DEFAULT_CONFIG.nodePortMin}-${DEFAULT_CONFIG.nodePortMax}`,
  snatPortRange: `${DEFAULT_CONFIG.snatPortMin}-${DEFAULT_CONFIG.snatPortMax}`,
  conntrackSize: 'from memory: 0.5 % of it / 168 bytes, a power of two, 1024..16777216',
  flowCacheSize: DEFAULT_FLOW_CACHE_SIZE,
  maglevTableSize: MAGLEV_DEFAULT_M,
  healthTimeout: 60,
  announceLeaseDuration: 15,
  enabledByDefault: true,
  drainTimeout: 600,
  netfilterLookup: 'auto',
  waitForDevices: false,
  mountBpffs: false,
  manifestMaxBytes: MANIFEST_MAX_BYTES,
  manifestMaxDepth: MANIFEST_MAX_DEPTH,
} as const satisfies Partial<Record<keyof AgentOptions, string | number | boolean>>;

const def = (k: keyof typeof DEFAULTS): string => String(DEFAULTS[k]);

type Kind = 'string' | 'list' | 'int' | 'bool' | 'hostport' | 'range' | 'duration';

interface Spec {
  key: keyof AgentOptions;
  kind: Kind;
  metavar: string;
  help: string;
  /** shown in help; undefined = no default */
  def?: string;
}

const SPECS: Spec[] = [
  { key: 'source', kind: 'string', metavar: 'kube|manifests', help: 'where Services and EndpointSlices come from', def: 'kube (manifests when only --manifests is given)' },
  { key: 'manifests', kind: 'string', metavar: 'DIR', help: 'directory of Service/EndpointSlice/Node YAML (source manifests)' },
  { key: 'manifestMaxBytes', kind: 'int', metavar: 'BYTES', help: 'a manifest file larger than this is skipped and reported (its last good objects stay)', def: def('manifestMaxBytes') },
  { key: 'manifestMaxDepth', kind: 'int', metavar: 'N', help: 'a manifest file nested deeper than this (indentation levels and [ { brackets) is skipped and reported', def: def('manifestMaxDepth') },
  { key: 'kubeconfig', kind: 'string', metavar: 'FILE', help: 'kubeconfig to reach the API server (also KUBECONFIG)' },
  { key: 'leaseNamespace', kind: 'string', metavar: 'NAMESPACE', help: 'kube mode: namespace of the Lease (xlb-lb-status) that elects the one agent writing LoadBalancer addresses into Service status and recording Events', def: '$POD_NAMESPACE, else xlb-system' },
  { key: 'apiServer', kind: 'string', metavar: 'URL', help: 'API server URL', def: 'https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT' },
  { key: 'node', kind: 'string', metavar: 'NAME', help: "this node's name (also NODE_NAME)", def: 'the host name' },
  { key: 'devices', kind: 'list', metavar: 'IF[,IF...]', help: 'node devices to attach to (external traffic)', def: 'detected' },
  { key: 'waitForDevices', kind: 'bool', metavar: 'true|false', help: 'start even when an interface named by --devices does not exist yet, and attach to it when it appears; otherwise the agent exits naming it', def: def('waitForDevices') },
  { key: 'deviceMode', kind: 'string', metavar: DEVICE_MODES.join('|'), help: 'datapath hook on the devices: XDP, tc ingress, or auto: tc on veth devices (container/namespace nodes, where XDP copies every cloned packet and cannot see partial checksums), XDP on the others', def: def('deviceMode') },
  { key: 'localDelivery', kind: 'string', metavar: LOCAL_DELIVERIES.join('|'), help: "how translated packets reach pods on this node: up the host stack (routing, netfilter FORWARD), or peer: straight into the pod's namespace from tc (bpf_redirect_peer), faster, but the host's FORWARD rules (iptables-based NetworkPolicy) never see them", def: def('localDelivery') },
  { key: 'socketLb', kind: 'string', metavar: SOCKET_LB_MODES.join('|'), help: "translate a Service address when a socket connects (TCP, connected UDP) or sends (UDP) instead of per packet: host: sockets of the node's own network namespace (hostNetwork pods, node daemons, localhost and node-address NodePorts), which no device or pod hook sees; all: pod sockets too (their Service traffic then needs no per-packet NAT); off: none", def: def('socketLb') },
  { key: 'cgroup', kind: 'string', metavar: 'DIR', help: 'cgroup v2 directory the socket LB hooks attach to (every process below it)', def: 'the root of the cgroup v2 mount' },
  { key: 'pinPath', kind: 'string', metavar: 'DIR', help: 'bpffs directory for pinned maps and links', def: def('pinPath') },
  { key: 'mountBpffs', kind: 'bool', metavar: 'true|false', help: 'mount a bpffs at --pin-path itself (an empty or new directory) when it is not on one; without it a pin path outside /sys/fs/bpf must already be on a bpffs, or the agent exits (a missing /sys/fs/bpf mount is always made)', def: def('mountBpffs') },
  { key: 'apiSocket', kind: 'string', metavar: 'PATH', help: 'unix socket of the status API', def: def('apiSocket') },
  { key: 'apiAddress', kind: 'hostport', metavar: 'HOST:PORT', help: 'also serve the status API over TCP; without --api-tls-ca or --api-token-file TCP serves only the read calls (status, services, maps, stats, events) and refuses Toggle (PERMISSION_DENIED). The unix socket serves every call: its file mode (0600, root) guards it', def: 'off' },
  { key: 'apiTlsCa', kind: 'string', metavar: 'FILE', help: 'PEM CA bundle: TCP clients must present a certificate it signed (mTLS), which allows every call; needs --api-tls-cert and --api-tls-key' },
  { key: 'apiTlsCert', kind: 'string', metavar: 'FILE', help: "PEM certificate (chain) of the TCP API's TLS, naming the address clients dial" },
  { key: 'apiTlsKey', kind: 'string', metavar: 'FILE', help: 'PEM private key of --api-tls-cert' },
  { key: 'apiTokenFile', kind: 'string', metavar: 'FILE', help: "bearer token (the file's content) every TCP call must carry ('authorization: Bearer TOKEN'), which allows every call; use with --api-tls-cert/--api-tls-key so it does not cross the network in clear" },
  { key: 'healthzBindAddress', kind: 'hostport', metavar: 'HOST:PORT', help: '/healthz and /livez', def: def('healthzBindAddress') },
  { key: 'metricsBindAddress', kind: 'hostport', metavar: 'HOST:PORT', help: '/metrics (Prometheus)', def: def('metricsBindAddress') },
  { key: 'podInterfaces', kind: 'list', metavar: 'GLOB[,GLOB...]', help: 'pod host-side interfaces to attach tc to', def: 'every veth that is not a device' },
  { key: 'logLevel', kind: 'string', metavar: 'LEVEL', help: LOG_LEVELS.join('|'), def: def('logLevel') },
  { key: 'nodePortRange', kind: 'range', metavar: 'MIN-MAX', help: 'NodePort range (as the API server\'s)', def: def('nodePortRange') },
  { key: 'snatPortRange', kind: 'range', metavar: 'FIRST-LAST', help: 'node source ports for external flows SNATed to remote backends (as kube-proxy\'s masquerade); ports the node listens on, its local port range and reserved ports are left out', def: def('snatPortRange') },
  { key: 'conntrackSize', kind: 'int', metavar: 'N', help: 'conntrack map entries', def: def('conntrackSize') },
  { key: 'flowCacheSize', kind: 'int', metavar: 'N', help: 'per-CPU cache of established flows\' rewrites, entries per CPU (a power of two, about 100 bytes each; 0 = off: every packet looks up conntrack)', def: def('flowCacheSize') },
  { key: 'maglevTableSize', kind: 'int', metavar: 'PRIME', help: 'Maglev table size per Service', def: def('maglevTableSize') },
  { key: 'healthTimeout', kind: 'duration', metavar: 'SECONDS', help: '/healthz fails when no sync succeeded for this long (e.g. 60, 90s, 2m)', def: def('healthTimeout') },
  { key: 'announceLeaseDuration', kind: 'duration', metavar: 'SECONDS', help: 'kube mode: lifetime of the per-address Lease (xlb-announce-ADDRESS) held by the node that answers ARP/NDP for a LoadBalancer address; renewed every third of it, a new node takes over within about this long of the holder failing', def: def('announceLeaseDuration') },
  { key: 'enabledByDefault', kind: 'bool', metavar: 'true|false', help: 'run on nodes without an xlb.io/enabled label', def: def('enabledByDefault') },
  { key: 'drainTimeout', kind: 'duration', metavar: 'SECONDS', help: 'after xlb is switched off on a node, flows it translates keep being translated (new ones go to the stack) until they close or this passes; then its programs detach (e.g. 600, 10m; 0: at once, connections xlb translates break)', def: def('drainTimeout') },
  { key: 'netfilterLookup', kind: 'string', metavar: NETFILTER_LOOKUPS.join('|'), help: "auto: when switched on, a packet of a connection netfilter conntrack already tracks (kube-proxy NATed it) is left to the stack, where kernel and nf_conntrack offer the lookup kfuncs; off: every Service packet without an xlb flow starts one", def: def('netfilterLookup') },
  { key: 'externalIpCidrs', kind: 'list', metavar: 'CIDR[,CIDR...]', help: 'addresses Services may claim in spec.externalIPs, which anyone who can create a Service could otherwise use to intercept traffic to any address (CVE-2020-8554); 0.0.0.0/0 allows every IPv4 address and ::/0 every IPv6 one, as kube-proxy does', def: 'none' },
  { key: 'configFile', kind: 'string', metavar: 'FILE', help: 'YAML config file, keys camelCase as the flags', def: '$XLB_CONFIG' },
];

const CONFIG_FLAG = 'config';
const MAGLEV_MIN = 251;
const MAGLEV_MAX = 131071;
const CT_MIN = 1024;
const CT_MAX = 1 << 24;
/** Share of the node's memory the default conntrack table may take (nf_conntrack's default
 *  hash takes ~0.25 %; xlb's entries are per direction, so twice that). */
export const CT_MEMORY_RATIO = 0.005;
/** Kernel bytes per LRU_HASH conntrack entry: htab_elem with its LRU node (48), the key (40),
 *  the value (64) and one bucket (16, buckets = entries rounded up to a power of two). */
export const CT_ENTRY_BYTES = 168;

/**
 * The default --conntrack-size: CT_MEMORY_RATIO of total memory over CT_ENTRY_BYTES, rounded
 * down to a power of two, clamped to [1024, 2^24]: 8 GiB -> 131072, 16 GiB -> 262144 (the old
 * fixed default), 64 GiB -> 1048576.
 */
export function conntrackSizeFromMemory(totalBytes: number): number {
  const raw = Math.floor((totalBytes * CT_MEMORY_RATIO) / CT_ENTRY_BYTES);
  const pow2 = raw >= 1 ? 2 ** Math.floor(Math.log2(raw)) : 1;
  return Math.min(CT_MAX, Math.max(CT_MIN, pow2));
}
const FLOW_CACHE_MAX = 1 << 20;

function flagName(s: Spec): string {
  return s.key === 'configFile' ? CONFIG_FLAG : s.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function envName(s: Spec): string {
  return `XLB_${flagName(s).replace(/-/g, '_').toUpperCase()}`;
}

/** Raw values as strings (flags, env) or YAML scalars/lists (config file). */
type Raw = Partial<Record<keyof AgentOptions, unknown>>;

export function agentHelp(): string {
  const rows = SPECS.map((s) => {
    const left = `  --${flagName(s)} ${s.metavar}`;
    const def = s.def ? ` [default: ${s.def}]` : '';
    return `${left.padEnd(44)} ${s.help}${def}\n${''.padEnd(45)}env ${envName(s)}`;
  });
  return [
    'usage: xlb agent [flags]',
    '',
    'Runs the node agent: watches Services and EndpointSlices and programs the XDP/tc datapath.',
    '',
    'flags:',
    ...rows,
    `  ${'--help, -h'.padEnd(42)} show this help`,
    '',
    'Every flag can also be set by its environment variable or by its camelCase key in the',
    'config file (e.g. healthzBindAddress: 0.0.0.0:10256). Precedence: flag > environment >',
    'config file > default.',
  ].join('\n');
}

export function parseAgentOptions(
  argv: string[],
  env: NodeJS.ProcessEnv,
  opts: { configFile?: string } = {},
): AgentOptions {
  const flags = parseFlags(argv);
  const fromEnv = readEnv(env);
  const configFile = (flags.configFile ?? fromEnv.configFile ?? opts.configFile) as string | undefined;
  const fromFile = configFile ? readConfigFile(configFile) : {};
  const pick = (k: keyof AgentOptions): unknown => flags[k] ?? fromEnv[k] ?? fromFile[k];
  const o = resolve(pick, env);
  if (configFile) o.configFile = configFile;
  return o;
}

/** Splits HOST:PORT (IPv6 as [addr]:port) after parseAgentOptions validated it. */
export function splitHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (!m) throw new UsageError(`'${s}' is not HOST:PORT`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** True when the argv asks for help; checked before any parsing so that --help always works. */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

function parseFlags(argv: string[]): Raw {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const s of SPECS) options[flagName(s)] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError(describeParseError(e, argv));
  }
  const raw: Raw = {};
  for (const s of SPECS) {
    const v = values[flagName(s)];
    if (v !== undefined) raw[s.key] = v;
  }
  return raw;
}

function describeParseError(e: unknown, argv: string[]): string {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  const quoted = /'(-[^' ]*)/.exec(msg)?.[1] ?? '';
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown flag ${quoted}; run 'xlb agent --help' for the flags`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${quoted} needs a value, e.g. ${quoted} VALUE`;
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = argv.find((a) => !a.startsWith('-') && msg.includes(`'${a}'`)) ?? '';
    return `unexpected argument '${arg}': every setting is a --flag; run 'xlb agent --help'`;
  }
  return msg;
}

function readEnv(env: NodeJS.ProcessEnv): Raw {
  const raw: Raw = {};
  for (const s of SPECS) {
    const v = env[envName(s)];
    if (v !== undefined && v !== '') raw[s.key] = v;
  }
  // NODE_NAME comes from the downward API; XLB_NODE still wins when both are set.
  if (raw.node === undefined && env.NODE_NAME) raw.node = env.NODE_NAME;
  if (raw.kubeconfig === undefined && env.KUBECONFIG) raw.kubeconfig = env.KUBECONFIG;
  return raw;
}

function readConfigFile(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; fix --config or XLB_CONFIG`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new UsageError(`config file ${file} is not valid YAML: ${firstLine(e)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`config file ${file} must be a YAML mapping of settings, e.g. pinPath: /sys/fs/bpf/xlb`);
  const known = new Set(SPECS.filter((s) => s.key !== 'configFile').map((s) => s.key as string));
  const raw: Raw = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!known.has(k)) throw new UsageError(`config file ${file}: unknown key '${k}' (known: ${[...known].join(', ')})`);
    if (v !== null && v !== undefined) raw[k as keyof AgentOptions] = v;
  }
  return raw;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

function resolve(pick: (k: keyof AgentOptions) => unknown, env: NodeJS.ProcessEnv): AgentOptions {
  const manifests = optString(pick('manifests'), 'manifests');
  const source = resolveSource(pick('source'), manifests);
  const kubeconfig = optString(pick('kubeconfig'), 'kubeconfig');
  const o: AgentOptions = {
    source,
    manifestMaxBytes: integer(pick('manifestMaxBytes') ?? DEFAULTS.manifestMaxBytes, 'manifestMaxBytes', 1024, 1 << 30),
    manifestMaxDepth: integer(pick('manifestMaxDepth') ?? DEFAULTS.manifestMaxDepth, 'manifestMaxDepth', 8, 1000),
    node: optString(pick('node'), 'node') ?? hostname(),
    devices: list(pick('devices'), 'devices').map(checkIfName),
    waitForDevices: bool(pick('waitForDevices') ?? DEFAULTS.waitForDevices, 'waitForDevices'),
    deviceMode: oneOf(pick('deviceMode') ?? DEFAULTS.deviceMode, DEVICE_MODES, 'deviceMode'),
    localDelivery: oneOf(pick('localDelivery') ?? DEFAULTS.localDelivery, LOCAL_DELIVERIES, 'localDelivery'),
    socketLb: oneOf(pick('socketLb') ?? DEFAULTS.socketLb, SOCKET_LB_MODES, 'socketLb'),
    pinPath: optString(pick('pinPath'), 'pinPath') ?? DEFAULTS.pinPath,
    mountBpffs: bool(pick('mountBpffs') ?? DEFAULTS.mountBpffs, 'mountBpffs'),
    apiSocket: optString(pick('apiSocket'), 'apiSocket') ?? DEFAULTS.apiSocket,
    healthzBindAddress: hostPort(pick('healthzBindAddress') ?? DEFAULTS.healthzBindAddress, 'healthzBindAddress'),
    metricsBindAddress: hostPort(pick('metricsBindAddress') ?? DEFAULTS.metricsBindAddress, 'metricsBindAddress'),
    podInterfaces: list(pick('podInterfaces'), 'podInterfaces'),
    logLevel: oneOf(pick('logLevel') ?? DEFAULTS.logLevel, LOG_LEVELS, 'logLevel'),
    nodePortRange: portRange(pick('nodePortRange') ?? DEFAULTS.nodePortRange, 'nodePortRange'),
    snatPortRange: portRange(pick('snatPortRange') ?? DEFAULTS.snatPortRange, 'snatPortRange'),
    conntrackSize: pick('conntrackSize') === undefined ? conntrackSizeFromMemory(totalmem()) : integer(pick('conntrackSize'), 'conntrackSize', CT_MIN, CT_MAX),
    conntrackSizeFrom: pick('conntrackSize') === undefined ? 'memory' : 'flag',
    flowCacheSize: flowCacheSize(pick('flowCacheSize') ?? DEFAULTS.flowCacheSize),
    maglevTableSize: maglevSize(pick('maglevTableSize') ?? DEFAULTS.maglevTableSize),
    healthTimeout: duration(pick('healthTimeout') ?? DEFAULTS.healthTimeout, 'healthTimeout'),
    enabledByDefault: bool(pick('enabledByDefault') ?? DEFAULTS.enabledByDefault, 'enabledByDefault'),
    announceLeaseDuration: duration(pick('announceLeaseDuration') ?? DEFAULTS.announceLeaseDuration, 'announceLeaseDuration'),
    drainTimeout: duration(pick('drainTimeout') ?? DEFAULTS.drainTimeout, 'drainTimeout', 0),
    netfilterLookup: oneOf(pick('netfilterLookup') ?? DEFAULTS.netfilterLookup, NETFILTER_LOOKUPS, 'netfilterLookup'),
    externalIpCidrs: list(pick('externalIpCidrs'), 'externalIpCidrs').map((c) => cidr(c, 'externalIpCidrs')),
    leaseNamespace: optString(pick('leaseNamespace'), 'leaseNamespace') ?? (env.POD_NAMESPACE || 'xlb-system'),
  };
  if (manifests !== undefined) o.manifests = manifests;
  const cgroup = optString(pick('cgroup'), 'cgroup');
  if (cgroup !== undefined) o.cgroup = cgroup;
  if (kubeconfig !== undefined) o.kubeconfig = kubeconfig;
  const apiAddress = pick('apiAddress');
  if (apiAddress !== undefined) o.apiAddress = hostPort(apiAddress, 'apiAddress');
  apiAuth(o, pick);
  const apiServer = optString(pick('apiServer'), 'apiServer');
  if (apiServer !== undefined) o.apiServer = checkUrl(apiServer);
  else if (!kubeconfig && source === 'kube') {
    const fromService = serviceHostUrl(env);
    if (fromService) o.apiServer = fromService;
  }
  if (source === 'kube' && !o.apiServer && !o.kubeconfig) {
    throw new UsageError('no API server: give --api-server URL or --kubeconfig FILE (in a pod, set KUBERNETES_SERVICE_HOST/PORT), or use --source manifests --manifests DIR');
  }
  return o;
}

/** The TCP API's TLS and token files: only with --api-address, a certificate with its key, a CA with both. */
function apiAuth(o: AgentOptions, pick: (k: keyof AgentOptions) => unknown): void {
  const keys = ['apiTlsCa', 'apiTlsCert', 'apiTlsKey', 'apiTokenFile'] as const;
  for (const k of keys) {
    const v = optString(pick(k), k);
    if (v !== undefined) o[k] = v;
  }
  const given = keys.filter((k) => o[k] !== undefined);
  if (given.length && !o.apiAddress) throw new UsageError(`${flagFor(given[0]!)} secures the TCP API: give --api-address HOST:PORT too`);
  if ((o.apiTlsCert === undefined) !== (o.apiTlsKey === undefined)) throw new UsageError('--api-tls-cert and --api-tls-key go together: the certificate and its private key');
  if (o.apiTlsCa !== undefined && o.apiTlsCert === undefined) throw new UsageError("--api-tls-ca (mTLS) needs --api-tls-cert and --api-tls-key: the agent's own certificate and key");
}

function flowCacheSize(v: unknown): number {
  const n = integer(v, 'flowCacheSize', 0, FLOW_CACHE_MAX);
  if (n !== 0 && (n & (n - 1)) !== 0) {
    const lo = 2 ** Math.floor(Math.log2(n));
    throw new UsageError(`${flagFor('flowCacheSize')} must be a power of two (or 0 for off), ${n} is not: use ${lo} or ${lo * 2}`);
  }
  return n;
}

function resolveSource(v: unknown, manifests: string | undefined): SourceKind {
  const s = optString(v, 'source') ?? (manifests !== undefined ? 'manifests' : 'kube');
  if (s !== 'kube' && s !== 'manifests') throw new UsageError(`--source must be kube or manifests, not '${s}'`);
  if (s === 'manifests' && manifests === undefined) throw new UsageError('--source manifests needs --manifests DIR (a directory of Service/EndpointSlice YAML)');
  return s;
}

function flagFor(key: keyof AgentOptions): string {
  return `--${flagName(SPECS.find((s) => s.key === key)!)}`;
}

function optString(v: unknown, key: keyof AgentOptions): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new UsageError(`${flagFor(key)} must be a single value, got ${JSON.stringify(v)}`);
  const s = String(v).trim();
  if (s === '') throw new UsageError(`${flagFor(key)} must not be empty`);
  return s;
}

function list(v: unknown, key: keyof AgentOptions): string[] {
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(',') : null;
  if (!items) throw new UsageError(`${flagFor(key)} must be a comma-separated list, got ${JSON.stringify(v)}`);
  const out = items.map((i) => i.trim()).filter((i) => i !== '');
  return [...new Set(out)];
}

function cidr(c: string, key: keyof AgentOptions): string {
  const p = parseCidr(c);
  if (!p.ok) throw new UsageError(`${flagFor(key)}: '${c}' is not a CIDR (e.g. 203.0.113.0/24 or 2001:db8::/64)`);
  return p.cidr;
}

// Linux interface names: at most 15 bytes, no '/', no whitespace, not '.' or '..'.
function checkIfName(n: string): string {
  if (n.length > 15 || /[\s/:]/.test(n) || n === '.' || n === '..') {
    throw new UsageError(`--devices: '${n}' is not a network interface name (at most 15 characters, no '/', ':' or spaces)`);
  }
  return n;
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function hostPort(v: unknown, key: keyof AgentOptions): string {
  const s = typeof v === 'string' ? v.trim() : '';
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const host = m ? (m[1] ?? m[2]) : '';
  const okHost = m && (m[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || HOSTNAME_RE.test(host));
  if (!m || !okHost || Number(m[3]) > 65535) {
    throw new UsageError(`${flagFor(key)} must be HOST:PORT (e.g. 0.0.0.0:10256 or [::]:10256), not ${JSON.stringify(v)}`);
  }
  return s;
}

function checkUrl(s: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UsageError(`--api-server must be a URL such as https://10.0.0.1:6443, not '${s}'`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`--api-server must be an http(s) URL, not '${s}'`);
  return s.replace(/\/+$/, '');
}

function serviceHostUrl(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return checkUrl(`https://${h}:${port}`);
}

function oneOf<T extends string>(v: unknown, values: readonly T[], key: keyof AgentOptions): T {
  const s = String(v).trim().toLowerCase();
  if (!(values as readonly string[]).includes(s)) throw new UsageError(`${flagFor(key)} must be one of ${values.join(', ')}, not '${String(v)}'`);
  return s as T;
}

function integer(v: unknown, key: keyof AgentOptions, min: number, max: number): number {
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flagFor(key)} must be an integer from ${min} to ${max}, not '${String(v)}'`);
  return n;
}

function portRange(v: unknown, key: 'nodePortRange' | 'snatPortRange'): PortRange {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(String(v));
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!m || min < 1 || max > 65535 || min > max) {
    const spec = SPECS.find((s) => s.key === key)!;
    throw new UsageError(`${flagFor(key)} must be ${spec.metavar} with 1 <= ${spec.metavar.replace('-', ' <= ')} <= 65535 (e.g. ${spec.def}), not '${String(v)}'`);
  }
  return { min, max };
}

export function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function maglevSize(v: unknown): number {
  const n = integer(v, 'maglevTableSize', MAGLEV_MIN, MAGLEV_MAX);
  if (!isPrime(n)) {
    let lo = n - 1;
    while (!isPrime(lo)) lo--;
    let hi = n + 1;
    while (!isPrime(hi)) hi++;
    throw new UsageError(`--maglev-table-size must be prime (Maglev needs it), ${n} is not: use ${lo} or ${hi}`);
  }
  return n;
}

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

function duration(v: unknown, key: keyof AgentOptions, min = 1): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(v));
  const secs = m ? Number(m[1]) * UNIT_SECONDS[m[2] ?? 's'] : NaN;
  if (!m || !(secs >= min) || secs > 86400) throw new UsageError(`${flagFor(key)} must be a duration from ${min}s to 24h such as 60, 90s or 2m, not '${String(v)}'`);
  return secs;
}

function bool(v: unknown, key: keyof AgentOptions): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new UsageError(`${flagFor(key)} must be true or false, not '${String(v)}'`);
}
