// Original file: src/api/xlb/v1/status.proto

import type { Service as _xlb_v1_Service, Service__Output as _xlb_v1_Service__Output } from '../../xlb/v1/Service.js';

export interface ListServicesResponse {
  'services'?: (_xlb_v1_Service)[];
  'total'?: (number);
}

export interface ListServicesResponse__Output {
  'services': (_xlb_v1_Service__Output)[];
  'total': (number);
}
