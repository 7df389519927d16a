// Runs inside the VLAN test's "node" namespace: loads xlb.o, programs LB_IP:80/TCP in both
// scopes (-> a local backend), attaches the program named by argv[3] (xlb_tc_dev or xlb_tc)
// at tc ingress of dev0, prints "ready", and on stdin end prints the flows it created as one
// JSON line, detaches and exits.
import * as C from '../../src/datapath/codecs.js';
import { Link } from '../../src/datapath/bpf.js';
import { Datapath, LB_IP, POD_A } from './harness.js';

async function main(): Promise<void> {
  const d = await Datapath.open(`vlan-${process.argv[2] ?? 'x'}`);
  let link: Link | undefined;
  try {
    d.reset({ flags: 0 });
    d.backend(1, POD_A, 8080);
    d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] });
    d.service({ addr: LB_IP, port: 80, svcId: 2, backends: [1], scope: 'internal' });
    link = Link.attachTc(d.obj.program(process.argv[3] ?? C.PROG.tcDev), 'dev0', 'ingress');
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => { process.stdin.on('end', resolve); process.stdin.on('error', resolve); process.stdin.resume(); });
    const flows = d.ctEntries().filter(([, v]) => !(v.flags & C.CT_FLAG.reply)).map(([k]) => k.sport).sort();
    process.stdout.write(`${JSON.stringify({ flows })}\n`);
  } finally {
    link?.detach();
    d.close();
  }
}

await main();
