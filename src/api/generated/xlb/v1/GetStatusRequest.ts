// Original file: src/api/xlb/v1/status.proto


export interface GetStatusRequest {
}

export interface GetStatusRequest__Output {
}
