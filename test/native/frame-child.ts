// Sends one raw frame with the addon's sendFrame() from inside a namespace (run under
// `ip netns exec`): argv[2] the interface name, argv[3] the frame in hex. Prints {sent} or {error}.
import { ifIndex, sendFrame } from '../../src/datapath/bpf.js';

try {
  const ifindex = process.argv[2] === '-' ? 999_999 : ifIndex(process.argv[2]);
  console.log(JSON.stringify({ sent: sendFrame(ifindex, Buffer.from(process.argv[3], 'hex')) }));
} catch (e) {
  const err = e as Error & { code?: string; op?: string };
  console.log(JSON.stringify({ error: { code: err.code, op: err.op, message: err.message } }));
}
