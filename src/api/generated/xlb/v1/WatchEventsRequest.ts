// Original file: src/api/xlb/v1/status.proto


export interface WatchEventsRequest {
}

export interface WatchEventsRequest__Output {
}
