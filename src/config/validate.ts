/**
 * Validation of configuration documents against TypeBox schemas, with errors that name the key:
 * "unknown key 'dynamic_batching.max_delay'", "'max_batch_size' must be >= 0".
 */
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { InvalidInputError } from '../core/errors.js';

export class ConfigError extends InvalidInputError {}

function keyPath(instancePath: string): string {
  return instancePath.replace(/^\//, '').replace(/\//g, '.');
}

/** Validates `value`, fills defaults, and returns it typed; throws ConfigError listing every problem. */
export function validate<T>(schema: TSchema, value: unknown, where: string): T {
  const withDefaults = Value.Default(schema, Value.Clone(value ?? {}));
  const problems: string[] = [];
  for (const error of Value.Errors(schema, withDefaults)) {
    const e = error as { keyword: string; instancePath: string; message: string; params: Record<string, unknown> };
    if (e.keyword === 'boolean') continue; // reported by the additionalProperties entry
    const at = keyPath(e.instancePath);
    if (e.keyword === 'additionalProperties') {
      for (const key of e.params.additionalProperties as string[]) problems.push(`unknown key '${at ? `${at}.` : ''}${key}'`);
    } else if (e.keyword === 'required') {
      for (const key of (e.params.requiredProperties as string[] | undefined) ?? []) problems.push(`missing key '${at ? `${at}.` : ''}${key}'`);
      if (!e.params.requiredProperties) problems.push(`${at || 'document'}: ${e.message}`);
    } else {
      problems.push(`'${at || '(root)'}' ${e.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`${where}: ${[...new Set(problems)].join('; ')}`);
  return withDefaults as T;
}
