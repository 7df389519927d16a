// Original file: src/api/xlb/v1/status.proto


export interface MapEntry {
  'keyJson'?: (string);
  'valueJson'?: (string);
}

export interface MapEntry__Output {
  'keyJson': (string);
  'valueJson': (string);
}
