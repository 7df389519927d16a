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
  return new PagedTable(columns).page(rows);
}

/**
 * A table printed as its pages arrive: the header and the column widths come from the first
 * page; a wider cell on a later page shifts only its own row.
 */
export class PagedTable {
  private readonly cols: Column[];
  private widths: number[] | undefined;

  constructor(columns: (Column | string)[]) {
    this.cols = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  }

  /** The lines of one page, the header line before the first. */
  page(rows: unknown[][]): string {
    const cells = rows.map((r) => this.cols.map((_, i) => cellText(r[i])));
    const first = !this.widths;
    // A loop, not Math.max(...): a spread of 100,000 cells overflows the call stack.
    this.widths ??= this.cols.map((c, i) => cells.reduce((w, r) => Math.max(w, r[i]!.length), c.header.length));
    const w = this.widths;
    const line = (r: string[]): string =>
      r.map((s, i) => (this.cols[i]!.right ? s.padStart(w[i]!) : s.padEnd(w[i]!))).join('  ').trimEnd();
    return [...(first ? [line(this.cols.map((c) => c.header))] : []), ...cells.map(line)].join('\n');
  }
}

/** A JSON or YAML list printed item by item, so a long listing is never held whole. */
export class ListWriter {
  private count = 0;

  constructor(private readonly mode: 'json' | 'yaml', private readonly write: (s: string) => void) {}

  items(items: unknown[]): void {
    for (const it of items) {
      if (this.mode === 'json') {
        this.write(`${this.count ? ',\n' : '[\n'}${JSON.stringify(it, null, 2).replace(/^/gm, '  ')}`);
      } else {
        this.write(`${YAML.stringify([it]).trimEnd()}\n`);
      }
      this.count++;
    }
  }

  end(): void {
    if (this.mode === 'json') this.write(this.count ? '\n]\n' : '[]\n');
    else if (!this.count) this.write('[]\n');
  }
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
