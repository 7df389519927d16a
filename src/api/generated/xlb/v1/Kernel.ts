// Original file: src/api/xlb/v1/status.proto

import type { KernelCheck as _xlb_v1_KernelCheck, KernelCheck__Output as _xlb_v1_KernelCheck__Output } from '../../xlb/v1/KernelCheck.js';

export interface Kernel {
  'release'?: (string);
  'checks'?: (_xlb_v1_KernelCheck)[];
}

export interface Kernel__Output {
  'release': (string);
  'checks': (_xlb_v1_KernelCheck__Output)[];
}
