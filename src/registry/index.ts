/** The model registry's public surface. */
export { Registry } from './registry.js';
export type { RegistryOptions, RegisterOptions, ResolvedArtifact, WatchOptions } from './registry.js';
export { openRegistry, openStore, defaultRegistryUrl, inferdHome } from './open.js';
export type { OpenRegistryOptions, StoreOptions } from './open.js';
export { RegistryConflictError } from './errors.js';
export { ArtifactStore, sha256File } from './artifacts.js';
export { parseReference, parseSelector, validateModelName, validateAlias, validateStage } from './names.js';
export type { Reference, Selector } from './names.js';
export { proposeSemver, compareSemver, parseSemver, signaturesEqual } from './semver.js';
export { readOnnxSignature, validateSignature, onnxTypeToDatatype } from './signature.js';
export * from './types.js';
