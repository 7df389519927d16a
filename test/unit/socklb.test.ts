// Socket LB's agent-side rules: where the cgroup v2 root is, what config says per mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroup2Root, sockConfig } from '../../src/agent/socklb.js';
import { SOCK_FLAG } from '../../src/datapath/codecs.js';

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
