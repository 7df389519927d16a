// Original file: src/api/xlb/v1/status.proto

import type { Long } from '@grpc/proto-loader';

export interface Announce {
  'arpReplies'?: (number | string | Long);
  'arpExpired'?: (number | string | Long);
  'takeovers'?: (number | string | Long);
  'garpErrors'?: (number | string | Long);
  'ndpReplies'?: (number | string | Long);
  'ndpExpired'?: (number | string | Long);
}

export interface Announce__Output {
  'arpReplies': (number);
  'arpExpired': (number);
  'takeovers': (number);
  'garpErrors': (number);
  'ndpReplies': (number);
  'ndpExpired': (number);
}
