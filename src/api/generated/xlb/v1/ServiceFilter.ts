// Original file: src/api/xlb/v1/status.proto


export interface ServiceFilter {
  'namespace'?: (string);
  'name'?: (string);
  'type'?: (string);
}

export interface ServiceFilter__Output {
  'namespace': (string);
  'name': (string);
  'type': (string);
}
