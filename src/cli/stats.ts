// `xlb stats [--watch]`: per-frontend packets, bytes and new flows, drops by reason, and
// conntrack fill. Watching adds per-second rates between samples.
import { setTimeout as sleep } from 'node:timers/promises';
import type { StatsInfo__Output } from '../api/generated/xlb/v1/StatsInfo.js';
import type { StatusClient } from '../api/generated/xlb/v1/Status.js';
import type { ServiceFilter } from '../api/generated/xlb/v1/ServiceFilter.js';
import { CliError, COMMON_HELP, FILTER_FLAGS, FILTER_HELP, pages, parseFlags, runCli, serviceFilter, withAgent } from './client.js';
import { humanBytes, percent, render, table, UsageError, type OutputMode } from './output.js';

export const summary = 'per-service packets, bytes, new flows; drops by reason';

const HELP = [
  'usage: xlb stats [NAMESPACE/NAME | NAME] [flags]', '', summary, '', 'flags:', ...FILTER_HELP, ...COMMON_HELP,
  '  -w, --watch       print again every interval until interrupted',
  '  --interval S      seconds between samples when watching (default 2)',
  '  --count N         stop after N samples (implies --watch)',
].join('\n');

interface Sample { at: number; stats: StatsInfo__Output }

function rate(cur: number, prev: number | undefined, dtSec: number): string {
  if (prev === undefined || dtSec <= 0) return '-';
  return (Math.max(0, cur - prev) / dtSec).toFixed(1);
}

export function formatStats(cur: Sample, prev?: Sample): string {
  const s = cur.stats;
  const dt = prev ? (cur.at - prev.at) / 1000 : 0;
  const before = new Map(prev?.stats.services.map((x) => [`${x.service}|${x.frontend}`, x]));
  const cols = ['SERVICE', 'FRONTEND', { header: 'PACKETS', right: true }, { header: 'BYTES', right: true }, { header: 'NEW FLOWS', right: true }];
  if (prev) cols.push({ header: 'PKT/S', right: true }, { header: 'FLOWS/S', right: true });
  const rows = s.services.map((x) => {
    const row: unknown[] = [x.service, x.frontend, x.packets, humanBytes(x.bytes), x.newFlows];
    const p = before.get(`${x.service}|${x.frontend}`);
    if (prev) row.push(rate(x.packets, p?.packets, dt), rate(x.newFlows, p?.newFlows, dt));
    return row;
  });
  const out = [s.services.length ? table(cols, rows) : 'No service counters.'];
  const drops = Object.entries(s.drops).sort(([a], [b]) => a.localeCompare(b));
  out.push('', drops.length ? table(['DROP REASON', { header: 'PACKETS', right: true }], drops) : 'No drops.');
  const ct = s.conntrack;
  if (ct) out.push('', `Conntrack: ${ct.entries} / ${ct.max} entries (${percent(ct.entries, ct.max)})`);
  return out.join('\n');
}

function parseNumberFlag(name: string, v: unknown, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min} (got '${String(v)}')`);
  return n;
}

/** One sample: the pages joined (drops and conntrack come with the first). */
async function sample(client: StatusClient, socket: string, filter: ServiceFilter): Promise<Sample> {
  const at = Date.now();
  let stats: StatsInfo__Output | undefined;
  for await (const p of pages(client, 'GetStats', { filter }, socket)) {
    if (!stats) stats = p;
    else for (const row of p.services) stats.services.push(row);
  }
  if (!stats) throw new CliError('the agent sent no counters');
  return { at, stats };
}

function print(cur: Sample, prev: Sample | undefined, mode: OutputMode, watching: boolean): void {
  if (mode === 'json' && watching) { console.log(JSON.stringify({ time: new Date(cur.at).toISOString(), ...cur.stats })); return; }
  if (mode === 'yaml' && watching) { console.log(`---\n${render({ time: new Date(cur.at).toISOString(), ...cur.stats }, 'yaml', () => '')}`); return; }
  const header = watching ? `${new Date(cur.at).toISOString()}\n` : '';
  console.log(render(cur.stats, mode, () => header + formatStats(cur, prev)) + (watching && mode === 'table' ? '\n' : ''));
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { common, values, positionals } = parseFlags(argv, {
      watch: { type: 'boolean', short: 'w' },
      interval: { type: 'string' },
      count: { type: 'string' },
      ...FILTER_FLAGS,
    });
    if (common.help) { console.log(HELP); return 0; }
    const filter = serviceFilter('stats', values, positionals);
    const intervalSec = parseNumberFlag('interval', values.interval, 0.1) ?? 2;
    const count = parseNumberFlag('count', values.count, 1);
    const watching = values.watch === true || count !== undefined;
    const total = watching ? (count ?? Infinity) : 1;
    return withAgent(common, async (client) => {
      const stop = new AbortController();
      const onInt = (): void => stop.abort();
      process.once('SIGINT', onInt);
      try {
        let prev: Sample | undefined;
        for (let i = 0; i < total && !stop.signal.aborted; i++) {
          if (i > 0) await sleep(intervalSec * 1000, undefined, { signal: stop.signal }).catch(() => undefined);
          if (stop.signal.aborted) break;
          const cur = await sample(client, common.where, filter);
          print(cur, prev, common.output, watching);
          prev = cur;
        }
        return 0;
      } finally {
        process.off('SIGINT', onInt);
      }
    });
  });
}
