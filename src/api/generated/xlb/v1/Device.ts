// Original file: src/api/xlb/v1/status.proto


export interface Device {
  'name'?: (string);
  'ifindex'?: (number);
  'xdpMode'?: (string);
  'progId'?: (number);
  'linkId'?: (number);
}

export interface Device__Output {
  'name': (string);
  'ifindex': (number);
  'xdpMode': (string);
  'progId': (number);
  'linkId': (number);
}
