// Runs inside the veth test's "node" namespace: loads xlb.o with the redirect flag (the
// agent's setting), programs an LB IP whose backend sits back behind the ingress device (SNAT,
// FIB, out of the device the packet came in on) and two LB ports without endpoints (rejects
// sent back the same way), attaches the device hook to eth0 (argv[3]: xdp = xlb_xdp native,
// tc = xlb_tc_dev at tcx ingress), prints "ready", and on stdin end prints the drop counters
// as one JSON line, detaches and exits.
import * as C from '../../src/datapath/codecs.js';
import { Link } from '../../src/datapath/bpf.js';
import { Datapath } from './harness.js';

export const NODE_IP = '10.0.7.1';
export const BACKEND_IP = '10.0.7.3';
export const LB = '198.51.100.10';

async function main(): Promise<void> {
  const d = await Datapath.open(`xveth-${process.argv[2] ?? 'x'}`);
  let link: Link | undefined;
  try {
    d.reset({ flags: C.CONFIG_FLAG.redirect, snatAddr: NODE_IP });
    d.nodeAddr(NODE_IP);
    d.backend(1, BACKEND_IP, 8080, { local: false });
    d.service({ addr: LB, port: 80, svcId: 1, backends: [1] });
    d.service({ addr: LB, port: 81, svcId: 2, backends: [] });
    d.service({ addr: LB, port: 53, proto: 'UDP', svcId: 3, backends: [] });
    link = process.argv[3] === 'tc'
      ? Link.attachTc(d.obj.program(C.PROG.tcDev), 'eth0', 'ingress')
      : Link.attachXdp(d.obj.program(C.PROG.xdp), 'eth0', { mode: 'native' });
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => { process.stdin.on('end', resolve); process.stdin.on('error', resolve); process.stdin.resume(); });
    process.stdout.write(`${JSON.stringify({ drops: d.drops() })}\n`);
  } finally {
    link?.detach();
    d.close();
  }
}

await main();
