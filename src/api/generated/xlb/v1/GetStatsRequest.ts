// Original file: src/api/xlb/v1/status.proto


export interface GetStatsRequest {
}

export interface GetStatsRequest__Output {
}
