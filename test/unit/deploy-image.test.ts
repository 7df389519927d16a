// deploy/Containerfile cannot be built on a machine without a container engine, so its
// promises are checked here: it builds with the README's own command, from Debian packages
// and npm only, and the runtime stage carries what the agent loads and no compiler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DEPLOY, ROOT } from './deploy-manifests.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../src/agent/node-flags.js';

interface Instr {
  op: string;
  args: string;
}

/** Build arguments declared before the first FROM (name -> default). */
const globalArgs = new Map<string, string>();

/** Instructions per stage, continuation lines joined and comments dropped. */
function parseContainerfile(text: string): Instr[][] {
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages: Instr[][] = [];
  for (const line of logical) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `not an instruction: ${line}`);
    if (m[1] === 'ARG' && stages.length === 0) {
      const [k, v] = m[2]!.split('=');
      globalArgs.set(k!, v ?? '');
      continue;
    }
    if (m[1] === 'FROM') stages.push([]);
    assert.ok(stages.length > 0, `${m[1]} before FROM`);
    stages[stages.length - 1]!.push({ op: m[1]!, args: m[2]!.replace(/\s+/g, ' ') });
  }
  return stages;
}

/** Shell commands in the fenced sh/bash blocks of a Markdown file. */
function shellCommands(md: string): string[] {
  const out: string[] = [];
  for (const m of md.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    for (const line of m[1]!.split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (cmd && !cmd.startsWith('#')) out.push(cmd);
    }
  }
  return out;
}

function readmes(): string[] {
  return [join(ROOT, 'README.md')].filter((p) => existsSync(p));
}

function filesUnder(dir: string, re: RegExp): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p, re) : re.test(n) ? [p] : [];
  });
}

/** Does a COPY source glob (as the engine expands it: * within one path segment) cover path? */
function globCovers(glob: string, path: string): boolean {
  const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
  return re.test(path);
}

const stages = parseContainerfile(readFileSync(join(DEPLOY, 'Containerfile'), 'utf8'));
const [build, runtime] = stages as [Instr[], Instr[]];
const runs = (s: Instr[]) => s.filter((i) => i.op === 'RUN').map((i) => i.args);

test('two stages: a Debian bookworm Node build stage and a slim bookworm runtime, each base a build argument', () => {
  assert.equal(stages.length, 2);
  assert.equal(build[0]!.args, '${BUILD_BASE} AS build');
  assert.equal(runtime[0]!.args, '${BASE}');
  assert.deepEqual([...globalArgs], [['BUILD_BASE', 'node:20-bookworm'], ['BASE', 'node:20-bookworm-slim']]);
});

test("the build stage runs the README's build command, then drops dev dependencies", () => {
  const documented = new Set(readmes().flatMap((p) => shellCommands(readFileSync(p, 'utf8'))));
  const buildRuns = runs(build);
  const setupRuns = buildRuns.filter((r) => r.includes('deploy/setup.sh'));
  assert.ok(setupRuns.length >= 1, 'the build goes through deploy/setup.sh');
  for (const r of setupRuns) assert.ok(documented.has(r), `'${r}' must be a command the README documents`);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(setupRuns.includes(pkg.scripts.setup!), `npm run setup (${pkg.scripts.setup}) is the same command`);
  assert.ok(buildRuns.indexOf('npm prune --omit=dev') > buildRuns.lastIndexOf(setupRuns.at(-1)!), 'dev dependencies dropped after the build');
  assert.match(buildRuns.at(-1)!, /^find node_modules .* -delete$/, 'then what no runtime loads (declarations, source maps)');
  // Building any other way would let the image drift from what developers and CI build.
  for (const r of buildRuns) {
    assert.doesNotMatch(r, /\b(make|node-gyp|tsc|npm (ci|install)|clang)\b/, `'${r}' builds outside setup.sh`);
    assert.doesNotMatch(r, /\b(curl|wget|git)\b/, `'${r}' fetches something other than Debian packages and npm`);
  }
});

test('the build stage copies every input setup.sh builds from', () => {
  const copied = build.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(' ').slice(0, -1));
  const needed = ['package.json', 'package-lock.json', 'tsconfig.json', 'binding.gyp', 'deploy/setup.sh', 'bpf/Makefile'];
  const gyp = JSON.parse(readFileSync(join(ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')) as { targets: Array<{ sources: string[] }> };
  needed.push(...gyp.targets.flatMap((t) => t.sources));
  needed.push(...filesUnder(join(ROOT, 'src'), /\.ts$/).map((p) => relative(ROOT, p)));
  for (const f of needed) assert.ok(copied.some((c) => globCovers(c, f)), `${f} must reach the build stage`);
});

test('the runtime stage: libelf1, zlib1g, iproute2, the built artifacts, no compiler, root', () => {
  const apt = runs(runtime).join(' && ');
  const installs = /apt-get install -y --no-install-recommends ([^&]+)/.exec(apt);
  assert.ok(installs, 'one apt-get install');
  assert.deepEqual(installs[1]!.trim().split(' ').sort(), ['iproute2', 'libelf1', 'zlib1g']);
  assert.match(apt, /rm -rf \/var\/lib\/apt\/lists/);
  const fromBuild = runtime.filter((i) => i.op === 'COPY').map((i) => {
    assert.match(i.args, /^--from=build /, `runtime COPY ${i.args} comes from the build stage`);
    return i.args.split(' ')[1]!.replace(/^\/src\//, '');
  });
  const objects = readdirSync(join(ROOT, 'bpf')).filter((f) => f.endsWith('.c')).map((f) => `build/bpf/${f.replace(/\.c$/, '.o')}`);
  assert.ok(objects.length > 0, 'bpf/ has programs');
  for (const artifact of ['package.json', 'node_modules', 'dist/src/cli/main.js', 'build/Release/xlb.node', ...objects]) {
    assert.ok(fromBuild.some((c) => globCovers(c, artifact)), `${artifact} must be in the image`);
  }
  // Files the agent reads at run time from the source tree (the gRPC API's .proto).
  for (const p of filesUnder(join(ROOT, 'src'), /\.proto$/).map((f) => relative(ROOT, f))) {
    assert.ok(fromBuild.some((c) => globCovers(c, p)), `${p} must be in the image`);
  }
  assert.ok(!fromBuild.some((c) => /^(src|bpf|native|test)(\/|$)/.test(c) && !c.endsWith('.proto')), 'no sources beyond what runs');
  for (const r of runs(runtime)) assert.doesNotMatch(r, /\b(gcc|g\+\+|clang|llvm|make|build-essential|libbpf-dev|python3)\b/);
  assert.deepEqual(runtime.filter((i) => i.op === 'USER').map((i) => i.args), ['root']);
  const entry = runtime.find((i) => i.op === 'ENTRYPOINT');
  const workdir = runtime.find((i) => i.op === 'WORKDIR')!.args;
  assert.deepEqual(JSON.parse(entry!.args), ['node', ...AGENT_NODE_FLAGS, `${workdir}/dist/src/cli/main.js`], 'the agent runs with AGENT_NODE_FLAGS');
  const env = runtime.filter((i) => i.op === 'ENV').map((i) => i.args);
  for (const [k, v] of Object.entries(AGENT_ENV)) assert.ok(env.includes(`${k}=${v}`), `the image sets ${k}=${v} (AGENT_ENV)`);
});

test('the xlb command (package.json bin) starts node with AGENT_ENV and AGENT_NODE_FLAGS', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const main = readFileSync(join(ROOT, pkg.bin.xlb!.replace(/^dist\//, '').replace(/\.js$/, '.ts')), 'utf8');
  const env = Object.entries(AGENT_ENV).map(([k, v]) => `${k}=${v} `).join('');
  assert.equal(main.split('\n')[0], `#!/usr/bin/env -S ${env}node ${AGENT_NODE_FLAGS.join(' ')}`);
});
