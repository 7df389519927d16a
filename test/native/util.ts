// Helpers shared by the native addon tests: object paths, per-CPU sums, a bpffs of the
// test's own, and running child.ts inside a namespace.
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type Netns, type NetnsSet } from '../helpers/netns.js';
import type { Step } from './child.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');

/** build/bpf/<name>.o, compiled by `make -C bpf`. */
export function objPath(name: string): string {
  return resolve(repoRoot, 'build/bpf', `${name}.o`);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

export function u64(n: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Sum of a per-CPU u64 value (one 8-byte slot per possible CPU). */
export function sumPercpu(v: Buffer | null): bigint {
  if (!v) return 0n;
  let s = 0n;
  for (let off = 0; off + 8 <= v.length; off += 8) s += v.readBigUInt64LE(off);
  return s;
}

/** A directory under /sys/fs/bpf for this test, removed by the returned cleanup. */
export function bpffsDir(tag: string): { path: string; cleanup: () => void } {
  const path = `/sys/fs/bpf/xlbt-${tag}-${process.pid}`;
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A bpffs instance of the test's own outside /sys: `ip netns exec` remounts /sys for the
 * namespace, hiding /sys/fs/bpf, while mounts elsewhere stay visible to the child.
 */
export async function privateBpffs(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = `/run/${prefix}-bpffs`;
  mkdirSync(path, { recursive: true });
  await run('mount', ['-t', 'bpf', 'bpf', path]);
  return {
    path,
    cleanup: async () => {
      await run('umount', ['-l', path]).catch(() => undefined);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

export interface StepResult { ok?: any; error?: { code: string; message: string; target: string } }

/** Run child.js steps inside ns (or in this namespace when ns is null). */
export async function runChild(ns: Netns | null, steps: Step[]): Promise<StepResult[]> {
  const script = resolve(here, 'child.js');
  const args = [script, JSON.stringify(steps)];
  const r = ns ? await ns.exec(process.execPath, args, { timeoutMs: 30_000 }) : await run(process.execPath, args, { timeoutMs: 30_000 });
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as StepResult);
}

/** Send `count` UDP datagrams from inside ns to addr:port (nothing listens: the peer answers ICMP). */
export async function sendUdp(ns: Netns, addr: string, count: number): Promise<void> {
  const code = `const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send(Buffer.from('xlb'),9,${JSON.stringify(addr)});if(++n>=${count}){clearInterval(t);setTimeout(()=>s.close(),50);}},5);`;
  await ns.exec(process.execPath, ['-e', code], { timeoutMs: 15_000 });
}

/** Namespaces a and b joined by a veth (va in a, vb in b), each end up with its /24 address. */
export async function vethPair(set: NetnsSet, aAddr: string, bAddr: string): Promise<{ a: Netns; b: Netns }> {
  const a = await set.add('a');
  const b = await set.add('b');
  await set.veth(a, 'va', b, 'vb');
  await a.ip('addr', 'add', `${aAddr}/24`, 'dev', 'va');
  await b.ip('addr', 'add', `${bAddr}/24`, 'dev', 'vb');
  await a.ip('link', 'set', 'va', 'up');
  await b.ip('link', 'set', 'vb', 'up');
  return { a, b };
}
