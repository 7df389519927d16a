// Original file: src/api/xlb/v1/status.proto

import type { ServiceFilter as _xlb_v1_ServiceFilter, ServiceFilter__Output as _xlb_v1_ServiceFilter__Output } from '../../xlb/v1/ServiceFilter.js';

export interface GetStatsRequest {
  'filter'?: (_xlb_v1_ServiceFilter | null);
  'pageSize'?: (number);
}

export interface GetStatsRequest__Output {
  'filter': (_xlb_v1_ServiceFilter__Output | null);
  'pageSize': (number);
}
