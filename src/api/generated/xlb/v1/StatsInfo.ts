// Original file: src/api/xlb/v1/status.proto

import type { ServiceStats as _xlb_v1_ServiceStats, ServiceStats__Output as _xlb_v1_ServiceStats__Output } from '../../xlb/v1/ServiceStats.js';
import type { Conntrack as _xlb_v1_Conntrack, Conntrack__Output as _xlb_v1_Conntrack__Output } from '../../xlb/v1/Conntrack.js';
import type { Long } from '@grpc/proto-loader';

export interface StatsInfo {
  'services'?: (_xlb_v1_ServiceStats)[];
  'drops'?: ({[key: string]: number | string | Long});
  'conntrack'?: (_xlb_v1_Conntrack | null);
  'total'?: (number);
}

export interface StatsInfo__Output {
  'services': (_xlb_v1_ServiceStats__Output)[];
  'drops': ({[key: string]: number});
  'conntrack': (_xlb_v1_Conntrack__Output | null);
  'total': (number);
}
