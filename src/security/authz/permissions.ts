/**
 * Permissions, roles and the map from what a call does to the permission it needs. Unknown
 * write actions need `admin`: a new endpoint is closed until it is given a permission here.
 */
export const PERMISSIONS = [
  'infer',
  'metadata',
  'feedback',
  'models:load',
  'registry:write',
  'traffic:write',
  'keys:write',
  'audit:read',
  'admin',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/** The permission an inference call needs. */
export const INFER_PERMISSION: Permission = 'infer';

const EXACT: Record<string, Permission> = {
  'server.metadata': 'metadata',
  'server.live': 'metadata',
  'server.ready': 'metadata',
  'server.startup': 'metadata',
  'server.metrics': 'metadata',
  'model.metadata': 'metadata',
  'model.ready': 'metadata',
  'model.stats': 'metadata',
  'model.config': 'metadata',
  'repository.index': 'metadata',
  'model.load': 'models:load',
  'model.unload': 'models:load',
  'keys.list': 'keys:write',
  'audit.read': 'audit:read',
  'audit.verify': 'audit:read',
  'audit.export': 'audit:read',
};

const AREA_WRITE: Record<string, Permission> = {
  registry: 'registry:write',
  traffic: 'traffic:write',
  experiment: 'traffic:write',
  keys: 'keys:write',
  feedback: 'feedback',
  model: 'models:load',
  audit: 'admin',
};

/**
 * The permission a control call needs: exact actions first, then by area (`registry.*` writes
 * need registry:write, reads need metadata), `feedback.*` needs feedback whether or not it writes.
 */
export function permissionFor(action: string, write: boolean): Permission {
  const exact = EXACT[action];
  if (exact !== undefined) return exact;
  const area = action.split('.', 1)[0] ?? '';
  if (area === 'feedback') return 'feedback';
  if (area === 'keys') return 'keys:write';
  if (area === 'audit' && !write) return 'audit:read';
  if (!write) return 'metadata';
  return AREA_WRITE[area] ?? 'admin';
}

/** A grant: permissions over models matching the patterns (all models when `models` is absent). */
export interface Grant {
  permissions: ReadonlySet<Permission>;
  models?: readonly RegExp[];
}

/** `fraud-*` → /^fraud-.*$/ ; `*` and `?` are the only wildcards. */
export function globToRegExp(pattern: string): RegExp {
  const known = compiled.get(pattern);
  if (known !== undefined) return known;
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${body}$`);
  // Patterns come from configuration and keys: few, so memoising them is bounded in practice.
  if (compiled.size < 10_000) compiled.set(pattern, regex);
  return regex;
}

const compiled = new Map<string, RegExp>();

export function matchesAny(name: string, patterns: readonly RegExp[]): boolean {
  return patterns.some((p) => p.test(name));
}
