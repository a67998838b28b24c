/**
 * Which variant serves a request.
 *
 * With a key (a user id, a session), assignment is weighted rendezvous hashing: every variant
 * scores the key as -weight / ln(u), u a uniform hash of (key, variant name) in (0, 1), and the
 * highest score wins. The winner has probability weight / total, the same key always gets the
 * same variant for the same weights, and a weight change moves only the keys it must: raising
 * one variant's weight raises only its own scores, so keys move into it and nowhere else.
 * Variants are told apart by name, so their order in the configuration does not matter.
 *
 * Without a key, a weighted random draw.
 */
import { createHash } from 'node:crypto';
import type { InferenceRequest, RequestContext } from '../core/types.js';
import type { StickyKey } from './config.js';

export interface Weighted {
  name: string;
  weight: number;
}

const TWO_POW_53 = 2 ** 53;

/** A uniform number in (0, 1) from (key, variant): the first 53 bits of SHA-256. */
export function hashPoint(key: string, variant: string): number {
  const digest = createHash('sha256').update(variant).update('\u0000').update(key).digest();
  const high = digest.readUInt32BE(0) >>> 11; // 21 bits
  const low = digest.readUInt32BE(4); // 32 bits
  return (high * 2 ** 32 + low + 0.5) / TWO_POW_53;
}

/** The variant a key is pinned to under these weights (weights need not sum to 100). */
export function assignByKey<T extends Weighted>(key: string, variants: readonly T[]): T | undefined {
  let best: T | undefined;
  let bestScore = -Infinity;
  for (const v of variants) {
    if (!(v.weight > 0)) continue;
    const score = -v.weight / Math.log(hashPoint(key, v.name));
    if (score > bestScore) {
      bestScore = score;
      best = v;
    }
  }
  return best;
}

/** A weighted random variant; `random` returns [0, 1). */
export function assignRandomly<T extends Weighted>(variants: readonly T[], random: () => number = Math.random): T | undefined {
  let total = 0;
  for (const v of variants) if (v.weight > 0) total += v.weight;
  if (total <= 0) return undefined;
  let point = random() * total;
  let last: T | undefined;
  for (const v of variants) {
    if (!(v.weight > 0)) continue;
    last = v;
    if (point < v.weight) return v;
    point -= v.weight;
  }
  return last;
}

/** Reads the sticky key of a request: a header / gRPC metadata value, or a request parameter. */
export function stickyKeyOf(sticky: StickyKey | undefined, ctx: RequestContext, request: InferenceRequest): string | undefined {
  if (sticky === undefined) return undefined;
  if (sticky.header !== undefined) {
    const value = ctx.header?.(sticky.header);
    return value === undefined || value === '' ? undefined : value;
  }
  const value = request.parameters?.[sticky.parameter!];
  return value === undefined || value === '' ? undefined : String(value);
}

export function assign<T extends Weighted>(variants: readonly T[], key: string | undefined, random?: () => number): T | undefined {
  return key === undefined ? assignRandomly(variants, random) : assignByKey(key, variants);
}
