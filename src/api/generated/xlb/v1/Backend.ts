// Original file: src/api/xlb/v1/status.proto


export interface Backend {
  'addr'?: (string);
  'port'?: (number);
  'state'?: (string);
  'selectable'?: (boolean);
  'local'?: (boolean);
  'weight'?: (number);
  'nodeName'?: (string);
  'zone'?: (string);
  'target'?: (string);
}

export interface Backend__Output {
  'addr': (string);
  'port': (number);
  'state': (string);
  'selectable': (boolean);
  'local': (boolean);
  'weight': (number);
  'nodeName': (string);
  'zone': (string);
  'target': (string);
}
