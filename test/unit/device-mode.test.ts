// Which hook a node device gets (--device-mode): what an operator sees in `xlb status` and
// the agent's "device mode" log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseDeviceMode } from '../../src/agent/attach.js';

test('auto: tc on a veth (container or namespace node), XDP on a physical or other device', () => {
  assert.deepEqual(chooseDeviceMode('auto', 'veth').mode, 'tc');
  assert.match(chooseDeviceMode('auto', 'veth').why, /copy every cloned skb/);
  assert.equal(chooseDeviceMode('auto', '').mode, 'xdp');
  assert.equal(chooseDeviceMode('auto', '').why, 'physical device');
  assert.equal(chooseDeviceMode('auto', 'bond').mode, 'xdp');
});

test('an explicit mode wins over the device kind', () => {
  assert.equal(chooseDeviceMode('xdp', 'veth').mode, 'xdp');
  assert.equal(chooseDeviceMode('tc', '').mode, 'tc');
  assert.equal(chooseDeviceMode('tc', '').why, '--device-mode tc');
});
