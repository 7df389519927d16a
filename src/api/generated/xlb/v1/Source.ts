// Original file: src/api/xlb/v1/status.proto


export interface Source {
  'kind'?: (string);
  'synced'?: (boolean);
  'connection'?: (string);
}

export interface Source__Output {
  'kind': (string);
  'synced': (boolean);
  'connection': (string);
}
