// Output for the read-only commands: aligned tables for people, JSON/YAML for scripts.
import YAML from 'yaml';

export type OutputMode = 'table' | 'json' | 'yaml';

export const OUTPUT_MODES: readonly OutputMode[] = ['table', 'json', 'yaml'];

export function parseOutputMode(v: string | undefined): OutputMode {
  const m = (v ?? 'table') as OutputMode;
  if (!OUTPUT_MODES.includes(m)) throw new UsageError(`unknown output format '${v}' (use ${OUTPUT_MODES.join(', ')})`);
  return m;
}

/** A bad flag or argument: printed as one line, exit code 2. */
export class UsageError extends Error {}

export interface Column {
  header: string;
  /** right-align (numbers) */
  right?: boolean;
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table(columns: (Column | string)[], rows: unknown[][]): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const cells = rows.map((r) => cols.map((_, i) => cellText(r[i])));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    r.map((s, i) => (cols[i].right ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(cols.map((c) => c.header)), ...cells.map(line)].join('\n');
}

function cellText(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** "Label:  value" lines with the values aligned. */
export function fields(pairs: [string, unknown][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${cellText(v)}`).join('\n');
}

export function render(data: unknown, mode: OutputMode, asTable: () => string): string {
  if (mode === 'json') return JSON.stringify(data, null, 2);
  if (mode === 'yaml') return YAML.stringify(data).trimEnd();
  return asTable();
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function humanBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** "12s ago", "5m ago", "3h ago", "2d ago"; "never" for 0. */
export function ago(ms: number, now = Date.now()): string {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-';
}
