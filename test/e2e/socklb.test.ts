// Socket-level load balancing end to end in IPv4: test/e2e/socklb-suite.ts.
import { sockLbSuite } from './socklb-suite.js';

sockLbSuite(4);
