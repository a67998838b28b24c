/**
 * Semantic version labels of model versions. MAJOR: the signature changed (callers break),
 * MINOR: retrained or compatible change, PATCH: a fix. When a label is not given, one is
 * proposed from the signatures (see proposeSemver).
 */
import { InvalidInputError } from '../core/errors.js';
import type { TensorMetadata } from '../core/types.js';
import type { Signature } from './types.js';

export interface Semver {
  major: number;
  minor: number;
  patch: number;
  prerelease: string[];
}

const SEMVER =
  /^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?$/;

export function parseSemver(text: string): Semver {
  const match = SEMVER.exec(text);
  if (match === null) throw new InvalidInputError(`'${text}' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0 or 2.0.0-rc.1)`);
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3]),
    prerelease: match[4] === undefined ? [] : match[4].split('.'),
  };
}

export function formatSemver(v: Semver): string {
  const core = `${v.major}.${v.minor}.${v.patch}`;
  return v.prerelease.length === 0 ? core : `${core}-${v.prerelease.join('.')}`;
}

/** Precedence as in semver.org §11. */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  for (const key of ['major', 'minor', 'patch'] as const) {
    if (x[key] !== y[key]) return x[key] < y[key] ? -1 : 1;
  }
  if (x.prerelease.length === 0 || y.prerelease.length === 0) {
    return x.prerelease.length === y.prerelease.length ? 0 : x.prerelease.length === 0 ? 1 : -1;
  }
  const n = Math.min(x.prerelease.length, y.prerelease.length);
  for (let i = 0; i < n; i++) {
    const p = x.prerelease[i]!;
    const q = y.prerelease[i]!;
    if (p === q) continue;
    const pn = /^[0-9]+$/.test(p);
    const qn = /^[0-9]+$/.test(q);
    if (pn && qn) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return Math.sign(x.prerelease.length - y.prerelease.length);
}

export function bumpSemver(text: string, part: 'major' | 'minor' | 'patch'): string {
  const v = parseSemver(text);
  if (part === 'major') return formatSemver({ major: v.major + 1, minor: 0, patch: 0, prerelease: [] });
  if (part === 'minor') return formatSemver({ major: v.major, minor: v.minor + 1, patch: 0, prerelease: [] });
  return formatSemver({ major: v.major, minor: v.minor, patch: v.patch + 1, prerelease: [] });
}

function sameTensors(a: TensorMetadata[], b: TensorMetadata[]): boolean {
  if (a.length !== b.length) return false;
  const byName = new Map(b.map((t) => [t.name, t]));
  return a.every((t) => {
    const other = byName.get(t.name);
    return (
      other !== undefined &&
      other.datatype === t.datatype &&
      other.shape.length === t.shape.length &&
      other.shape.every((dim, i) => dim === t.shape[i])
    );
  });
}

/** Same input and output names, datatypes and shapes (order of tensors does not matter). */
export function signaturesEqual(a: Signature, b: Signature): boolean {
  return sameTensors(a.inputs, b.inputs) && sameTensors(a.outputs, b.outputs);
}

/**
 * The label for a new version: 1.0.0 for the first one; otherwise a major bump when the
 * signature differs from the previous version's, else a minor bump. The bump starts from the
 * highest label in use so a proposal never collides with an existing one.
 */
export function proposeSemver(previous: { signature: Signature } | undefined, highest: string | undefined, signature: Signature): string {
  if (previous === undefined || highest === undefined) return '1.0.0';
  return bumpSemver(highest, signaturesEqual(previous.signature, signature) ? 'minor' : 'major');
}
