// Original file: src/api/xlb/v1/status.proto

import type { MapEntry as _xlb_v1_MapEntry, MapEntry__Output as _xlb_v1_MapEntry__Output } from '../../xlb/v1/MapEntry.js';
import type { Long } from '@grpc/proto-loader';

export interface DecodedMap {
  'name'?: (string);
  'type'?: (string);
  'maxEntries'?: (number | string | Long);
  'entries'?: (_xlb_v1_MapEntry)[];
}

export interface DecodedMap__Output {
  'name': (string);
  'type': (string);
  'maxEntries': (number);
  'entries': (_xlb_v1_MapEntry__Output)[];
}
