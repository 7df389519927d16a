// Socket LB's agent-side rules: where the cgroup v2 root is, what config says per mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroup2Root, sockConfig, sockLbCheck, sockPrograms, sockSkipped, type SockLbKernel } from '../../src/agent/socklb.js';
import type { CgroupAttachment } from '../../src/agent/attach.js';
import type { BpfProgram, CgroupHook } from '../../src/datapath/bpf.js';
import { SOCK_FLAG, SOCK_PROGS } from '../../src/datapath/codecs.js';

const HYBRID = [
  '30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,name=systemd',
].join('\n');

test('cgroup v2 root: the cgroup2 mount point (unified, hybrid, none)', () => {
  assert.equal(cgroup2Root('29 1 0:25 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate'), '/sys/fs/cgroup');
  assert.equal(cgroup2Root(HYBRID), '/sys/fs/cgroup/unified');
  assert.equal(cgroup2Root(HYBRID.split('\n')[2]), undefined, 'cgroup v1 only');
});

test('config per mode: all sets SOCK_FLAG.all; host confines to the netns cookie', () => {
  assert.deepEqual(sockConfig('host', 4096), { sockFlags: 0, netnsCookie: 4096 });
  assert.deepEqual(sockConfig('all', 4096), { sockFlags: SOCK_FLAG.all, netnsCookie: 4096 });
});

const kernel = (o: Partial<SockLbKernel> = {}): SockLbKernel => ({ ok: true, detail: '', cookie: 4096, reap: true, v6: true, ...o });
const fakeProg = (name: string) => ({ name }) as unknown as BpfProgram;

test('hooks per kernel: both families with IPv6, the IPv4 four without; the IPv6 programs are then not loaded', () => {
  const hooks = (k: SockLbKernel) => sockPrograms('host', k, fakeProg).map(([hook, p]) => `${hook}=${(p as unknown as { name: string }).name}`);
  assert.deepEqual(hooks(kernel()), [
    'connect4=xlb_sock_connect4', 'sendmsg4=xlb_sock_sendmsg4', 'recvmsg4=xlb_sock_recvmsg4', 'getpeername4=xlb_sock_getpeername4',
    'connect6=xlb_sock_connect6', 'sendmsg6=xlb_sock_sendmsg6', 'recvmsg6=xlb_sock_recvmsg6', 'getpeername6=xlb_sock_getpeername6',
  ]);
  assert.deepEqual(hooks(kernel({ v6: false })), ['connect4=xlb_sock_connect4', 'sendmsg4=xlb_sock_sendmsg4', 'recvmsg4=xlb_sock_recvmsg4', 'getpeername4=xlb_sock_getpeername4']);
  assert.deepEqual(sockPrograms('off', kernel(), fakeProg), []);
  assert.deepEqual(sockSkipped(kernel()), []);
  assert.deepEqual(sockSkipped(kernel({ v6: false, reap: false })).sort(),
    ['xlb_sock_connect6', 'xlb_sock_getpeername6', 'xlb_sock_recvmsg6', 'xlb_sock_sendmsg6', 'xlb_sock_udp_reap']);
  assert.equal(sockSkipped(kernel({ ok: false })).length, Object.keys(SOCK_PROGS).length + 1, 'no hooks: every sock program skipped');
});

test('status check: an IPv6 hook that failed to attach fails the check with its reason, the IPv4 links still listed', () => {
  const att = (hook: CgroupHook, linkId: number): CgroupAttachment => ({ hook, cgroup: '/cg', linkId, progId: 1 });
  const v4 = [att('connect4', 1), att('sendmsg4', 2), att('recvmsg4', 3), att('getpeername4', 4)];
  const both = sockLbCheck('host', kernel(), { path: '/cg', failed: [] }, [...v4, att('connect6', 5), att('sendmsg6', 6), att('recvmsg6', 7), att('getpeername6', 8)]);
  assert.ok(both.ok, both.detail);
  assert.match(both.detail, /cookie 4096\) in cgroup \/cg: connect4 link 1, .*getpeername4 link 4, connect6 link 5, sendmsg6 link 6, recvmsg6 link 7, getpeername6 link 8$/);
  const failed = sockLbCheck('host', kernel(), { path: '/cg', failed: ['connect6: EINVAL: attach failed'] }, v4);
  assert.equal(failed.ok, false);
  assert.match(failed.detail, /getpeername4 link 4; not attached: connect6: EINVAL: attach failed$/);
  const noV6 = sockLbCheck('all', kernel({ v6: false }), { path: '/cg' }, v4);
  assert.ok(noV6.ok);
  assert.match(noV6.detail, /^every socket in cgroup \/cg: .* \(IPv4 only: this kernel has no IPv6\)$/);
  assert.equal(sockLbCheck('host', kernel(), { path: '/cg', error: 'ENOENT: no such cgroup' }, []).ok, false);
});
