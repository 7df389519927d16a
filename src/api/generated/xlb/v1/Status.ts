// Original file: src/api/xlb/v1/status.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DecodedMap as _xlb_v1_DecodedMap, DecodedMap__Output as _xlb_v1_DecodedMap__Output } from '../../xlb/v1/DecodedMap.js';
import type { GetStatsRequest as _xlb_v1_GetStatsRequest, GetStatsRequest__Output as _xlb_v1_GetStatsRequest__Output } from '../../xlb/v1/GetStatsRequest.js';
import type { GetStatusRequest as _xlb_v1_GetStatusRequest, GetStatusRequest__Output as _xlb_v1_GetStatusRequest__Output } from '../../xlb/v1/GetStatusRequest.js';
import type { ListMapsRequest as _xlb_v1_ListMapsRequest, ListMapsRequest__Output as _xlb_v1_ListMapsRequest__Output } from '../../xlb/v1/ListMapsRequest.js';
import type { ListMapsResponse as _xlb_v1_ListMapsResponse, ListMapsResponse__Output as _xlb_v1_ListMapsResponse__Output } from '../../xlb/v1/ListMapsResponse.js';
import type { ListServicesRequest as _xlb_v1_ListServicesRequest, ListServicesRequest__Output as _xlb_v1_ListServicesRequest__Output } from '../../xlb/v1/ListServicesRequest.js';
import type { ListServicesResponse as _xlb_v1_ListServicesResponse, ListServicesResponse__Output as _xlb_v1_ListServicesResponse__Output } from '../../xlb/v1/ListServicesResponse.js';
import type { ProgrammedEvent as _xlb_v1_ProgrammedEvent, ProgrammedEvent__Output as _xlb_v1_ProgrammedEvent__Output } from '../../xlb/v1/ProgrammedEvent.js';
import type { StatsInfo as _xlb_v1_StatsInfo, StatsInfo__Output as _xlb_v1_StatsInfo__Output } from '../../xlb/v1/StatsInfo.js';
import type { StatusInfo as _xlb_v1_StatusInfo, StatusInfo__Output as _xlb_v1_StatusInfo__Output } from '../../xlb/v1/StatusInfo.js';
import type { ToggleRequest as _xlb_v1_ToggleRequest, ToggleRequest__Output as _xlb_v1_ToggleRequest__Output } from '../../xlb/v1/ToggleRequest.js';
import type { ToggleResponse as _xlb_v1_ToggleResponse, ToggleResponse__Output as _xlb_v1_ToggleResponse__Output } from '../../xlb/v1/ToggleResponse.js';
import type { WatchEventsRequest as _xlb_v1_WatchEventsRequest, WatchEventsRequest__Output as _xlb_v1_WatchEventsRequest__Output } from '../../xlb/v1/WatchEventsRequest.js';

export interface StatusClient extends grpc.Client {
  GetStats(argument: _xlb_v1_GetStatsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_StatsInfo__Output>;
  GetStats(argument: _xlb_v1_GetStatsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_StatsInfo__Output>;
  getStats(argument: _xlb_v1_GetStatsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_StatsInfo__Output>;
  getStats(argument: _xlb_v1_GetStatsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_StatsInfo__Output>;
  
  GetStatus(argument: _xlb_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _xlb_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _xlb_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _xlb_v1_GetStatusRequest, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _xlb_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _xlb_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _xlb_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _xlb_v1_GetStatusRequest, callback: grpc.requestCallback<_xlb_v1_StatusInfo__Output>): grpc.ClientUnaryCall;
  
  ListMaps(argument: _xlb_v1_ListMapsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  ListMaps(argument: _xlb_v1_ListMapsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  ListMaps(argument: _xlb_v1_ListMapsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  ListMaps(argument: _xlb_v1_ListMapsRequest, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  listMaps(argument: _xlb_v1_ListMapsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  listMaps(argument: _xlb_v1_ListMapsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  listMaps(argument: _xlb_v1_ListMapsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  listMaps(argument: _xlb_v1_ListMapsRequest, callback: grpc.requestCallback<_xlb_v1_ListMapsResponse__Output>): grpc.ClientUnaryCall;
  
  ListServices(argument: _xlb_v1_ListServicesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ListServicesResponse__Output>;
  ListServices(argument: _xlb_v1_ListServicesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ListServicesResponse__Output>;
  listServices(argument: _xlb_v1_ListServicesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ListServicesResponse__Output>;
  listServices(argument: _xlb_v1_ListServicesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ListServicesResponse__Output>;
  
  StreamMaps(argument: _xlb_v1_ListMapsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_DecodedMap__Output>;
  StreamMaps(argument: _xlb_v1_ListMapsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_DecodedMap__Output>;
  streamMaps(argument: _xlb_v1_ListMapsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_DecodedMap__Output>;
  streamMaps(argument: _xlb_v1_ListMapsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_DecodedMap__Output>;
  
  Toggle(argument: _xlb_v1_ToggleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  Toggle(argument: _xlb_v1_ToggleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  Toggle(argument: _xlb_v1_ToggleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  Toggle(argument: _xlb_v1_ToggleRequest, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  toggle(argument: _xlb_v1_ToggleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  toggle(argument: _xlb_v1_ToggleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  toggle(argument: _xlb_v1_ToggleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  toggle(argument: _xlb_v1_ToggleRequest, callback: grpc.requestCallback<_xlb_v1_ToggleResponse__Output>): grpc.ClientUnaryCall;
  
  WatchEvents(argument: _xlb_v1_WatchEventsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ProgrammedEvent__Output>;
  WatchEvents(argument: _xlb_v1_WatchEventsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ProgrammedEvent__Output>;
  watchEvents(argument: _xlb_v1_WatchEventsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ProgrammedEvent__Output>;
  watchEvents(argument: _xlb_v1_WatchEventsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_xlb_v1_ProgrammedEvent__Output>;
  
}

export interface StatusHandlers extends grpc.UntypedServiceImplementation {
  GetStats: grpc.handleServerStreamingCall<_xlb_v1_GetStatsRequest__Output, _xlb_v1_StatsInfo>;
  
  GetStatus: grpc.handleUnaryCall<_xlb_v1_GetStatusRequest__Output, _xlb_v1_StatusInfo>;
  
  ListMaps: grpc.handleUnaryCall<_xlb_v1_ListMapsRequest__Output, _xlb_v1_ListMapsResponse>;
  
  ListServices: grpc.handleServerStreamingCall<_xlb_v1_ListServicesRequest__Output, _xlb_v1_ListServicesResponse>;
  
  StreamMaps: grpc.handleServerStreamingCall<_xlb_v1_ListMapsRequest__Output, _xlb_v1_DecodedMap>;
  
  Toggle: grpc.handleUnaryCall<_xlb_v1_ToggleRequest__Output, _xlb_v1_ToggleResponse>;
  
  WatchEvents: grpc.handleServerStreamingCall<_xlb_v1_WatchEventsRequest__Output, _xlb_v1_ProgrammedEvent>;
  
}

export interface StatusDefinition extends grpc.ServiceDefinition {
  GetStats: MethodDefinition<_xlb_v1_GetStatsRequest, _xlb_v1_StatsInfo, _xlb_v1_GetStatsRequest__Output, _xlb_v1_StatsInfo__Output>
  GetStatus: MethodDefinition<_xlb_v1_GetStatusRequest, _xlb_v1_StatusInfo, _xlb_v1_GetStatusRequest__Output, _xlb_v1_StatusInfo__Output>
  ListMaps: MethodDefinition<_xlb_v1_ListMapsRequest, _xlb_v1_ListMapsResponse, _xlb_v1_ListMapsRequest__Output, _xlb_v1_ListMapsResponse__Output>
  ListServices: MethodDefinition<_xlb_v1_ListServicesRequest, _xlb_v1_ListServicesResponse, _xlb_v1_ListServicesRequest__Output, _xlb_v1_ListServicesResponse__Output>
  StreamMaps: MethodDefinition<_xlb_v1_ListMapsRequest, _xlb_v1_DecodedMap, _xlb_v1_ListMapsRequest__Output, _xlb_v1_DecodedMap__Output>
  Toggle: MethodDefinition<_xlb_v1_ToggleRequest, _xlb_v1_ToggleResponse, _xlb_v1_ToggleRequest__Output, _xlb_v1_ToggleResponse__Output>
  WatchEvents: MethodDefinition<_xlb_v1_WatchEventsRequest, _xlb_v1_ProgrammedEvent, _xlb_v1_WatchEventsRequest__Output, _xlb_v1_ProgrammedEvent__Output>
}
