// Socket-level load balancing end to end in IPv6 on a dual-stack topology (web dual-stack: both families at once, and v4-mapped from a dual-stack socket): test/e2e/socklb-suite.ts.
import { sockLbSuite } from './socklb-suite.js';

sockLbSuite(6);
