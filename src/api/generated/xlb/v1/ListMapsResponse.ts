// Original file: src/api/xlb/v1/status.proto

import type { DecodedMap as _xlb_v1_DecodedMap, DecodedMap__Output as _xlb_v1_DecodedMap__Output } from '../../xlb/v1/DecodedMap.js';

export interface ListMapsResponse {
  'maps'?: (_xlb_v1_DecodedMap)[];
}

export interface ListMapsResponse__Output {
  'maps': (_xlb_v1_DecodedMap__Output)[];
}
