export { createGrpcServer, grpcStatusOf, requestIdOf, DEFAULT_MAX_MESSAGE_BYTES } from './server.js';
export type { GrpcServer, GrpcServerOptions, GrpcKeepaliveOptions, GrpcLogger } from './server.js';
export { TYPED_OUTPUT_PARAMETER } from './codec.js';
export { packageDefinition, protoDirectory, INFERENCE_SERVICE, HEALTH_SERVICE } from './proto.js';
