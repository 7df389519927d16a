// Parsing one manifest file without letting it hurt the agent. The YAML parser's memory grows
// with nesting and with the number of nodes, up to hundreds of times the file's size (10 MB
// of '[' took a 4 GB heap), and a big file holds the thread for seconds. So nesting is
// measured by a linear scan before anything is parsed, and files above a few KB are parsed in
// a worker thread with its own heap limit: a file that needs more fails alone, the agent's
// thread keeps answering /healthz and the API.
import { Worker } from 'node:worker_threads';
import jsyaml from 'js-yaml';
import { parseAllDocuments } from 'yaml';

/** One YAML document: its value, or the first error. */
export type ParsedDoc = { value: unknown } | { error: string };
/** Every document of a file, or why the file as a whole was skipped. */
export type ParseResult = { docs: ParsedDoc[] } | { skipped: string };

/** Defaults of --manifest-max-bytes and --manifest-max-depth (a Service nests about 10 deep). */
export const MANIFEST_MAX_BYTES = 64 << 20;
export const MANIFEST_MAX_DEPTH = 64;
/** Files up to this size are parsed in the agent's thread: worst case tens of ms. */
export const INLINE_BYTES = 32 * 1024;

/**
 * Nesting depth of YAML/JSON text as the parser would build it: block indentation levels and
 * `- ` entries, plus open flow collections ([ and {) outside quotes, comments and block
 * scalars. Linear in the text; stops counting once the depth passes `limit`.
 */
export function nestingDepth(text: string, limit = Infinity): number {
  const n = text.length;
  const indents: number[] = [];
  let max = 0;
  let flow = 0;
  let base = 0; // block depth of the line that holds the current flow collection
  let blockScalarAt = -1; // indent of the line that opened a | or > scalar
  let i = 0;
  while (i < n && max <= limit) {
    let col = 0;
    while (i < n && text[i] === ' ') { i++; col++; }
    if (i >= n) break;
    const first = text[i];
    if (blockScalarAt >= 0 && (col > blockScalarAt || first === '\n' || first === '\r')) {
      i = lineEnd(text, i);
      continue;
    }
    blockScalarAt = -1;
    if (first === '\n' || first === '\r' || first === '#') {
      i = lineEnd(text, i);
      continue;
    }
    if (flow === 0) {
      while (indents.length && indents[indents.length - 1]! >= col) indents.pop();
      indents.push(col);
      let entries = 0;
      while (text[i] === '-' && (i + 1 >= n || text[i + 1] === ' ' || text[i + 1] === '\n')) {
        entries++;
        i++;
        while (text[i] === ' ') i++;
      }
      // A line that opens a flow collection is that collection's level, not a key's.
      base = indents.length + entries - (text[i] === '[' || text[i] === '{' ? 1 : 0);
      max = Math.max(max, base);
    }
    let prev = '\n'; // last significant character; '\n' = start of the line
    let spaced = true;
    for (; i < n && text[i] !== '\n'; i++) {
      const c = text[i]!;
      if (c === ' ' || c === '\t' || c === '\r') { spaced = true; continue; }
      // Where a value may begin: line start, after '[', '{', ',', after ': ', '- ', '? ' (':' alone in a flow, JSON style).
      const valueStart = prev === '\n' || prev === '[' || prev === '{' || prev === ',' ||
        (prev === ':' && (spaced || flow > 0)) || (spaced && (prev === '-' || prev === '?'));
      if (c === '#' && spaced) { i = lineEnd(text, i) - 1; break; }
      let plain = false; // a character inside a plain scalar, e.g. the '[' of x[1]
      if (valueStart && (c === '"' || c === "'")) {
        i = quoteEnd(text, i);
      } else if (valueStart && (c === '[' || c === '{')) {
        flow++;
        max = Math.max(max, base + flow);
        if (max > limit) return max;
      } else if (c === '[' || c === '{') {
        plain = true;
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--;
      } else if (flow === 0 && valueStart && (c === '|' || c === '>')) {
        blockScalarAt = col;
      }
      prev = plain ? 'x' : c;
      spaced = false;
    }
    i++;
  }
  return max;
}

function lineEnd(text: string, i: number): number {
  const e = text.indexOf('\n', i);
  return e < 0 ? text.length : e + 1;
}

/** Index of the closing quote of the string opening at `i` ('' and \" escapes; may span lines). */
function quoteEnd(text: string, i: number): number {
  const q = text[i];
  for (let j = i + 1; j < text.length; j++) {
    if (q === '"' && text[j] === '\\') { j++; continue; }
    if (text[j] === q) {
      if (q === "'" && text[j + 1] === "'") { j++; continue; }
      return j;
    }
  }
  return text.length - 1;
}

/** Depth check, then every document parsed (in the calling thread). */
export function parseManifest(text: string, maxDepth: number): ParseResult {
  const depth = nestingDepth(text, maxDepth);
  if (depth > maxDepth) return { skipped: `nested deeper than ${maxDepth} levels (--manifest-max-depth); skipped` };
  // One document at a time: the parser's tree of one Service, not of 10,000, at any moment.
  const out: ParsedDoc[] = [];
  for (const part of splitDocuments(text)) {
    const fast = plainDocument(part);
    if (fast !== NOT_PLAIN) {
      out.push({ value: fast });
      continue;
    }
    const docs = parseAllDocuments(part);
    for (const d of Array.isArray(docs) ? docs : [docs]) {
      out.push(d.errors.length > 0 ? { error: `invalid YAML: ${d.errors[0]!.message.split('\n')[0]}` } : { value: d.toJS() as unknown });
    }
  }
  return { docs: out };
}

// The fast path. The `yaml` package's Document API costs about ten times js-yaml's direct
// load on ordinary manifests (10,000 Services x 10 endpoints: ~17 s against ~1.9 s), so a
// document without the features where the two can differ (anchors, aliases, tags, merge keys,
// complex keys, tabs) is loaded by js-yaml, with plain scalars resolved by the `yaml`
// package's YAML 1.2 core rules below. Anything js-yaml rejects, several documents in one
// part included, goes through the `yaml` package, whose result and error messages stay the
// reference.
const NOT_PLAIN = Symbol('not plain');
const NEEDS_FULL_PARSER = /[&*!\t]|<<|\?\s/;

type Rule = [RegExp, (s: string) => unknown];
/** One type per tag (js-yaml keeps one per tag); the first rule whose pattern matches builds the value. */
const coreScalar = (tag: string, ...rules: Rule[]): jsyaml.Type => new jsyaml.Type(`tag:yaml.org,2002:${tag}`, {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && rules.some(([re]) => re.test(s)),
  construct: (s: string) => rules.find(([re]) => re.test(s))![1](s),
});
const CORE_SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({
  implicit: [
    coreScalar('null', [/^(?:~|[Nn]ull|NULL)?$/, () => null]),
    coreScalar('bool', [/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T']),
    coreScalar('int',
      [/^0o[0-7]+$/, (s) => parseInt(s.substring(2), 8)],
      [/^[-+]?[0-9]+$/, (s) => parseInt(s, 10)],
      [/^0x[0-9a-fA-F]+$/, (s) => parseInt(s.substring(2), 16)]),
    coreScalar('float',
      [/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/, (s) => (s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity)],
      [/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/, parseFloat],
      [/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/, parseFloat]),
  ],
});

function plainDocument(part: string): unknown {
  if (NEEDS_FULL_PARSER.test(part)) return NOT_PLAIN;
  try {
    return jsyaml.load(part, { schema: CORE_SCHEMA }) ?? null;
  } catch {
    return NOT_PLAIN;
  }
}

/**
 * A stream's documents as separate texts, split before each `---` marker at column 0 (YAML
 * forbids that line inside any scalar, so a split never cuts one). A stream with directives
 * (`%YAML`, `%TAG`) stays whole: they belong to the document after them.
 */
export function splitDocuments(text: string): string[] {
  if (/^%/m.test(text)) return [text];
  return text.split(/^(?=---(?:[ \t]|\r?$))/m).filter((p, i) => i > 0 || /^[ \t]*[^\s#]/m.test(p));
}

/** Heap a worker may use for a file: ordinary YAML needs about 35 times its size. */
export function workerHeapMb(bytes: number): number {
  return Math.min(4096, 64 + Math.ceil((64 * bytes) / (1 << 20)));
}

/** Files at least this large are parsed by two workers at once, half of the documents each. */
export const SPLIT_BYTES = 1 << 20;

/**
 * parseManifest in worker threads with a heap limit; aborting terminates them. A large file
 * is cut in two at a document marker and the halves parsed at once (a cold start of 10,000
 * Services waits for the parse): the documents, and their numbers, are those of one parse.
 */
export async function parseInWorker(text: string, maxDepth: number, signal?: AbortSignal): Promise<ParseResult> {
  const parts = text.length >= SPLIT_BYTES ? splitInTwo(text) : [text];
  const results = await Promise.all(parts.map((t) => parseOneInWorker(t, maxDepth, signal)));
  const skipped = results.find((r) => 'skipped' in r);
  return skipped ?? { docs: results.flatMap((r) => ('docs' in r ? r.docs : [])) };
}

/**
 * The text cut before the document marker nearest after its middle, where splitDocuments()
 * cuts too; whole when there is none, or with directives (they belong to the next document).
 */
export function splitInTwo(text: string): string[] {
  if (/^%/m.test(text)) return [text];
  const marker = /^---(?:[ \t]|\r?$)/gm;
  marker.lastIndex = text.length >> 1;
  const m = marker.exec(text);
  return m && m.index > 0 ? [text.slice(0, m.index), text.slice(m.index)] : [text];
}

function parseOneInWorker(text: string, maxDepth: number, signal?: AbortSignal): Promise<ParseResult> {
  const heapMb = workerHeapMb(Buffer.byteLength(text));
  return new Promise((resolve) => {
    const w = new Worker(new URL('./manifest-worker.js', import.meta.url), {
      workerData: { text, maxDepth },
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
    let result: ParseResult | undefined;
    const abort = (): void => { result ??= { skipped: 'agent stopping' }; void w.terminate(); };
    signal?.addEventListener('abort', abort, { once: true });
    w.once('message', (r: ParseResult) => { result = r; });
    w.once('error', (e: Error & { code?: string }) => {
      result ??= {
        skipped: e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `parsing needs more than ${heapMb} MB of memory; skipped` : `parser failed: ${e.message.split('\n')[0]}; skipped`,
      };
    });
    w.once('exit', () => {
      signal?.removeEventListener('abort', abort);
      resolve(result ?? { skipped: 'parser exited without a result; skipped' });
    });
  });
}
