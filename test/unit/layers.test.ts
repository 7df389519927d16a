// Layers point one way (DESIGN.md §1): cli -> agent -> api | sources | datapath -> model.
// Reads the import statements of every TypeScript file under src/ (static, re-exports and
// dynamic imports) and fails on any that reaches a layer above its own or a sibling layer,
// and on a dynamic import whose specifier is not a literal (an edge no reader or tsc sees).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src');

/** Rank per top folder of src/; files at src/ itself (log.ts, native.d.ts) serve every layer. */
const RANK: Record<string, number> = { cli: 3, agent: 2, api: 1, sources: 1, datapath: 1, model: 0, '.': 0 };

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function layerOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? '.' : rel[0];
}

/** Relative specifiers this file imports, re-exports or loads dynamically. */
export function importsOf(text: string): { specs: string[]; opaque: number } {
  const specs: string[] = [];
  const statement = /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(statement)) specs.push(m[1] ?? m[2]);
  for (const m of text.matchAll(/\bimport\(\s*(['"])([^'"]+)\1\s*\)/g)) specs.push(m[2]);
  const opaque = [...text.matchAll(/\bimport\(\s*(?!['"])/g)].length;
  return { specs: specs.filter((s) => s.startsWith('.')), opaque };
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of tsFiles(SRC)) {
    const from = layerOf(file);
    const { specs, opaque } = importsOf(readFileSync(file, 'utf8'));
    const name = relative(SRC, file);
    if (opaque) out.push(`${name}: dynamic import with a non-literal specifier`);
    for (const s of specs) {
      const to = layerOf(resolve(dirname(file), s));
      if (to === from || !(to in RANK)) continue;
      if (RANK[to] > RANK[from]) out.push(`${name} imports ${s} (${to} is above ${from})`);
      else if (RANK[to] === RANK[from] && to !== '.') out.push(`${name} imports ${s} (${to} is a sibling of ${from})`);
    }
  }
  return out;
}

test('the import reader sees static, re-exported, side-effect and dynamic imports', () => {
  const r = importsOf([
    "import type { A } from '../cli/options.js';",
    "import {\n  B,\n  C,\n} from '../agent/run.js';",
    "export { D } from './d.js';",
    "import './side.js';",
    "const m = await import('../agent/x.js');",
    "const n = await import(spec);",
    "import { readFileSync } from 'node:fs';",
  ].join('\n'));
  assert.deepEqual(r.specs.sort(), ['../agent/run.js', '../agent/x.js', '../cli/options.js', './d.js', './side.js']);
  assert.equal(r.opaque, 1);
});

test('every folder of src/ has a layer', () => {
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  assert.deepEqual(folders.filter((f) => !(f in RANK)), []);
});

test('no file under src/ imports a layer above its own or a sibling layer', () => {
  assert.deepEqual(violations(), []);
});
