// Original file: src/api/xlb/v1/status.proto


export interface ToggleResponse {
  'enabled'?: (boolean);
  'reason'?: (string);
}

export interface ToggleResponse__Output {
  'enabled': (boolean);
  'reason': (string);
}
