// Loads xlb.v1 from its .proto at run time. The .proto lives in the source tree
// (src/api/xlb/v1/status.proto) and is found from the package root, so the same code works
// from src/ and from dist/src/.
//
// Types in ./generated are produced from the same file; regenerate after editing the .proto:
//   npx proto-loader-gen-types --longs=Number --enums=String --defaults --oneofs \
//     --grpcLib=@grpc/grpc-js --importFileExtension=.js -O src/api/generated src/api/xlb/v1/status.proto
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/status.js';

export const PROTO_REL_PATH = 'src/api/xlb/v1/status.proto';

/** Same options the generated types were built with: plain numbers, string enums, defaults. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The directory holding xlb's package.json, walking up from this module. */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && isXlbPackage(pj)) return dir;
    if (dirname(dir) === dir) throw new Error(`xlb package root not found above ${from}`);
  }
}

function isXlbPackage(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { name?: string }).name === 'xlb';
  } catch {
    return false;
  }
}

export function protoPath(): string {
  const p = join(packageRoot(), PROTO_REL_PATH);
  if (!existsSync(p)) throw new Error(`status API definition missing: ${p}`);
  return p;
}

let cached: { def: protoLoader.PackageDefinition; grpcObj: ProtoGrpcType } | undefined;

export function loadStatusProto(): { def: protoLoader.PackageDefinition; grpcObj: ProtoGrpcType } {
  if (!cached) {
    const def = protoLoader.loadSync(protoPath(), LOADER_OPTIONS);
    cached = { def, grpcObj: grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType };
  }
  return cached;
}
