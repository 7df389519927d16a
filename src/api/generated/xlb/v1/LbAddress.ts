// Original file: src/api/xlb/v1/status.proto

import type { Long } from '@grpc/proto-loader';

export interface LbAddress {
  'addr'?: (string);
  'services'?: (string)[];
  'announcing'?: (boolean);
  'announcer'?: (string);
  'why'?: (string);
  'device'?: (string);
  'sinceMs'?: (number | string | Long);
}

export interface LbAddress__Output {
  'addr': (string);
  'services': (string)[];
  'announcing': (boolean);
  'announcer': (string);
  'why': (string);
  'device': (string);
  'sinceMs': (number);
}
