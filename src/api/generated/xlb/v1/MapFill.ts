// Original file: src/api/xlb/v1/status.proto

import type { Long } from '@grpc/proto-loader';

export interface MapFill {
  'name'?: (string);
  'entries'?: (number | string | Long);
  'maxEntries'?: (number | string | Long);
}

export interface MapFill__Output {
  'name': (string);
  'entries': (number);
  'maxEntries': (number);
}
