// `xlb services`: the Services as the agent wants them programmed (desired state), one row
// per frontend, so ClusterIP, NodePort and LoadBalancer addresses of a Service line up.
import type { Frontend__Output } from '../api/generated/xlb/v1/Frontend.js';
import type { Service__Output } from '../api/generated/xlb/v1/Service.js';
import { CliError, COMMON_HELP, FILTER_FLAGS, FILTER_HELP, pages, parseFlags, runCli, serviceFilter, withAgent } from './client.js';
import { ListWriter, PagedTable } from './output.js';
import { frontendText, hostPort } from '../model/ip.js';

export const summary = 'list Services as xlb programs them (desired state)';

const HELP = [
  'usage: xlb services [NAMESPACE/NAME | NAME] [flags]', '', summary,
  'The agent filters and pages; rows print as pages arrive.', '', 'flags:', ...FILTER_HELP, ...COMMON_HELP,
].join('\n');
const MAX_LISTED_BACKENDS = 3;

function frontendAddr(f: Frontend__Output): string {
  return frontendText(f.addr || null, f.port, f.ipFamily === 'IPv6' ? 6 : 4);
}

function backendList(f: Frontend__Output): string {
  const sel = f.backends.filter((b) => b.selectable).map((b) => hostPort(b.addr, b.port));
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

const COLUMNS = ['SERVICE', 'TYPE', 'EXTERNAL-IP', 'FRONTEND', 'FAMILY', 'PROTO', 'SCOPE', { header: 'BACKENDS', right: true },
  { header: 'LOCAL', right: true }, 'POLICY', 'ENDPOINTS'];

function serviceRows(s: Service__Output): unknown[][] {
  const ext = externalIp(s);
  const rows = s.frontends.map((f) => {
    const selectable = f.backends.filter((b) => b.selectable).length;
    const local = f.backends.filter((b) => b.local && b.selectable).length;
    return [s.key, f.type, ext, frontendAddr(f), f.ipFamily || 'IPv4', f.proto, f.scope, `${selectable}/${f.backends.length}`, local, policy(f), backendList(f)];
  });
  return rows.length ? rows : [[s.key, s.type, ext, '', '', '', '', '0/0', 0, '', '']];
}

/** The table of Services page by page, then the health-check and warning notes. */
class ServicesTable {
  private readonly t = new PagedTable(COLUMNS);
  private readonly hc: string[] = [];
  private readonly warnings: string[] = [];
  private readonly announced = new Map<string, string>();
  private count = 0;

  page(services: Service__Output[]): string | undefined {
    if (!services.length) return undefined;
    this.count += services.length;
    for (const s of services) {
      if (s.healthCheckNodePort) this.hc.push(`${s.key}: healthCheckNodePort ${s.healthCheckNodePort}, ${s.localReadyEndpoints} local ready endpoint(s)`);
      for (const w of s.warnings) this.warnings.push(`warning: ${s.key}: ${w}`);
      for (const f of s.frontends) if (f.type === 'LoadBalancer' && f.addr) this.announced.set(f.addr, f.announcer);
    }
    return this.t.page(services.flatMap(serviceRows));
  }

  end(): string {
    if (!this.count) return 'No Services.';
    const ann = [...this.announced].map(([addr, node]) => `${addr}: announced (ARP) by ${node || 'another node (unknown to this one)'}`);
    const notes = [...this.hc, ...ann, ...this.warnings];
    return notes.length ? ['', ...notes].join('\n') : '';
  }
}

export function formatServices(services: Service__Output[]): string {
  const t = new ServicesTable();
  return [t.page(services), t.end()].filter((x) => x).join('\n');
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { common, values, positionals } = parseFlags(argv, FILTER_FLAGS);
    if (common.help) { console.log(HELP); return 0; }
    const filter = serviceFilter('services', values, positionals);
    return withAgent(common, async (client) => {
      const out = (s: string): void => { process.stdout.write(s); };
      const t = new ServicesTable();
      const list = common.output === 'table' ? undefined : new ListWriter(common.output, out);
      let total = 0;
      for await (const p of pages(client, 'ListServices', { filter }, common.where)) {
        total = p.total;
        if (list) list.items(p.services);
        else { const text = t.page(p.services); if (text) out(`${text}\n`); }
      }
      if (filter.name && total === 0) {
        throw new CliError(`no Service ${filter.namespace ? `${filter.namespace}/` : ''}${filter.name}${filter.type ? ` of type ${filter.type}` : ''}`);
      }
      if (list) list.end();
      else { const end = t.end(); if (end) out(`${end}\n`); }
      return 0;
    });
  });
}
