// A spoofed SYN flood through the datapath and the agent's conntrack sweep, on a small table:
// every spoofed SYN is answered by the backend (SYN-ACK) but never acknowledged by its
// "client". Such flows must stay in syn_recv (tcp_syn_timeout, 60 s) rather than become
// established (6 h), so the table recovers one syn timeout after the flood, while a real
// connection established before it keeps working throughout. Bounded: 60 spoofed flows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { sweepConntrack } from '../../src/datapath/ctgc.js';
import { buildPacket, parsePacket } from '../helpers/packet.js';
import { CLIENT, Datapath, LB_IP, POD_A, TC, XDP } from './harness.js';

const LIMIT = 61;
const FLOOD = 60;
const syn = (src: string, sport: number) => buildPacket({ src, dst: LB_IP, proto: 'TCP', sport, dport: 80, flags: 'S', seq: 1 });
const synAck = (dst: string, dport: number) => buildPacket({ src: POD_A, dst, proto: 'TCP', sport: 8080, dport, flags: 'SA', seq: 9, ack: 2 });

describe('spoofed SYN flood on a small conntrack table', () => {
  let d: Datapath;
  before(async () => { d = await Datapath.open('synflood'); });
  after(() => d?.close());

  test('the table recovers one syn timeout after the flood; the established connection keeps working', async () => {
    d.reset({ ctLimit: LIMIT });
    d.backend(1, POD_A, 8080);
    d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] });
    const cfg = C.decodeConfig(d.map(C.MAP.config).lookup(C.encodeConfigKey())!);

    // a real client: SYN, SYN-ACK, ACK
    assert.equal(d.run('xdp', syn(CLIENT, 40000)).retval, XDP.PASS);
    assert.equal(d.run('tc', synAck(CLIENT, 40000)).retval, TC.OK);
    assert.equal(d.run('xdp', buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport: 40000, dport: 80, flags: 'A', seq: 2, ack: 10 })).retval, XDP.PASS);

    // the flood: each spoofed SYN is answered by the backend, none is acknowledged
    for (let i = 0; i < FLOOD; i++) {
      const src = `198.18.${i >> 8}.${(i & 0xff) + 1}`;
      assert.equal(d.run('xdp', syn(src, 1024 + i)).retval, XDP.PASS, `spoofed SYN ${i}`);
      assert.equal(d.run('tc', synAck(src, 1024 + i)).retval, TC.OK, `SYN-ACK ${i}`);
    }
    assert.equal(d.run('xdp', syn(CLIENT, 40001)).retval, XDP.DROP, 'table full during the flood');
    assert.equal(d.drops().ct_full, 1);
    const flood = d.ctEntries().filter(([k]) => k.saddr.startsWith('198.18.'));
    assert.equal(flood.length, FLOOD, 'one forward entry per spoofed SYN');
    assert.deepEqual([...new Set(flood.map(([, v]) => v.state))], ['syn_recv'], 'spoofed flows are not established');

    // the established connection still works during the flood
    const mid = d.run('xdp', buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport: 40000, dport: 80, flags: 'PA', seq: 2, payload: Buffer.from('GET') }));
    assert.equal(mid.retval, XDP.PASS);
    assert.equal(parsePacket(mid.data).ip?.dst, POD_A);

    // one sweep a syn timeout (+1 s) later: the spoofed flows go, the real one stays
    const later = process.hrtime.bigint() + BigInt(cfg.tcpSynTimeout + 1) * 1_000_000_000n;
    const r = await sweepConntrack(d.map(C.MAP.ct), d.map(C.MAP.ctFill), cfg, later);
    assert.equal(r.expired, 2 * FLOOD, 'both entries of every spoofed flow released');
    assert.ok(d.ct({ saddr: CLIENT, daddr: LB_IP, sport: 40000, dport: 80, proto: 'TCP' }), 'the established flow is kept');
    assert.equal(d.run('xdp', syn(CLIENT, 40002)).retval, XDP.PASS, 'a new connection is admitted again');
    assert.equal(parsePacket(d.run('xdp', buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport: 40000, dport: 80, flags: 'A', seq: 5, ack: 10 })).data).ip?.dst, POD_A);
  });
});
