/**
 * The environment variables inferd reads. `INFERD_<KEY>` variables override configuration keys
 * (see load.ts); the ones listed here are the project's own settings outside the configuration
 * file and are never read as configuration keys. README "Environment variables" documents them.
 */
export const PROJECT_VARIABLES = {
  INFERD_CONFIG: 'path of the configuration file (as --config)',
  INFERD_HOME: 'home directory for the default SQLite registry and artifacts (default ~/.inferd)',
  INFERD_REGISTRY: 'registry URL: sqlite:<file> or postgres://... (as --registry)',
  INFERD_USER: 'who registry events and audit records name when no caller is authenticated (default: the OS user)',
  INFERD_PROTO_DIR: 'directory holding the gRPC .proto files, for layouts where they are not beside the code',
  INFERD_DEBUG: 'set to print stack traces of unexpected CLI errors',
  INFERD_SETUP_CACHE: 'where the test set-up keeps downloads and builds (default ~/.cache/inferd/setup)',
  INFERD_SETUP_SKIP: 'set-up components the test command skips, by name',
} as const satisfies Record<string, string>;

export type ProjectVariable = keyof typeof PROJECT_VARIABLES;

export function isProjectVariable(name: string): name is ProjectVariable {
  return Object.hasOwn(PROJECT_VARIABLES, name);
}

/** Reads one of the project's own variables; an empty value counts as unset. */
export function projectVariable(name: ProjectVariable, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}
