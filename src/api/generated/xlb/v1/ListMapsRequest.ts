// Original file: src/api/xlb/v1/status.proto


export interface ListMapsRequest {
  'names'?: (string)[];
}

export interface ListMapsRequest__Output {
  'names': (string)[];
}
