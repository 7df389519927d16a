// Original file: src/api/xlb/v1/status.proto


export interface SnatPorts {
  'first'?: (number);
  'last'?: (number);
  'skipped'?: (number);
  'used'?: (number);
}

export interface SnatPorts__Output {
  'first': (number);
  'last': (number);
  'skipped': (number);
  'used': (number);
}
