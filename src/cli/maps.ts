// `xlb maps [NAME...]`: the kernel's actual state, every pinned map decoded. Key and value
// fields become columns, so one map reads like one table.
import type { DecodedMap__Output } from '../api/generated/xlb/v1/DecodedMap.js';
import { COMMON_HELP, parseFlags, runCli, stream, withAgent } from './client.js';
import { render, table } from './output.js';

export const summary = 'decode the kernel maps (actual state)';

const HELP = ['usage: xlb maps [MAP...] [flags]', '', summary, 'With MAP names, only those maps.', '', 'flags:', ...COMMON_HELP].join('\n');

export interface PlainMap {
  name: string;
  type: string;
  maxEntries: number;
  entries: { key: Record<string, unknown>; value: Record<string, unknown> }[];
}

export function toPlain(m: DecodedMap__Output): PlainMap {
  return {
    name: m.name,
    type: m.type,
    maxEntries: m.maxEntries,
    entries: m.entries.map((e) => ({ key: parseObject(e.keyJson), value: parseObject(e.valueJson) })),
  };
}

function parseObject(json: string): Record<string, unknown> {
  const v: unknown = json ? JSON.parse(json) : {};
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
}

function columnsOf(objs: Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  for (const o of objs) for (const k of Object.keys(o)) seen.add(k);
  return [...seen];
}

export function formatMap(m: PlainMap): string {
  const head = `${m.name} (${m.type}, ${m.entries.length}/${m.maxEntries} entries)`;
  if (!m.entries.length) return `${head}\n  (empty)`;
  const kc = columnsOf(m.entries.map((e) => e.key));
  const vc = columnsOf(m.entries.map((e) => e.value));
  // Prefix a value column whose name a key column already uses, so both stay visible.
  const headers = [...kc.map((c) => c.toUpperCase()), ...vc.map((c) => (kc.includes(c) ? `VALUE.${c}` : c).toUpperCase())];
  const rows = m.entries.map((e) => [...kc.map((c) => e.key[c]), ...vc.map((c) => e.value[c])]);
  const numeric = headers.map((_, i) => rows.every((r) => typeof r[i] === 'number'));
  return `${head}\n${table(headers.map((h, i) => ({ header: h, right: numeric[i] })), rows)}`;
}

export async function run(argv: string[]): Promise<number> {
  return runCli(async () => {
    const { common, positionals } = parseFlags(argv);
    if (common.help) { console.log(HELP); return 0; }
    return withAgent(common, async (client) => {
      // Maps arrive in chunks (thousands of conntrack entries): a table is printed as soon as
      // its map is complete; json and yaml need the whole list.
      const maps: PlainMap[] = [];
      const table = common.output === 'table';
      let printed = 0;
      const print = (m: PlainMap | undefined): void => {
        if (table && m) console.log(`${printed++ ? '\n' : ''}${formatMap(m)}`);
      };
      await stream<DecodedMap__Output>(client, 'StreamMaps', { names: positionals }, common.where, (chunk) => {
        const last = maps[maps.length - 1];
        const m = toPlain(chunk);
        if (last?.name === m.name) {
          for (const e of m.entries) last.entries.push(e);
          return;
        }
        maps.push(m);
        print(maps.length > 1 ? last : undefined);
      });
      if (table) {
        if (maps.length) print(maps[maps.length - 1]); else console.log('No maps.');
      } else {
        console.log(render(maps, common.output, () => ''));
      }
      return 0;
    });
  });
}
