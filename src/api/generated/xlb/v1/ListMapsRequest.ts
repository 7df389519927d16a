// Original file: src/api/xlb/v1/status.proto


export interface ListMapsRequest {
}

export interface ListMapsRequest__Output {
}
