/**
 * Loads the .proto files of the gRPC door, from the source tree or from the compiled one.
 *
 * tsc does not copy .proto files to dist, so the files live only under src/server/grpc/proto.
 * From src (tsx, vitest) they sit next to this module; from dist/server/grpc they are found by
 * walking back to the package root and into src. INFERD_PROTO_DIR overrides both, for layouts
 * that ship the files elsewhere.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { projectVariable } from '../../config/environment.js';

export const PROTO_FILES = ['grpc_service.proto', 'health.proto'] as const;

/**
 * How messages become JavaScript objects. 64-bit integers arrive as decimal strings so that no
 * INT64/UINT64 value or shape loses precision (numbers stop being exact above 2^53); the codec
 * turns them into BigInt or checked numbers. Bytes stay Buffers that view the received message.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The directory holding the .proto files; throws naming every place it looked. */
export function protoDirectory(): string {
  const candidates = [
    projectVariable('INFERD_PROTO_DIR'),
    fileURLToPath(new URL('./proto/', import.meta.url)),
    fileURLToPath(new URL('../../../src/server/grpc/proto/', import.meta.url)),
  ].filter((dir): dir is string => dir !== undefined && dir !== '');
  for (const dir of candidates) {
    if (PROTO_FILES.every((file) => existsSync(`${dir.replace(/\/?$/, '/')}${file}`))) return dir;
  }
  throw new Error(`the gRPC .proto files (${PROTO_FILES.join(', ')}) are in none of: ${candidates.join(', ')}`);
}

let cached: protoLoader.PackageDefinition | undefined;

/** The parsed package definition of both services (parsed once per process). */
export function packageDefinition(): protoLoader.PackageDefinition {
  if (cached === undefined) {
    const dir = protoDirectory();
    cached = protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [dir] });
  }
  return cached;
}

export const INFERENCE_SERVICE = 'inference.GRPCInferenceService';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

export function serviceDefinition(name: typeof INFERENCE_SERVICE | typeof HEALTH_SERVICE): ServiceDefinition {
  const definition = packageDefinition()[name];
  if (definition === undefined || !('ModelInfer' in definition || 'Check' in definition)) {
    throw new Error(`service ${name} is missing from the loaded .proto files`);
  }
  return definition as unknown as ServiceDefinition;
}
