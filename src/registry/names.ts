/**
 * Validation of everything a caller names (models, aliases, stages, tags) and the parsing of
 * references: `name`, `name@latest`, `name@3`, `name@Production`, `name@champion`.
 */
import { InvalidInputError } from '../core/errors.js';
import { STAGES, type Stage } from './types.js';

const NAME = /^[A-Za-z0-9_.-]+$/;
const ALIAS = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const MAX_NAME = 128;
const MAX_TAG_KEY = 256;
const MAX_TAG_VALUE = 5000;

/**
 * Model names become directory names and URL path segments, hence the narrow alphabet
 * and the refusal of `.` and `..`.
 */
export function validateModelName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidInputError('a model name must not be empty');
  if (name.length > MAX_NAME) throw new InvalidInputError(`model name '${name.slice(0, 40)}...' is longer than ${MAX_NAME} characters`);
  if (name === '.' || name === '..') throw new InvalidInputError(`'${name}' is not a valid model name`);
  if (!NAME.test(name)) {
    throw new InvalidInputError(`model name '${name}' may only contain letters, digits, '_', '-' and '.'`);
  }
  return name;
}

/** Case-insensitive stage lookup: 'production' → 'Production'. */
export function parseStage(value: string): Stage | undefined {
  const lower = value.toLowerCase();
  return STAGES.find((stage) => stage.toLowerCase() === lower);
}

export function validateStage(value: string): Stage {
  const stage = parseStage(value);
  if (stage === undefined) throw new InvalidInputError(`'${value}' is not a stage (one of ${STAGES.join(', ')})`);
  return stage;
}

/**
 * Aliases start with a letter or '_' so they never read as version numbers, and may not be a
 * stage name or `latest`, which references already give a meaning.
 */
export function validateAlias(alias: string): string {
  if (typeof alias !== 'string' || alias.length === 0) throw new InvalidInputError('an alias must not be empty');
  if (alias.length > MAX_NAME) throw new InvalidInputError(`alias '${alias.slice(0, 40)}...' is longer than ${MAX_NAME} characters`);
  if (!ALIAS.test(alias)) {
    throw new InvalidInputError(`alias '${alias}' must start with a letter or '_' and contain only letters, digits, '_', '-' and '.'`);
  }
  if (parseStage(alias) !== undefined || alias.toLowerCase() === 'latest') {
    throw new InvalidInputError(`'${alias}' is reserved (stage names and 'latest') and cannot be an alias`);
  }
  return alias;
}

export function validateVersionNumber(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1) throw new InvalidInputError(`'${version}' is not a version number`);
  return version;
}

/** Parses a version number given as text ('3'); anything else is an error. */
export function parseVersionNumber(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new InvalidInputError(`'${text}' is not a version number`);
  return validateVersionNumber(Number(text));
}

export function validateTags(tags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(tags)) {
    if (key.length === 0 || key.length > MAX_TAG_KEY) throw new InvalidInputError(`tag key '${key}' must have 1 to ${MAX_TAG_KEY} characters`);
    if (typeof value !== 'string') throw new InvalidInputError(`tag '${key}' must have a string value`);
    if (value.length > MAX_TAG_VALUE) throw new InvalidInputError(`tag '${key}' is longer than ${MAX_TAG_VALUE} characters`);
    out[key] = value;
  }
  return out;
}

export type Selector =
  | { kind: 'latest' }
  | { kind: 'version'; version: number }
  | { kind: 'stage'; stage: Stage }
  | { kind: 'alias'; alias: string };

export interface Reference {
  name: string;
  selector: Selector;
}

/** Reads the part after '@': a version number, a stage, `latest` or an alias. */
export function parseSelector(text: string | undefined): Selector {
  if (text === undefined || text === '' || text.toLowerCase() === 'latest') return { kind: 'latest' };
  if (/^[0-9]+$/.test(text)) return { kind: 'version', version: parseVersionNumber(text) };
  const stage = parseStage(text);
  if (stage !== undefined) return { kind: 'stage', stage };
  return { kind: 'alias', alias: validateAlias(text) };
}

/** `name[@selector]`. Names cannot contain '@', so the first '@' splits. */
export function parseReference(reference: string): Reference {
  const at = reference.indexOf('@');
  const name = at < 0 ? reference : reference.slice(0, at);
  const selector = at < 0 ? undefined : reference.slice(at + 1);
  if (at >= 0 && selector === '') throw new InvalidInputError(`reference '${reference}' has nothing after '@'`);
  return { name: validateModelName(name), selector: parseSelector(selector) };
}

export function formatSelector(selector: Selector): string {
  switch (selector.kind) {
    case 'latest':
      return 'latest';
    case 'version':
      return String(selector.version);
    case 'stage':
      return selector.stage;
    case 'alias':
      return selector.alias;
  }
}
