// Original file: src/api/xlb/v1/status.proto

import type { Backend as _xlb_v1_Backend, Backend__Output as _xlb_v1_Backend__Output } from '../../xlb/v1/Backend.js';

export interface Frontend {
  'id'?: (string);
  'service'?: (string);
  'portName'?: (string);
  'type'?: (string);
  'addr'?: (string);
  'port'?: (number);
  'proto'?: (string);
  'scope'?: (string);
  'backends'?: (_xlb_v1_Backend)[];
  'affinityTimeoutSec'?: (number);
  'sourceRanges'?: (string)[];
  'localOnly'?: (boolean);
  'maglev'?: (boolean);
  'announcer'?: (string);
  'ipFamily'?: (string);
}

export interface Frontend__Output {
  'id': (string);
  'service': (string);
  'portName': (string);
  'type': (string);
  'addr': (string);
  'port': (number);
  'proto': (string);
  'scope': (string);
  'backends': (_xlb_v1_Backend__Output)[];
  'affinityTimeoutSec': (number);
  'sourceRanges': (string)[];
  'localOnly': (boolean);
  'maglev': (boolean);
  'announcer': (string);
  'ipFamily': (string);
}
