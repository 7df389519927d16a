// Original file: src/api/xlb/v1/status.proto

import type { Long } from '@grpc/proto-loader';

export interface ServiceStats {
  'service'?: (string);
  'frontend'?: (string);
  'packets'?: (number | string | Long);
  'bytes'?: (number | string | Long);
  'newFlows'?: (number | string | Long);
  'ipFamily'?: (string);
}

export interface ServiceStats__Output {
  'service': (string);
  'frontend': (string);
  'packets': (number);
  'bytes': (number);
  'newFlows': (number);
  'ipFamily': (string);
}
