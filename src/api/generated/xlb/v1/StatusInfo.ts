// Original file: src/api/xlb/v1/status.proto

import type { Device as _xlb_v1_Device, Device__Output as _xlb_v1_Device__Output } from '../../xlb/v1/Device.js';
import type { PodInterface as _xlb_v1_PodInterface, PodInterface__Output as _xlb_v1_PodInterface__Output } from '../../xlb/v1/PodInterface.js';
import type { MapFill as _xlb_v1_MapFill, MapFill__Output as _xlb_v1_MapFill__Output } from '../../xlb/v1/MapFill.js';
import type { Kernel as _xlb_v1_Kernel, Kernel__Output as _xlb_v1_Kernel__Output } from '../../xlb/v1/Kernel.js';
import type { Source as _xlb_v1_Source, Source__Output as _xlb_v1_Source__Output } from '../../xlb/v1/Source.js';
import type { SnatPorts as _xlb_v1_SnatPorts, SnatPorts__Output as _xlb_v1_SnatPorts__Output } from '../../xlb/v1/SnatPorts.js';
import type { Progress as _xlb_v1_Progress, Progress__Output as _xlb_v1_Progress__Output } from '../../xlb/v1/Progress.js';
import type { LbAddress as _xlb_v1_LbAddress, LbAddress__Output as _xlb_v1_LbAddress__Output } from '../../xlb/v1/LbAddress.js';
import type { Announce as _xlb_v1_Announce, Announce__Output as _xlb_v1_Announce__Output } from '../../xlb/v1/Announce.js';
import type { Drain as _xlb_v1_Drain, Drain__Output as _xlb_v1_Drain__Output } from '../../xlb/v1/Drain.js';
import type { Long } from '@grpc/proto-loader';

export interface StatusInfo {
  'node'?: (string);
  'enabled'?: (boolean);
  'enabledReason'?: (string);
  'devices'?: (_xlb_v1_Device)[];
  'podInterfaces'?: (_xlb_v1_PodInterface)[];
  'pinPath'?: (string);
  'lastSyncMs'?: (number | string | Long);
  'pendingChanges'?: (number);
  'mapFill'?: (_xlb_v1_MapFill)[];
  'kernel'?: (_xlb_v1_Kernel | null);
  'source'?: (_xlb_v1_Source | null);
  'snatPorts'?: (_xlb_v1_SnatPorts | null);
  'progress'?: (_xlb_v1_Progress | null);
  'lbAddresses'?: (_xlb_v1_LbAddress)[];
  'announce'?: (_xlb_v1_Announce | null);
  'nodeAddresses'?: (string)[];
  'snatAddresses'?: (string)[];
  'drain'?: (_xlb_v1_Drain | null);
}

export interface StatusInfo__Output {
  'node': (string);
  'enabled': (boolean);
  'enabledReason': (string);
  'devices': (_xlb_v1_Device__Output)[];
  'podInterfaces': (_xlb_v1_PodInterface__Output)[];
  'pinPath': (string);
  'lastSyncMs': (number);
  'pendingChanges': (number);
  'mapFill': (_xlb_v1_MapFill__Output)[];
  'kernel': (_xlb_v1_Kernel__Output | null);
  'source': (_xlb_v1_Source__Output | null);
  'snatPorts': (_xlb_v1_SnatPorts__Output | null);
  'progress': (_xlb_v1_Progress__Output | null);
  'lbAddresses': (_xlb_v1_LbAddress__Output)[];
  'announce': (_xlb_v1_Announce__Output | null);
  'nodeAddresses': (string)[];
  'snatAddresses': (string)[];
  'drain': (_xlb_v1_Drain__Output | null);
}
