// What decides whether xlb runs on a node (`xlb status` shows it as enabled and reason), and
// which addresses the agent hands the datapath as the node's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Toggle } from '../../src/agent/toggle.js';
import { nodeAddresses, type LinkInfo } from '../../src/agent/netlink.js';
import { ViewError } from '../../src/api/view.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-toggle-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('manifests source: xlb toggle wins over the label, the label over the default', () => {
  withDir((dir) => {
    const o = { source: 'manifests' as const, node: 'n1', apiSocket: join(dir, 'run', 'xlb.sock'), enabledByDefault: false };
    const t = new Toggle(o);
    assert.deepEqual(t.decide(undefined), { enabled: false, reason: 'default' });
    assert.deepEqual(t.decide({ 'xlb.io/enabled': 'true' }), { enabled: true, reason: 'label' });
    assert.deepEqual(t.decide({ 'xlb.io/enabled': 'maybe' }), { enabled: false, reason: 'default' });
    t.write(false);
    assert.deepEqual(t.decide({ 'xlb.io/enabled': 'true' }), { enabled: false, reason: 'toggle' });
    assert.deepEqual({ enabled: t.enabled, reason: t.reason }, { enabled: false, reason: 'toggle' });
    // one file beside the socket, one entry per node: another node's agent keeps its own
    const other = new Toggle({ ...o, node: 'n2', enabledByDefault: true });
    assert.deepEqual(other.decide(undefined), { enabled: true, reason: 'default' });
    other.write(false);
    t.write(true);
    assert.deepEqual(t.decide(undefined), { enabled: true, reason: 'toggle' });
    assert.deepEqual(other.decide(undefined), { enabled: false, reason: 'toggle' });
  });
});

test('kube source: the label decides; xlb toggle names the label to set instead', () => {
  withDir((dir) => {
    const t = new Toggle({ source: 'kube', node: 'n1', apiSocket: join(dir, 'xlb.sock'), enabledByDefault: true });
    assert.throws(() => t.write(false), (e: Error) => e instanceof ViewError && e.code === 'FAILED_PRECONDITION' &&
      e.message === 'in kube mode xlb follows the Node label: kubectl label node n1 xlb.io/enabled=false --overwrite');
    assert.deepEqual(t.decide({ 'xlb.io/enabled': 'false' }), { enabled: false, reason: 'label' });
    assert.deepEqual(t.decide({}), { enabled: true, reason: 'default' });
  });
});

const link = (name: string, addrs: string[], broadcasts: string[] = []): LinkInfo =>
  ({ name, ifindex: 1, kind: '', up: true, mac: null, addrs, cidrs: addrs.map((a) => `${a}/24`), broadcasts });

test('node addresses: the Node\'s and the devices\', broadcasts that are no address, SNAT from the Node first', () => {
  const links = [link('eth0', ['10.0.0.5', '10.0.0.255'], ['10.0.0.255', '10.1.255.255']), link('eth1', ['192.0.2.9'], ['192.0.2.255'])];
  assert.deepEqual(nodeAddresses(['198.51.100.1'], links, ['eth0']), {
    addrs: ['198.51.100.1', '10.0.0.5', '10.0.0.255'], broadcasts: ['10.1.255.255'], snatAddr: '198.51.100.1', snatAddr6: null,
  });
  assert.equal(nodeAddresses([], links, ['eth1']).snatAddr, '192.0.2.9', 'no Node address: a device\'s');
  assert.equal(nodeAddresses([], links, []).snatAddr, null);
});

test('node addresses of both families: a SNAT address per family, the Node\'s first of it, else a device\'s', () => {
  const links = [link('eth0', ['10.0.0.5', 'fd00:1::5']), link('eth1', ['fd00:2::9'])];
  assert.deepEqual(nodeAddresses(['fd00:9::1', '198.51.100.1'], links, ['eth0']), {
    addrs: ['fd00:9::1', '198.51.100.1', '10.0.0.5', 'fd00:1::5'], broadcasts: [], snatAddr: '198.51.100.1', snatAddr6: 'fd00:9::1',
  });
  const fromDevices = nodeAddresses([], links, ['eth0', 'eth1']);
  assert.deepEqual([fromDevices.snatAddr, fromDevices.snatAddr6], ['10.0.0.5', 'fd00:1::5']);
  const v4only = nodeAddresses(['198.51.100.1'], [link('eth0', ['10.0.0.5'])], ['eth0']);
  assert.equal(v4only.snatAddr6, null, 'no IPv6 address: reported as none, no crash');
});
