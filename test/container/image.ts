// The image for the container suite, built for real with podman (issue 20). No registry is
// reachable from the test machines, so the base the Containerfile names (node:20-bookworm*)
// cannot be pulled; instead a base is made from Debian packages: debootstrap of the same
// release, with this machine's Node (the version the project builds against) copied under
// /usr/local as the official node images have it, and passed as BUILD_BASE and BASE.
// Builds use the host's network namespace (--network=host: apt and npm reach their mirrors and
// podman creates no bridge in the root namespace).
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
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
  for (const tool of ['podman', 'runc', 'debootstrap']) {
    const ok = await run('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false);
    if (!ok) return `${tool} is not installed (deploy/setup.sh installs it from Debian; run it as root)`;
  }
  return null;
}

/**
 * podman with runc: crun, podman's default runtime, refuses hosts with cgroup v1 and v2 both
 * mounted ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"), as
 * these test machines are.
 */
export const PODMAN = ['--runtime', 'runc'];

/**
 * Resource limits for `podman run`: podman's defaults raise them above this machine's (which
 * needs CAP_SYS_RESOURCE, which the test machines' root does not have), so runc fails with
 * "error setting rlimit type 7"; keep the host's open-files limit and a bounded process count.
 */
export function runLimits(): string[] {
  const m = /^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const files = m ? m[1] : '1024';
  return ['--ulimit', `nofile=${files}:${files}`, '--ulimit', 'nproc=4096:4096'];
}

export async function podman(args: string[], timeoutMs = 60_000): Promise<string> {
  return (await run('podman', [...PODMAN, ...args], { timeoutMs })).stdout;
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
    // debootstrap mounts /proc and /sys in the tree; a failed run can leave them: never
    // remove through a mount.
    if (unmountUnder(root)) rmSync(work, { recursive: true, force: true });
  }
}

/** Unmount everything mounted under `dir` (deepest first); true when nothing is left. */
function unmountUnder(dir: string): boolean {
  const under = () => readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`)).sort().reverse();
  for (const m of under()) spawnSync('umount', ['-l', m]);
  return under().length === 0;
}

/** Build deploy/Containerfile on the local base (layers cached between runs). */
export async function buildImage(base: string, log: (s: string) => void = () => undefined): Promise<string> {
  const t0 = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'xlb-build-'));
  try {
    await run('podman', [...PODMAN, 'build', '--force-rm', '--network=host', ...(await npmTrust(work)), '--build-arg', `BUILD_BASE=${base}`,
      '--build-arg', `BASE=${base}`, '-f', CONTAINERFILE, '-t', IMAGE, ROOT], { timeoutMs: 20 * 60_000 });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  log(`image ${IMAGE} built in ${Math.round((Date.now() - t0) / 1000)} s`);
  return IMAGE;
}

/**
 * The build machine's trust for npm, when it has one of its own (npm's `cafile`, e.g. a TLS
 * proxy's CA): mounted into the build's RUN steps only, as the global npmrc of the base's npm
 * (/usr/local/etc/npmrc), so nothing of it reaches a layer.
 */
async function npmTrust(work: string): Promise<string[]> {
  const cafile = (await run('npm', ['config', 'get', 'cafile'])).stdout.trim();
  if (!cafile || cafile === 'null' || cafile === 'undefined') return [];
  const rc = join(work, 'npmrc');
  writeFileSync(rc, `cafile=/run/xlb-build-ca.crt\n`);
  return ['-v', `${realpathSync(cafile)}:/run/xlb-build-ca.crt:ro`, '-v', `${rc}:/usr/local/etc/npmrc:ro`];
}

/** The image's size in bytes, as the engine reports it. */
export async function imageSize(name: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', name])).trim());
}
