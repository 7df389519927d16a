// The datapath end to end in IPv4: test/e2e/datapath-suite.ts.
import { datapathSuite } from './datapath-suite.js';

datapathSuite(4);
