// `xlb services`: the Services as the agent wants them programmed (desired state), one row
// per frontend, so ClusterIP, NodePort and LoadBalancer addresses of a Service line up.
import type { Frontend__Output } from '../api/generated/xlb/v1/Frontend.js';
import type { Service__Output } from '../api/generated/xlb/v1/Service.js';
import { call, COMMON_HELP, noPositionals, parseFlags, runCli, withAgent } from './client.js';
import { render, table } from './output.js';

export const summary = 'list Services as xlb programs them (desired state)';

const HELP = ['usage: xlb services [flags]', '', summary, '', 'flags:', ...COMMON_HELP].join('\n');
const MAX_LISTED_BACKENDS = 3;

function frontendAddr(f: Frontend__Output): string {
  return `${f.addr || '*'}:${f.port}`;
}

function backendList(f: Frontend__Output): string {
  const sel = f.backends.filter((b) => b.selectable).map((b) => `${b.addr}:${b.port}`);
  if (sel.length <= MAX_LISTED_BACKENDS) return sel.join(',');
  return `${sel.slice(0, MAX_LISTED_BACKENDS).join(',')},+${sel.length - MAX_LISTED_BACKENDS} more`;
}

function policy(f: Frontend__Output): string {
  const parts = [f.maglev ? 'maglev' : 'random'];
  if (f.localOnly) parts.push('local');
  if (f.affinityTimeoutSec) parts.push(`affinity=${f.affinityTimeoutSec}s`);
  if (f.sourceRanges.length) parts.push(`ranges=${f.sourceRanges.length}`);
  return parts.join(',');
}

/** As `kubectl get svc` shows it: the LoadBalancer addresses, <pending> while none, <none> for other types. */
function externalIp(s: Service__Output): string {
  if (s.type !== 'LoadBalancer') return '<none>';
  const ips = [...new Set(s.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.addr))];
  return ips.length ? ips.join(',') : '<pending>';
}

export function formatServices(services: Service__Output[]): string {
  if (!services.length) return 'No Services.';
  const rows: unknown[][] = [];
  for (const s of services) {
    const ext = externalIp(s);
    for (const f of s.frontends) {
      const selectable = f.backends.filter((b) => b.selectable).length;
      const local = f.backends.filter((b) => b.local && b.selectable).length;
      rows.push([s.key, f.type, ext, frontendAddr(f), f.proto, f.scope, `${selectable}/${f.backends.length}`, local, policy(f), backendList(f)]);
    }
    if (!s.frontends.length) rows.push([s.key, s.type, ext, '', '', '', '0/0', 0, '', '']);
  }
  const out = [table(['SERVICE', 'TYPE', 'EXTERNAL-IP', 'FRONTEND', 'PROTO', 'SCOPE', { header: 'BACKENDS', right: true },
    { header: 'LOCAL', right: true }, 'POLICY', 'ENDPOINTS'], rows)];
  const notes: string[] = [];
  for (const s of services) {
    if (s.healthCheckNodePort) notes.push(`${s.key}: healthCheckNodePort ${s.healthCheckNodePort}, ${s.localReadyEndpoints} local ready endpoint(s)`);
  }
  for (const s of services) for (const w of s.warnings) notes.push(`warning: ${s.key}: ${w}`);
  if (notes.length) out.push('', ...notes);
  return out.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { common, positionals } = parseFlags(argv);
    if (common.help) { console.log(HELP); return 0; }
    noPositionals('services', positionals);
    return withAgent(common.socket, async (client) => {
      const res = await call(client, 'ListServices', {}, common.socket);
      console.log(render(res.services, common.output, () => formatServices(res.services)));
      return 0;
    });
  });
}
