// Original file: src/api/xlb/v1/status.proto


export interface PodInterface {
  'name'?: (string);
  'progIds'?: (number)[];
}

export interface PodInterface__Output {
  'name': (string);
  'progIds': (number)[];
}
