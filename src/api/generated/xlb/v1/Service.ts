// Original file: src/api/xlb/v1/status.proto

import type { Frontend as _xlb_v1_Frontend, Frontend__Output as _xlb_v1_Frontend__Output } from '../../xlb/v1/Frontend.js';

export interface Service {
  'key'?: (string);
  'type'?: (string);
  'frontends'?: (_xlb_v1_Frontend)[];
  'healthCheckNodePort'?: (number);
  'localReadyEndpoints'?: (number);
  'warnings'?: (string)[];
}

export interface Service__Output {
  'key': (string);
  'type': (string);
  'frontends': (_xlb_v1_Frontend__Output)[];
  'healthCheckNodePort': (number);
  'localReadyEndpoints': (number);
  'warnings': (string)[];
}
