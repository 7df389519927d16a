// Original file: src/api/xlb/v1/status.proto


export interface ToggleRequest {
  'on'?: (boolean);
}

export interface ToggleRequest__Output {
  'on': (boolean);
}
