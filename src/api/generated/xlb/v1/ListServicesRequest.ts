// Original file: src/api/xlb/v1/status.proto


export interface ListServicesRequest {
}

export interface ListServicesRequest__Output {
}
