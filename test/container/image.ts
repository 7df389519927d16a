// The image for the container suite, built for real with podman (issue 20). No registry is
// reachable from the test machines, so the base the Containerfile names (node:20-bookworm*)
// cannot be pulled; instead a base is made from Debian packages: debootstrap of the same
// release, with this machine's Node (the version the project builds against) copied under
// /usr/local as the official node images have it, and passed as BUILD_BASE and BASE.
// Builds use the host's network namespace (--network=host: apt and npm reach their mirrors and
// podman creates no bridge in the root namespace).
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run } from '../helpers/netns.js';

export const ROOT = new URL('../../../', import.meta.url).pathname;
export const CONTAINERFILE = join(ROOT, 'deploy', 'Containerfile');
export const IMAGE = 'localhost/xlb:container-test';

/** A build argument's default in deploy/Containerfile (`ARG NAME=value`). */
export function containerfileArg(name: string): string {
  const m = new RegExp(`^ARG ${name}=(\\S+)$`, 'm').exec(readFileSync(CONTAINERFILE, 'utf8'));
  if (!m) throw new Error(`deploy/Containerfile has no ARG ${name}=...`);
  return m[1]!;
}

/** Release and Node major of the default base, e.g. node:20-bookworm-slim -> bookworm, 20. */
export function defaultBase(): { release: string; nodeMajor: number } {
  const m = /^node:(\d+)-([a-z]+)/.exec(containerfileArg('BASE'));
  if (!m) throw new Error(`BASE ${containerfileArg('BASE')} is not node:<major>-<release>`);
  return { nodeMajor: Number(m[1]), release: m[2]! };
}

/** Is a container engine there (or can setup install it)? null when yes, else why not. */
export async function engineMissing(): Promise<string | null> {
  for (const tool of ['podman', 'debootstrap']) {
    const ok = await run('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);
    if (!ok) return `${tool} is not installed (deploy/setup.sh installs it from Debian; run it as root)`;
  }
  return null;
}

export async function podman(args: string[], timeoutMs = 60_000): Promise<string> {
  return (await run('podman', args, { timeoutMs })).stdout;
}

async function imageExists(name: string): Promise<boolean> {
  return run('podman', ['image', 'exists', name]).then(() => true, () => false);
}

/** Directories under /usr that debian:*-slim images leave out (debuerreotype --slimify). */
const SLIM_EXCLUDES = ['/usr/share/doc/*', '/usr/share/info/*', '/usr/share/man/*', '/usr/share/locale/*',
  '/usr/share/groff/*', '/usr/share/linda/*', '/usr/share/lintian/*'];

/**
 * The base image: `localhost/xlb-base:<release>-node<version>`, built once and then reused
 * (cached by name; the name changes with this machine's Node version).
 */
export async function ensureBase(log: (s: string) => void = () => undefined): Promise<string> {
  const { release, nodeMajor } = defaultBase();
  const version = process.version.slice(1);
  if (Number(version.split('.')[0]) !== nodeMajor) {
    throw new Error(`the default base has Node ${nodeMajor}, this machine runs Node ${version}: the test base copies this machine's Node`);
  }
  const name = `localhost/xlb-base:${release}-node${version}`;
  if (await imageExists(name)) return name;
  const t0 = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'xlb-base-'));
  const root = join(work, 'rootfs');
  try {
    mkdirSync(join(root, 'etc/dpkg/dpkg.cfg.d'), { recursive: true });
    writeFileSync(join(root, 'etc/dpkg/dpkg.cfg.d/slim'), SLIM_EXCLUDES.map((p) => `path-exclude ${p}\n`).join(''));
    const mirror = process.env.XLB_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
    log(`debootstrap ${release} from ${mirror}`);
    await run('debootstrap', ['--variant=minbase', release, root, mirror], { timeoutMs: 15 * 60_000 });
    await run('sh', ['-c', `cd ${root} && rm -rf ${SLIM_EXCLUDES.map((p) => `.${p}`).join(' ')} var/cache/apt/archives/*.deb var/lib/apt/lists/*`]);
    // Node as the official images install it: /usr/local/{bin,include,lib/node_modules}.
    const prefix = dirname(dirname(realpathSync(process.execPath)));
    const local = join(root, 'usr/local');
    cpSync(realpathSync(process.execPath), join(local, 'bin/node'));
    cpSync(join(prefix, 'include/node'), join(local, 'include/node'), { recursive: true });
    cpSync(join(prefix, 'lib/node_modules/npm'), join(local, 'lib/node_modules/npm'), { recursive: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin/npx'));
    log(`importing ${name}`);
    await run('sh', ['-c', `tar -C ${root} --numeric-owner -c . | podman import --change 'CMD ["node"]' `
      + `--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - ${name}`], { timeoutMs: 5 * 60_000 });
    log(`base ${name} built in ${Math.round((Date.now() - t0) / 1000)} s`);
    return name;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Build deploy/Containerfile on the local base (layers cached between runs). */
export async function buildImage(base: string, log: (s: string) => void = () => undefined): Promise<string> {
  const t0 = Date.now();
  await run('podman', ['build', '--network=host', '--build-arg', `BUILD_BASE=${base}`, '--build-arg', `BASE=${base}`,
    '-f', CONTAINERFILE, '-t', IMAGE, ROOT], { timeoutMs: 20 * 60_000 });
  log(`image ${IMAGE} built in ${Math.round((Date.now() - t0) / 1000)} s`);
  return IMAGE;
}

/** The image's size in bytes, as the engine reports it. */
export async function imageSize(name: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', name])).trim());
}
