// The datapath end to end in IPv6 (issue 15 item 4): test/e2e/datapath-suite.ts on a
// dual-stack topology, with single-stack IPv6 Services and IPv6 EndpointSlices.
import { datapathSuite } from './datapath-suite.js';

datapathSuite(6);
