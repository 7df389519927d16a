// Original file: src/api/xlb/v1/status.proto


export interface Drain {
  'flows'?: (number);
  'secondsLeft'?: (number);
}

export interface Drain__Output {
  'flows': (number);
  'secondsLeft': (number);
}
