/**
 * The traffic policies of the server configuration: the `traffic:` key of `models:` entries,
 * keyed by the name clients use (see src/models/served.ts).
 */
import type { ServerConfig } from '../config/schema.js';
import { ConfigError } from '../config/validate.js';
import { parseReference } from '../registry/names.js';
import { parseTrafficConfig, type TrafficPolicy } from './config.js';

export function configuredTrafficPolicies(entries: ServerConfig['models']): Map<string, TrafficPolicy> {
  const policies = new Map<string, TrafficPolicy>();
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    if (entry.traffic === undefined) return;
    const where = `models[${i}].traffic`;
    try {
      const name = entry.repository ?? entry.name ?? parseReference(entry.registry ?? '').name;
      if (policies.has(name)) throw new ConfigError(`${where}: model '${name}' already has a traffic policy`);
      policies.set(name, parseTrafficConfig(entry.traffic, name, where));
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  });
  if (problems.length > 0) throw new ConfigError(`configuration: ${problems.join('; ')}`);
  return policies;
}
