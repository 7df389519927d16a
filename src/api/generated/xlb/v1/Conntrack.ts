// Original file: src/api/xlb/v1/status.proto

import type { Long } from '@grpc/proto-loader';

export interface Conntrack {
  'entries'?: (number | string | Long);
  'max'?: (number | string | Long);
}

export interface Conntrack__Output {
  'entries': (number);
  'max': (number);
}
