// `xlb status`: is xlb on, what is attached where, how full the maps are, kernel checks.
import type { StatusInfo__Output } from '../api/generated/xlb/v1/StatusInfo.js';
import { call, COMMON_HELP, noPositionals, parseFlags, runCli, withAgent } from './client.js';
import { ago, fields, percent, render, table } from './output.js';
import { FAMILY_NAME, ipFamily, type Family } from '../model/ip.js';

export const summary = "show this node's xlb status";

/** The kernel check that says whether switching on leaves kube-proxy's connections alone. */
const NFCT_CHECK = 'netfilter conntrack lookup';

const HELP = ['usage: xlb status [flags]', '', summary, '', 'flags:', ...COMMON_HELP].join('\n');

export function formatStatus(s: StatusInfo__Output, now = Date.now()): string {
  const checks = s.kernel?.checks ?? [];
  const failed = checks.filter((c) => !c.ok).length;
  const src = s.source;
  const out = [
    fields([
      ['Node', s.node],
      ['Enabled', `${s.enabled ? 'yes' : 'no'} (${s.enabledReason})${s.drain ? `, draining: ${s.drain.flows} flows, ${s.drain.secondsLeft} s left` : ''}`],
      ['Netfilter conntrack lookup', checks.find((c) => c.name === NFCT_CHECK)?.detail ?? '-'],
      ['Source', src ? `${src.kind}, ${src.synced ? 'synced' : 'not synced'}, connection ${src.connection || '-'}` : '-'],
      ['Pin path', s.pinPath],
      ['Last sync', s.lastSyncMs ? `${new Date(s.lastSyncMs).toISOString()} (${ago(s.lastSyncMs, now)})` : 'never'],
      ['Pending changes', s.pendingChanges],
      ['Kernel', `${s.kernel?.release ?? '-'} (${checks.length - failed}/${checks.length} checks ok)`],
      ['IPv4 addresses', familyAddresses(s, 4)],
      ['IPv6 addresses', familyAddresses(s, 6)],
      ['SNAT ports', snatPorts(s.snatPorts)],
      ...(s.progress ? [['Starting', `${s.progress.stage} ${s.progress.done.toLocaleString('en-US')} / ${s.progress.total.toLocaleString('en-US')}`] as [string, unknown]] : []),
    ]),
  ];
  out.push(
    '',
    s.devices.length
      ? table(['DEVICE', { header: 'IFINDEX', right: true }, 'MODE', { header: 'PROG', right: true }, { header: 'LINK', right: true }],
        s.devices.map((d) => [d.name, d.ifindex, d.xdpMode, d.progId, d.linkId]))
      : 'No devices attached.',
  );
  out.push(
    '',
    s.podInterfaces.length
      ? table(['POD INTERFACE', 'PROGS'], s.podInterfaces.map((p) => [p.name, p.progIds.join(',')]))
      : 'No pod interfaces attached.',
  );
  const mine = s.lbAddresses.filter((a) => a.announcing);
  const ann = s.announce;
  out.push('', mine.length
    ? table(['ANNOUNCED ADDRESS', 'DEVICE', 'SINCE', 'SERVICES', 'WHY'], mine.map((a) => [a.addr, a.device, a.sinceMs ? ago(a.sinceMs, now) : '-', a.services.join(','), a.why]))
    : `No LoadBalancer address announced by this node${s.lbAddresses.length ? ` (of ${s.lbAddresses.length}: ${[...new Set(s.lbAddresses.map((a) => a.why))].join('; ')})` : ''}.`);
  if (ann) out.push(`ARP replies ${ann.arpReplies}, unanswered (expired) ${ann.arpExpired}, NDP replies ${ann.ndpReplies}, unanswered (expired) ${ann.ndpExpired}, takeovers ${ann.takeovers}${ann.garpErrors ? `, gratuitous ARP failures ${ann.garpErrors}` : ''}`);
  if (s.mapFill.length) {
    out.push('', table(['MAP', { header: 'ENTRIES', right: true }, { header: 'MAX', right: true }, { header: 'FILL', right: true }],
      s.mapFill.map((m) => [m.name, m.entries, m.maxEntries, percent(m.entries, m.maxEntries)])));
  }
  if (checks.length) {
    out.push('', table(['CHECK (KERNEL, FEATURES)', 'OK', 'DETAIL'], checks.map((c) => [c.name, c.ok, c.detail])));
  }
  return out.join('\n');
}

/** The node's addresses of one family and its SNAT address; none is said, not left out. */
function familyAddresses(s: StatusInfo__Output, family: Family): string {
  const addrs = (s.nodeAddresses ?? []).filter((a) => ipFamily(a) === family);
  if (!addrs.length) return `none (no ${FAMILY_NAME[family]} NodePort, no ${FAMILY_NAME[family]} SNAT)`;
  const snat = (s.snatAddresses ?? []).find((a) => ipFamily(a) === family);
  return `${addrs.join(', ')}${snat ? ` (SNAT ${snat})` : ''}`;
}

function snatPorts(p: StatusInfo__Output['snatPorts']): string {
  if (!p || !p.last) return '-';
  const avail = p.last - p.first + 1 - p.skipped;
  return `${p.used} of ${avail} in use (${percent(p.used, avail)}; range ${p.first}-${p.last}, ${p.skipped} used by the node left out)`;
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { common, positionals } = parseFlags(argv);
    if (common.help) { console.log(HELP); return 0; }
    noPositionals('status', positionals);
    return withAgent(common, async (client) => {
      const s = await call(client, 'GetStatus', {}, common.where);
      console.log(render(s, common.output, () => formatStatus(s)));
      return 0;
    });
  });
}
