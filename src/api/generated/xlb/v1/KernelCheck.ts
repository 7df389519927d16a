// Original file: src/api/xlb/v1/status.proto


export interface KernelCheck {
  'name'?: (string);
  'ok'?: (boolean);
  'detail'?: (string);
}

export interface KernelCheck__Output {
  'name': (string);
  'ok': (boolean);
  'detail': (string);
}
