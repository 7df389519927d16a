// Original file: src/api/xlb/v1/status.proto


export interface Progress {
  'stage'?: (string);
  'done'?: (number);
  'total'?: (number);
}

export interface Progress__Output {
  'stage': (string);
  'done': (number);
  'total': (number);
}
