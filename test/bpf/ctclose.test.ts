// How long a closed TCP flow keeps its conntrack entries, through the datapath and both sweeps
// (the kernel's, bpf/ct_sweep.c, and the agent's JS one): tcp_fin_timeout is 10 s (Cilium's
// close timeout), counted from the last packet of the flow, so the peer's FIN, the last ACK and
// their retransmissions (RTO backoff 0.2, 0.4, ... 6.4 s apart) are still translated, and a
// flow's admission is released 10-15 s after it closed instead of 30-35 s.
import { after, before, describe, test } from 'node:test';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { KernelCtSweep, sweepConntrack, type SweepResult } from '../../src/datapath/ctgc.js';
import { buildPacket, parsePacket } from '../helpers/packet.js';
import { CLIENT, Datapath, LB_IP, POD_A, TC, XDP, XLB_OBJ } from './harness.js';

const SEC = 1_000_000_000n;
const tcp = (flags: string, seq: number, ack = 0) => buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport: 40100, dport: 80, flags, seq, ack });
const back = (flags: string, seq: number, ack: number) => buildPacket({ src: POD_A, dst: CLIENT, proto: 'TCP', sport: 8080, dport: 40100, flags, seq, ack });

describe('a closed TCP flow', () => {
  let d: Datapath;
  let k: KernelCtSweep;
  before(async () => {
    d = await Datapath.open('ctclose');
    k = await KernelCtSweep.open(join(dirname(XLB_OBJ), 'ct_sweep.o'), { pinPath: d.pinPath, maxEntries: Datapath.SIZES });
  });
  after(() => { k?.close(); d?.close(); });

  for (const which of ['kernel', 'js'] as const) {
    test(`keeps its entries 10 s after its last packet, then the ${which} sweep releases it`, async () => {
      d.reset();
      d.backend(1, POD_A, 8080);
      d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] });
      const cfg = C.decodeConfig(d.map(C.MAP.config).lookup(C.encodeConfigKey())!);
      assert.equal(cfg.tcpFinTimeout, 10);
      const sweep = (at: bigint): Promise<SweepResult> => which === 'kernel'
        ? k.sweep(d.map(C.MAP.ct), d.map(C.MAP.ctFill), cfg, at)
        : sweepConntrack(d.map(C.MAP.ct), d.map(C.MAP.ctFill), cfg, at);
      const fill = (i: 0 | 1): bigint => C.decodeCtFillValue(d.map(C.MAP.ctFill).lookup(C.encodeCtFillKey(i))!);

      assert.equal(d.run('xdp', tcp('S', 1)).retval, XDP.PASS);
      assert.equal(d.run('tc', back('SA', 9, 2)).retval, TC.OK);
      assert.equal(d.run('xdp', tcp('A', 2, 10)).retval, XDP.PASS);
      // the client closes, the backend answers with its FIN, the client's last ACK
      assert.equal(d.run('xdp', tcp('FA', 2, 10)).retval, XDP.PASS);
      assert.equal(d.run('tc', back('FA', 10, 3)).retval, TC.OK);
      const last = d.run('xdp', tcp('A', 3, 11));
      assert.equal(parsePacket(last.data).ip?.dst, POD_A, 'the last ACK is translated');
      const closedAt = process.hrtime.bigint();
      const made = fill(0), freed = fill(1);

      const early = await sweep(closedAt + 9n * SEC);
      assert.equal(early.expired, 0, '9 s after: both entries kept');
      assert.equal(early.entries, 2);
      // a retransmitted FIN from the backend 9 s after is still translated back
      assert.equal(parsePacket(d.run('tc', back('FA', 10, 3)).data).ip?.src, LB_IP);

      const late = await sweep(process.hrtime.bigint() + 11n * SEC);
      assert.equal(late.expired, 2, '11 s after the last packet: both entries released');
      assert.equal(fill(1) - freed, 1n, 'one admission back');
      assert.equal(fill(0), made);
    });
  }
});
