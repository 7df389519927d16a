// Runs inside the XDP-mark test's namespace: xlb_tc_dev at tcx ingress of eth0, as the agent
// attaches it behind XDP, and xlb_xdp run on eth0 by live frames (BPF_F_TEST_XDP_LIVE_FRAMES:
// a frame XDP passes becomes an skb that enters the stack at eth0, tc ingress first, with the
// XDP metadata). The frame is a later IPv4 fragment whose first fragment never came, which
// each program that sees it counts (frag_untracked) and passes. Prints the counts per config
// as one JSON line: {"deliver": n, "fixture": m} for argv[2] frames each.
import { readFileSync } from 'node:fs';
import * as C from '../../src/datapath/codecs.js';
import { Link } from '../../src/datapath/bpf.js';
import { buildFragments } from '../helpers/packet.js';
import { Datapath, LB_IP } from './harness.js';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 50);
  const d = await Datapath.open('xdpmark');
  const link = Link.attachTc(d.obj.program(C.PROG.tcDev), 'eth0', 'ingress');
  try {
    const frame = buildFragments({ src: '203.0.113.7', dst: LB_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 1), id: 77 }, 32)[1];
    const ifindex = Number(readFileSync('/sys/class/net/eth0/ifindex', 'utf8'));
    const counts: Record<string, number> = {};
    // deliver: as a node runs (the mark is left); fixture: XLB_CFG_F_FIXTURE, no mark
    for (const [name, flags] of [['deliver', 0], ['fixture', C.CONFIG_FLAG.fixture]] as const) {
      d.reset({ flags });
      d.service({ addr: LB_IP, port: 53, proto: 'UDP', svcId: 1, backends: [] });
      d.obj.program(C.PROG.xdp).testRunLive({ data: frame, repeat: n, ifindex });
      counts[name] = d.drops().frag_untracked;
    }
    process.stdout.write(`${JSON.stringify(counts)}\n`);
  } finally {
    link.detach();
    d.close();
  }
}

await main();
