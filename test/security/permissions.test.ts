/** The action → permission table and role grants with model scopes. */
import { describe, expect, it } from 'vitest';
import { globToRegExp, permissionFor } from '../../src/security/authz/permissions.js';
import { RoleTable } from '../../src/security/authz/policy.js';
import type { ScopedIdentity } from '../../src/security/authn/policy.js';

describe('permissions', () => {
  it('maps every control action to the permission it needs; unknown writes need admin', () => {
    const cases: Array<[string, boolean, string]> = [
      ['server.metadata', false, 'metadata'],
      ['server.ready', false, 'metadata'],
      ['model.metadata', false, 'metadata'],
      ['model.ready', false, 'metadata'],
      ['model.stats', false, 'metadata'],
      ['repository.index', false, 'metadata'],
      ['model.load', true, 'models:load'],
      ['model.unload', true, 'models:load'],
      ['registry.register', true, 'registry:write'],
      ['registry.alias', true, 'registry:write'],
      ['registry.stage', true, 'registry:write'],
      ['registry.delete', true, 'registry:write'],
      ['registry.events', false, 'metadata'],
      ['traffic.set', true, 'traffic:write'],
      ['experiment.start', true, 'traffic:write'],
      ['traffic.get', false, 'metadata'],
      ['keys.create', true, 'keys:write'],
      ['keys.list', false, 'keys:write'],
      ['audit.export', false, 'audit:read'],
      ['feedback.submit', true, 'feedback'],
      ['cache.flush', true, 'admin'],
      ['brand.new', true, 'admin'],
    ];
    for (const [action, write, permission] of cases) expect(permissionFor(action, write), action).toBe(permission);
  });

  it('globs match whole names with * and ? only', () => {
    expect(globToRegExp('fraud-*').test('fraud-eu')).toBe(true);
    expect(globToRegExp('fraud-*').test('xfraud-eu')).toBe(false);
    expect(globToRegExp('m?').test('m1')).toBe(true);
    expect(globToRegExp('a.b').test('aXb')).toBe(false);
    expect(globToRegExp('(x)+').test('(x)+')).toBe(true);
  });

  it('grants scoped to models cover model-less calls only for metadata; admin covers all; key scopes narrow roles', () => {
    const table = new RoleTable({
      ops: { permissions: ['models:load', 'metadata'], models: ['fraud-*'] },
      reader: { permissions: ['infer', 'metadata'] },
    });
    const ops: ScopedIdentity = { subject: 'u', method: 'jwt', roles: ['ops'] };
    expect(table.allows(ops, 'models:load', 'fraud-eu')).toBe(true);
    expect(table.allows(ops, 'models:load', 'iris')).toBe(false);
    expect(table.allows(ops, 'models:load', undefined)).toBe(false);
    expect(table.allows(ops, 'metadata', undefined)).toBe(true);
    expect(table.allows({ subject: 'a', method: 'jwt', roles: ['admin'] }, 'keys:write', undefined)).toBe(true);
    expect(table.allows({ subject: 'n', method: 'jwt', roles: ['no-such-role'] }, 'infer', 'iris')).toBe(false);
    const scopedKey: ScopedIdentity = { subject: 'key:1', method: 'api_key', roles: ['reader'], models: ['iris'] };
    expect(table.allows(scopedKey, 'infer', 'iris')).toBe(true);
    expect(table.allows(scopedKey, 'infer', 'digits')).toBe(false);
    const scopedAdmin: ScopedIdentity = { subject: 'key:2', method: 'api_key', roles: ['admin'], models: ['iris'] };
    expect(table.allows(scopedAdmin, 'models:load', 'digits')).toBe(false);
    expect(table.allows(scopedAdmin, 'keys:write', undefined)).toBe(false);
  });
});
