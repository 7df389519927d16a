import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Announce as _xlb_v1_Announce, Announce__Output as _xlb_v1_Announce__Output } from './xlb/v1/Announce.js';
import type { Backend as _xlb_v1_Backend, Backend__Output as _xlb_v1_Backend__Output } from './xlb/v1/Backend.js';
import type { Conntrack as _xlb_v1_Conntrack, Conntrack__Output as _xlb_v1_Conntrack__Output } from './xlb/v1/Conntrack.js';
import type { DecodedMap as _xlb_v1_DecodedMap, DecodedMap__Output as _xlb_v1_DecodedMap__Output } from './xlb/v1/DecodedMap.js';
import type { Device as _xlb_v1_Device, Device__Output as _xlb_v1_Device__Output } from './xlb/v1/Device.js';
import type { Drain as _xlb_v1_Drain, Drain__Output as _xlb_v1_Drain__Output } from './xlb/v1/Drain.js';
import type { Frontend as _xlb_v1_Frontend, Frontend__Output as _xlb_v1_Frontend__Output } from './xlb/v1/Frontend.js';
import type { GetStatsRequest as _xlb_v1_GetStatsRequest, GetStatsRequest__Output as _xlb_v1_GetStatsRequest__Output } from './xlb/v1/GetStatsRequest.js';
import type { GetStatusRequest as _xlb_v1_GetStatusRequest, GetStatusRequest__Output as _xlb_v1_GetStatusRequest__Output } from './xlb/v1/GetStatusRequest.js';
import type { Kernel as _xlb_v1_Kernel, Kernel__Output as _xlb_v1_Kernel__Output } from './xlb/v1/Kernel.js';
import type { KernelCheck as _xlb_v1_KernelCheck, KernelCheck__Output as _xlb_v1_KernelCheck__Output } from './xlb/v1/KernelCheck.js';
import type { LbAddress as _xlb_v1_LbAddress, LbAddress__Output as _xlb_v1_LbAddress__Output } from './xlb/v1/LbAddress.js';
import type { ListMapsRequest as _xlb_v1_ListMapsRequest, ListMapsRequest__Output as _xlb_v1_ListMapsRequest__Output } from './xlb/v1/ListMapsRequest.js';
import type { ListMapsResponse as _xlb_v1_ListMapsResponse, ListMapsResponse__Output as _xlb_v1_ListMapsResponse__Output } from './xlb/v1/ListMapsResponse.js';
import type { ListServicesRequest as _xlb_v1_ListServicesRequest, ListServicesRequest__Output as _xlb_v1_ListServicesRequest__Output } from './xlb/v1/ListServicesRequest.js';
import type { ListServicesResponse as _xlb_v1_ListServicesResponse, ListServicesResponse__Output as _xlb_v1_ListServicesResponse__Output } from './xlb/v1/ListServicesResponse.js';
import type { MapEntry as _xlb_v1_MapEntry, MapEntry__Output as _xlb_v1_MapEntry__Output } from './xlb/v1/MapEntry.js';
import type { MapFill as _xlb_v1_MapFill, MapFill__Output as _xlb_v1_MapFill__Output } from './xlb/v1/MapFill.js';
import type { PodInterface as _xlb_v1_PodInterface, PodInterface__Output as _xlb_v1_PodInterface__Output } from './xlb/v1/PodInterface.js';
import type { ProgrammedEvent as _xlb_v1_ProgrammedEvent, ProgrammedEvent__Output as _xlb_v1_ProgrammedEvent__Output } from './xlb/v1/ProgrammedEvent.js';
import type { Progress as _xlb_v1_Progress, Progress__Output as _xlb_v1_Progress__Output } from './xlb/v1/Progress.js';
import type { Service as _xlb_v1_Service, Service__Output as _xlb_v1_Service__Output } from './xlb/v1/Service.js';
import type { ServiceFilter as _xlb_v1_ServiceFilter, ServiceFilter__Output as _xlb_v1_ServiceFilter__Output } from './xlb/v1/ServiceFilter.js';
import type { ServiceStats as _xlb_v1_ServiceStats, ServiceStats__Output as _xlb_v1_ServiceStats__Output } from './xlb/v1/ServiceStats.js';
import type { SnatPorts as _xlb_v1_SnatPorts, SnatPorts__Output as _xlb_v1_SnatPorts__Output } from './xlb/v1/SnatPorts.js';
import type { Source as _xlb_v1_Source, Source__Output as _xlb_v1_Source__Output } from './xlb/v1/Source.js';
import type { StatsInfo as _xlb_v1_StatsInfo, StatsInfo__Output as _xlb_v1_StatsInfo__Output } from './xlb/v1/StatsInfo.js';
import type { StatusClient as _xlb_v1_StatusClient, StatusDefinition as _xlb_v1_StatusDefinition } from './xlb/v1/Status.js';
import type { StatusInfo as _xlb_v1_StatusInfo, StatusInfo__Output as _xlb_v1_StatusInfo__Output } from './xlb/v1/StatusInfo.js';
import type { ToggleRequest as _xlb_v1_ToggleRequest, ToggleRequest__Output as _xlb_v1_ToggleRequest__Output } from './xlb/v1/ToggleRequest.js';
import type { ToggleResponse as _xlb_v1_ToggleResponse, ToggleResponse__Output as _xlb_v1_ToggleResponse__Output } from './xlb/v1/ToggleResponse.js';
import type { WatchEventsRequest as _xlb_v1_WatchEventsRequest, WatchEventsRequest__Output as _xlb_v1_WatchEventsRequest__Output } from './xlb/v1/WatchEventsRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  xlb: {
    v1: {
      Announce: MessageTypeDefinition<_xlb_v1_Announce, _xlb_v1_Announce__Output>
      Backend: MessageTypeDefinition<_xlb_v1_Backend, _xlb_v1_Backend__Output>
      Conntrack: MessageTypeDefinition<_xlb_v1_Conntrack, _xlb_v1_Conntrack__Output>
      DecodedMap: MessageTypeDefinition<_xlb_v1_DecodedMap, _xlb_v1_DecodedMap__Output>
      Device: MessageTypeDefinition<_xlb_v1_Device, _xlb_v1_Device__Output>
      Drain: MessageTypeDefinition<_xlb_v1_Drain, _xlb_v1_Drain__Output>
      Frontend: MessageTypeDefinition<_xlb_v1_Frontend, _xlb_v1_Frontend__Output>
      GetStatsRequest: MessageTypeDefinition<_xlb_v1_GetStatsRequest, _xlb_v1_GetStatsRequest__Output>
      GetStatusRequest: MessageTypeDefinition<_xlb_v1_GetStatusRequest, _xlb_v1_GetStatusRequest__Output>
      Kernel: MessageTypeDefinition<_xlb_v1_Kernel, _xlb_v1_Kernel__Output>
      KernelCheck: MessageTypeDefinition<_xlb_v1_KernelCheck, _xlb_v1_KernelCheck__Output>
      LbAddress: MessageTypeDefinition<_xlb_v1_LbAddress, _xlb_v1_LbAddress__Output>
      ListMapsRequest: MessageTypeDefinition<_xlb_v1_ListMapsRequest, _xlb_v1_ListMapsRequest__Output>
      ListMapsResponse: MessageTypeDefinition<_xlb_v1_ListMapsResponse, _xlb_v1_ListMapsResponse__Output>
      ListServicesRequest: MessageTypeDefinition<_xlb_v1_ListServicesRequest, _xlb_v1_ListServicesRequest__Output>
      ListServicesResponse: MessageTypeDefinition<_xlb_v1_ListServicesResponse, _xlb_v1_ListServicesResponse__Output>
      MapEntry: MessageTypeDefinition<_xlb_v1_MapEntry, _xlb_v1_MapEntry__Output>
      MapFill: MessageTypeDefinition<_xlb_v1_MapFill, _xlb_v1_MapFill__Output>
      PodInterface: MessageTypeDefinition<_xlb_v1_PodInterface, _xlb_v1_PodInterface__Output>
      ProgrammedEvent: MessageTypeDefinition<_xlb_v1_ProgrammedEvent, _xlb_v1_ProgrammedEvent__Output>
      Progress: MessageTypeDefinition<_xlb_v1_Progress, _xlb_v1_Progress__Output>
      Service: MessageTypeDefinition<_xlb_v1_Service, _xlb_v1_Service__Output>
      ServiceFilter: MessageTypeDefinition<_xlb_v1_ServiceFilter, _xlb_v1_ServiceFilter__Output>
      ServiceStats: MessageTypeDefinition<_xlb_v1_ServiceStats, _xlb_v1_ServiceStats__Output>
      SnatPorts: MessageTypeDefinition<_xlb_v1_SnatPorts, _xlb_v1_SnatPorts__Output>
      Source: MessageTypeDefinition<_xlb_v1_Source, _xlb_v1_Source__Output>
      StatsInfo: MessageTypeDefinition<_xlb_v1_StatsInfo, _xlb_v1_StatsInfo__Output>
      Status: SubtypeConstructor<typeof grpc.Client, _xlb_v1_StatusClient> & { service: _xlb_v1_StatusDefinition }
      StatusInfo: MessageTypeDefinition<_xlb_v1_StatusInfo, _xlb_v1_StatusInfo__Output>
      ToggleRequest: MessageTypeDefinition<_xlb_v1_ToggleRequest, _xlb_v1_ToggleRequest__Output>
      ToggleResponse: MessageTypeDefinition<_xlb_v1_ToggleResponse, _xlb_v1_ToggleResponse__Output>
      WatchEventsRequest: MessageTypeDefinition<_xlb_v1_WatchEventsRequest, _xlb_v1_WatchEventsRequest__Output>
    }
  }
}

