// VLAN-tagged frames on real veths: at tc ingress the kernel has already moved an 802.1Q tag
// out of the frame (skb_vlan_untag, into skb->vlan_tci), which BPF_PROG_TEST_RUN cannot
// produce. A frame for a VLAN the node has no interface for must not be translated: xlb_tc_dev
// (node device) and xlb_tc (pod veth) pass it untouched and create no flow, while the same
// packet untagged is translated. Frames are written with an AF_PACKET socket (python3) from
// the peer namespace; topology: namespaces node (dev0) and peer (eth0), no addresses needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as C from '../../src/datapath/codecs.js';
import { buildPacket } from '../helpers/packet.js';
import { NetnsSet, sweepStale, waitForOutput, type Netns } from '../helpers/netns.js';
import { CLIENT, LB_IP } from './harness.js';
import { vlanTagged } from './xdp.fixtures.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = resolve(here, 'vlan-child.js');
const SEND = 'import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(("eth0",0))\nfor h in sys.argv[1:]: s.send(bytes.fromhex(h))';

const syn = (sport: number) => buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport, dport: 80, flags: 'S', dstMac: '02:00:00:00:0e:01' });

describe('VLAN-tagged frames at tc ingress (tag moved out of the frame by the kernel)', () => {
  const set = new NetnsSet('vlan');
  let node: Netns;
  let peer: Netns;

  before(async () => {
    await sweepStale('vlan');
    node = await set.add('node');
    peer = await set.add('peer');
    await set.veth(node, 'dev0', peer, 'eth0');
    await node.ip('link', 'set', 'dev0', 'address', '02:00:00:00:0e:01', 'up');
    await peer.ip('link', 'set', 'eth0', 'up');
  });
  after(async () => { await set.teardown(); });

  for (const prog of [C.PROG.tcDev, C.PROG.tc]) {
    test(`${prog}: a frame tagged VLAN 100 (no such interface) creates no flow; untagged it does`, async () => {
      const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
      const child = set.track(spawn('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, CHILD, String(process.pid), prog], { stdio: ['pipe', 'pipe', 'pipe'] }));
      await waitForOutput(child, /ready/, 'datapath child');
      await peer.exec('python3', ['-c', SEND, vlanTagged(syn(41000), [0x8100]).toString('hex'), syn(42000).toString('hex')], { timeoutMs: 10_000 });
      child.stdin!.end();
      const line = await waitForOutput(child, /\{.*\}\n/, 'datapath child flows');
      assert.deepEqual((JSON.parse(line) as { flows: number[] }).flows, [42000], 'only the untagged SYN became a flow');
    });
  }
});
