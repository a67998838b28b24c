/**
 * Reading JSON number literals from bytes with exactly the value JSON.parse gives (the double
 * nearest to the decimal), without building a string per number. Literals of up to 19
 * significant digits and a decimal exponent within ±22 are computed with error-free double
 * arithmetic and kept only when the exact value cannot lie across a rounding boundary; every
 * other literal is read by Number() from its text.
 */

const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
/** Veltkamp's constant for splitting a double into two 26-bit halves. */
const SPLITTER = 134217729;
/** Bound on the error of the double-double result, relative to it (the computation's is about 2^-103). */
const TOLERANCE = 2 ** -80;
/** Bound on the error of a plain double approximation (about 2^-51), relative to it. */
const FLOAT32_MARGIN = 2 ** -48;

let productHigh = 0;
let productLow = 0;

/** a × b as productHigh + productLow exactly (Dekker), for operands far from overflow. */
function twoProduct(a: number, b: number): void {
  const p = a * b;
  let c = SPLITTER * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLITTER * b;
  const bh = c - (c - b);
  const bl = b - bh;
  productHigh = p;
  productLow = al * bl - (((p - ah * bh) - al * bh) - ah * bl);
}

/**
 * The double nearest to (m1 × 10^k2 + m2) × 10^e10, where m1 < 10^15, m2 < 10^k2, k2 ≤ 4 and
 * |e10| ≤ 22; NaN when the fast computation cannot decide the rounding.
 */
function nearestDouble(m1: number, m2: number, k2: number, e10: number): number {
  // The integer mantissa M exactly as high + low.
  let high: number;
  let low: number;
  if (k2 === 0) {
    high = m1;
    low = 0;
  } else {
    twoProduct(m1, POW10[k2]!);
    const s = productHigh + m2;
    const bb = s - productHigh;
    const t = productHigh - (s - bb) + (m2 - bb);
    // t and productLow are integers below 2^12: their sum is exact.
    const rest = t + productLow;
    high = s + rest;
    low = rest - (high - s);
  }
  let q1: number;
  let q2: number;
  if (e10 < 0) {
    const p = POW10[-e10]!;
    q1 = high / p;
    twoProduct(q1, p);
    q2 = (high - productHigh - productLow + low) / p;
  } else {
    const p = POW10[e10]!;
    twoProduct(high, p);
    q1 = productHigh;
    q2 = productLow + low * p;
  }
  const margin = Math.abs(q1) * TOLERANCE;
  const below = q1 + (q2 - margin);
  return below === q1 + (q2 + margin) ? below : NaN;
}

/** What `scanNumber` found besides the value, for the literal it read last. */
export const scanned = {
  /** Index just past the literal; -1 when the bytes were not a JSON number. */
  end: 0,
  /** The literal has neither fraction nor exponent. */
  integer: false,
};

/**
 * Reads the JSON number literal at `start` of `bytes` and returns its value as JSON.parse gives
 * it; `scanned` tells where it ended and its kind. `text(start, end)`
 * gives the literal's text for the rare slow path. With `float32`, the value returned is only
 * guaranteed to round to the same FP32 as JSON.parse's double does (it is that FP32), which
 * spares the exact double arithmetic for most literals of 16 to 19 digits.
 */
export function scanNumber(bytes: Uint8Array, start: number, text: (start: number, end: number) => string, float32 = false): number {
  let p = start;
  let c = bytes[p]!;
  const negative = c === 0x2d;
  if (negative) c = bytes[++p]!;
  // The first 15 significant digits in m1 (exact), the next 4 in m2; digits beyond 19 only counted.
  let m1 = 0;
  let m2 = 0;
  let k2 = 0;
  let significant = 0;
  let e10 = 0;
  if (c === 0x30) {
    c = bytes[++p]!;
    if (c >= 0x30 && c <= 0x39) return invalid();
  } else if (c >= 0x31 && c <= 0x39) {
    do {
      if (significant < 15) m1 = m1 * 10 + (c - 0x30);
      else if (significant < 19) {
        m2 = m2 * 10 + (c - 0x30);
        k2++;
      } else e10++;
      significant++;
      c = bytes[++p]!;
    } while (c >= 0x30 && c <= 0x39);
  } else return invalid();
  let integer = true;
  if (c === 0x2e) {
    integer = false;
    c = bytes[++p]!;
    if (!(c >= 0x30 && c <= 0x39)) return invalid();
    if (significant === 0) {
      while (c === 0x30) {
        e10--;
        c = bytes[++p]!;
      }
    }
    // Three plain loops rather than one with a branch per digit: digits into m1, into m2, past both.
    while (significant < 15 && c >= 0x30 && c <= 0x39) {
      m1 = m1 * 10 + (c - 0x30);
      e10--;
      significant++;
      c = bytes[++p]!;
    }
    while (significant < 19 && c >= 0x30 && c <= 0x39) {
      m2 = m2 * 10 + (c - 0x30);
      k2++;
      e10--;
      significant++;
      c = bytes[++p]!;
    }
    while (c >= 0x30 && c <= 0x39) {
      significant++;
      c = bytes[++p]!;
    }
  }
  if (c === 0x65 || c === 0x45) {
    integer = false;
    c = bytes[++p]!;
    let exponentNegative = false;
    if (c === 0x2b || c === 0x2d) {
      exponentNegative = c === 0x2d;
      c = bytes[++p]!;
    }
    if (!(c >= 0x30 && c <= 0x39)) return invalid();
    let exponent = 0;
    do {
      if (exponent < 100000) exponent = exponent * 10 + (c - 0x30);
      c = bytes[++p]!;
    } while (c >= 0x30 && c <= 0x39);
    e10 += exponentNegative ? -exponent : exponent;
  }
  scanned.end = p;
  scanned.integer = integer;
  if (significant === 0) return negative ? -0 : 0;
  if (significant <= 19 && e10 >= -22 && e10 <= 22) {
    // m1 < 10^15 and 10^|e10| are exact doubles: one operation rounds correctly (Clinger).
    if (k2 === 0) return negative ? -(e10 < 0 ? m1 / POW10[-e10]! : m1 * POW10[e10]!) : e10 < 0 ? m1 / POW10[-e10]! : m1 * POW10[e10]!;
    if (float32) {
      // Three roundings put the approximation within 2^-51 of the value, relative; when every
      // double that close rounds to one FP32, that FP32 is the answer (rounding is monotonic).
      const m = m1 * POW10[k2]! + m2;
      const approximation = e10 < 0 ? m / POW10[-e10]! : m * POW10[e10]!;
      const margin = approximation * FLOAT32_MARGIN;
      const low = Math.fround(approximation - margin);
      if (low === Math.fround(approximation + margin)) return negative ? -low : low;
    }
    const x = nearestDouble(m1, m2, k2, e10);
    if (x === x) return negative ? -x : x;
  }
  return Number(text(start, p));
}

function invalid(): number {
  scanned.end = -1;
  scanned.integer = false;
  return NaN;
}
