// Original file: src/api/xlb/v1/status.proto

import type { Long } from '@grpc/proto-loader';

export interface ProgrammedEvent {
  'timeMs'?: (number | string | Long);
  'service'?: (string);
  'frontends'?: (number);
  'backends'?: (number);
  'durationMs'?: (number | string);
  'ok'?: (boolean);
  'error'?: (string);
}

export interface ProgrammedEvent__Output {
  'timeMs': (number);
  'service': (string);
  'frontends': (number);
  'backends': (number);
  'durationMs': (number);
  'ok': (boolean);
  'error': (string);
}
