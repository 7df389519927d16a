// cgroup sock_addr links: attached to a child cgroup this test creates (never the machine's
// root cgroup), pinned, opened from the pin, updated in place, detached; bad input is a clear
// error. What the programs do is covered end to end in test/e2e/socklb.test.ts (the kernel
// has no BPF_PROG_TEST_RUN for sock_addr programs: EOPNOTSUPP, asserted below).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { Link, loadObject, netnsCookie, type BpfObject } from '../../src/datapath/bpf.js';
import { SOCK_PROGS, PROG } from '../../src/datapath/codecs.js';
import { TestCgroup } from '../helpers/cgroup.js';
import { objPath, privateBpffs } from './util.js';

const prefix = `xlbt-ncg-${process.pid % 100000}`;
let cg: TestCgroup;
let fs: { path: string; cleanup: () => Promise<void> };
let a: BpfObject, b: BpfObject;

before(async () => {
  cg = await TestCgroup.create(prefix);
  fs = await privateBpffs(prefix);
  a = await loadObject(objPath('xlb'));
  b = await loadObject(objPath('xlb'));
});

after(async () => {
  a?.close();
  b?.close();
  await fs?.cleanup();
  await cg?.remove();
});

test('cgroup link: attach, pin, open from the pin, update in place, detach', () => {
  const link = Link.attachCgroup(a.program(SOCK_PROGS.connect4), cg.path, 'connect4');
  assert.equal(link.kind, 'cgroup-connect4');
  assert.equal(link.cgroupId, statSync(cg.path).ino, 'the cgroup id is the directory inode');
  const pin = `${fs.path}/sock-connect4`;
  link.pin(pin);
  link.close();
  const opened = Link.openPinned(pin);
  assert.equal(opened.kind, 'cgroup-connect4');
  assert.equal(opened.cgroupId, statSync(cg.path).ino);
  assert.equal(opened.progId(), a.program(SOCK_PROGS.connect4).id);
  opened.update(b.program(SOCK_PROGS.connect4));
  assert.equal(opened.progId(), b.program(SOCK_PROGS.connect4).id, 'program replaced in the same link');
  opened.detach();
  opened.unpin();
  opened.close();
});

test('cgroup link: wrong program type, unknown hook and a path that is no cgroup are one-line errors', () => {
  assert.throws(() => Link.attachCgroup(a.program(PROG.tc), cg.path, 'connect4'), /not a cgroup sock_addr program/);
  assert.throws(() => Link.attachCgroup(a.program(SOCK_PROGS.connect4), cg.path, 'bind4' as never), /hook must be connect4/);
  assert.throws(() => Link.attachCgroup(a.program(SOCK_PROGS.connect4), `${cg.path}/missing`, 'connect4'),
    (e: Error & { code?: string }) => e.code === 'ENOENT' && /not a cgroup v2 directory/.test(e.message));
});

test('netns cookie and sock_addr test runs: what the kernel offers', () => {
  assert.ok(netnsCookie() > 0);
  assert.throws(() => a.program(SOCK_PROGS.connect4).testRun({ data: Buffer.alloc(0), ctxIn: Buffer.alloc(80) }),
    (e: Error & { code?: string }) => e.code === 'EOPNOTSUPP');
});
