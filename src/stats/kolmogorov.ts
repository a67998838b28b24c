/**
 * The distribution of the one-sample two-sided Kolmogorov-Smirnov statistic D_n for a finite n
 * (scipy's `kstwo`), used by the two-sample test's asymptotic p-value, which scipy evaluates as
 * kstwo.sf(D, round(m·n/(m+n))).
 *
 * The algorithm follows Simard & L'Ecuyer, "Computing the Two-Sided Kolmogorov-Smirnov
 * Distribution" (J. Stat. Software 39(11), 2011), with the same regions as scipy so the two agree
 * to rounding:
 *   - n·x ≤ 1 and n·x ≥ n-1: Ruben-Gambino closed forms;
 *   - x ≥ 0.5, or far in the tail: twice the one-sided Smirnov probability (Birnbaum-Tingey);
 *   - small n·x²: the Durbin matrix (Marsaglia-Tsang-Wang);
 *   - moderate n·x² for n ≤ 140: the Pomeranz recursion;
 *   - otherwise the Pelz-Good asymptotic series.
 */
import { logGamma } from './distributions.js';

const SCALE_BITS = 128;
const BIG = 2 ** SCALE_BITS;
const SMALL = 2 ** -SCALE_BITS;
const PI2 = Math.PI ** 2;
const PI4 = Math.PI ** 4;
const PI6 = Math.PI ** 6;
const SQRT_2PI = Math.sqrt(2 * Math.PI);
const LOG_2PI = Math.log(2 * Math.PI);
/** Stirling series coefficients for log(n!) - n·log(n), highest order first. */
const STIRLING = [
  -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
  -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2,
];

const clip = (p: number): number => Math.min(1, Math.max(0, p));

/** log(n! / n^n) by Stirling's series (n > 140). */
function logFactorialOverPower(n: number): number {
  const r = 1 / n;
  let poly = 0;
  for (const c of STIRLING) poly = poly * (r / n) + c;
  return Math.log(n) / 2 - n + LOG_2PI / 2 + r * poly;
}

/**
 * One-sided Smirnov upper tail P(D⁺_n ≥ x) by the Birnbaum-Tingey sum. All its terms are
 * positive, so summing them in log space keeps the relative precision.
 */
export function smirnovSf(n: number, x: number): number {
  if (x <= 0) return 1;
  if (x >= 1) return 0;
  const last = Math.floor(n * (1 - x));
  const logNFact = logGamma(n + 1);
  let sum = 0;
  for (let v = 0; v <= last; v++) {
    const a = x + v / n;
    const b = 1 - a;
    let logTerm = logNFact - logGamma(v + 1) - logGamma(n - v + 1) + (v - 1) * Math.log(a);
    if (n - v > 0) {
      if (b <= 0) continue;
      logTerm += (n - v) * Math.log(b);
    }
    sum += Math.exp(logTerm);
  }
  return clip(sum * x);
}

/** P(D_n ≤ x) by the Durbin matrix H^n (Marsaglia, Tsang & Wang 2003), with explicit scaling. */
function durbinCdf(n: number, x: number): number {
  if (x >= 1) return 1;
  const nd = n * x;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;
  const invFact = new Float64Array(m + 1);
  invFact[0] = 1;
  for (let j = 1; j <= m; j++) invFact[j] = invFact[j - 1]! / j;
  const v = new Float64Array(m);
  for (let j = 1; j <= m; j++) v[j - 1] = (1 - h ** j) * invFact[j]!;
  v[m - 1] = (1 + Math.max(2 * h - 1, 0) ** m - 2 * h ** m) * invFact[m]!;
  let H: Float64Array<ArrayBuffer> = new Float64Array(m * m);
  for (let r = 0; r < m; r++) {
    for (let c = 1; c < m; c++) {
      const d = r - c + 1;
      if (d >= 0) H[r * m + c] = invFact[d]!;
    }
    H[r * m] = v[r]!;
  }
  for (let c = 0; c < m; c++) H[(m - 1) * m + c] = v[m - 1 - c]!;

  let power: Float64Array<ArrayBuffer> | undefined;
  let powerExp = 0;
  let hExp = 0;
  let remaining = n;
  while (remaining > 0) {
    if (remaining % 2 === 1) {
      power = power ? multiply(power, H, m) : H.slice();
      powerExp += hExp;
    }
    remaining = Math.floor(remaining / 2);
    if (remaining === 0) break;
    H = multiply(H, H, m);
    hExp *= 2;
    if (Math.abs(H[(k - 1) * m + (k - 1)]!) > BIG) {
      for (let i = 0; i < H.length; i++) H[i]! /= BIG;
      hExp += SCALE_BITS;
    }
  }
  let p = power![(k - 1) * m + (k - 1)]!;
  let exp = powerExp;
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n;
    if (Math.abs(p) < SMALL) {
      p *= BIG;
      exp -= SCALE_BITS;
    }
  }
  return clip(p * 2 ** exp);
}

function multiply(a: Float64Array, b: Float64Array, m: number): Float64Array<ArrayBuffer> {
  const out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let l = 0; l < m; l++) {
      const ail = a[i * m + l]!;
      if (ail === 0) continue;
      const rowB = l * m;
      const rowOut = i * m;
      for (let j = 0; j < m; j++) out[rowOut + j]! += ail * b[rowB + j]!;
    }
  }
  return out;
}

/** Column interval [j1, j2] of row i in Pomeranz's recursion. */
function pomeranzBounds(i: number, n: number, ll: number, ceilF: number, roundF: number): [number, number] {
  let j1: number;
  let j2: number;
  if (i === 0) {
    j1 = -ll - ceilF - 1;
    j2 = ll + ceilF - 1;
  } else {
    const half = Math.floor((i + 1) / 2);
    if ((i + 1) % 2 === 0) {
      if (half === n + 1) {
        j1 = n - ll - ceilF - 1;
        j2 = n + ll + ceilF - 1;
      } else {
        j1 = half - 1 - ll - roundF - 1;
        j2 = half + ll - 1 + ceilF - 1;
      }
    } else {
      j1 = half - 1 - ll - 1;
      j2 = half + ll + roundF - 1;
    }
  }
  return [Math.max(j1 + 2, 0), Math.min(j2, n)];
}

/** P(D_n ≤ x) by Pomeranz's recursion (1974). */
function pomeranzCdf(n: number, x: number): number {
  const t = n * x;
  const ll = Math.floor(t);
  const f = t - ll;
  const g = Math.min(f, 1 - f);
  const ceilF = f > 0 ? 1 : 0;
  const roundF = f > 0.5 ? 1 : 0;
  const size = 2 * (ll + 1);
  const gPow = new Float64Array(size);
  const twoGPow = new Float64Array(size);
  const oneMinusTwoGPow = new Float64Array(size);
  gPow[0] = twoGPow[0] = oneMinusTwoGPow[0] = 1;
  for (let k = 1; k < size; k++) {
    gPow[k] = (gPow[k - 1]! * (g / n)) / k;
    twoGPow[k] = (twoGPow[k - 1]! * ((2 * g) / n)) / k;
    oneMinusTwoGPow[k] = (oneMinusTwoGPow[k - 1]! * ((1 - 2 * g) / n)) / k;
  }
  let previous = new Float64Array(size);
  let current = new Float64Array(size);
  current[0] = 1;
  let previousStart = 0;
  let currentStart = 0;
  let exp = 0;
  let [j1, j2] = pomeranzBounds(0, n, ll, ceilF, roundF);
  for (let i = 1; i < 2 * n + 2; i++) {
    const k1 = j1;
    [previous, current] = [current, previous];
    [previousStart, currentStart] = [currentStart, previousStart];
    current.fill(0);
    [j1, j2] = pomeranzBounds(i, n, ll, ceilF, roundF);
    const pw = i === 1 || i === 2 * n + 1 ? gPow : i % 2 === 1 ? twoGPow : oneMinusTwoGPow;
    const span = j2 - k1 + 1;
    if (span > 0) {
      // current[r] = Σ_s previous[k1 - start + s] · pw[(j1 - k1 + r) - s], a slice of a convolution
      const offset = j1 - k1;
      const count = j2 - j1 + 1;
      const base = k1 - previousStart;
      for (let r = 0; r < count; r++) {
        const c = offset + r;
        let acc = 0;
        const last = Math.min(c, span - 1, size - 1 - base);
        for (let s = Math.max(0, c - (span - 1), -base); s <= last; s++) acc += previous[base + s]! * pw[c - s]!;
        current[r] = acc;
      }
      let max = 0;
      for (let r = 0; r < count; r++) max = Math.max(max, current[r]!);
      if (max > 0 && max < SMALL) {
        for (let r = 0; r < count; r++) current[r]! *= BIG;
        exp -= SCALE_BITS;
      }
      currentStart = previousStart + j1 - k1;
    }
  }
  let answer = current[n - currentStart]!;
  for (let k = 1; k <= n; k++) {
    if (Math.abs(answer) > BIG) {
      answer *= SMALL;
      exp += SCALE_BITS;
    }
    answer *= k;
  }
  return clip(answer * 2 ** exp);
}

/** Pelz-Good approximation of P(D_n ≤ x) (1976). */
function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z3 = z2 * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const qLog = -PI2 / 8 / z2;
  if (qLog < -708) return 0;
  let q = Math.exp(qLog);
  const k1a = -z2;
  const k1b = PI2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * PI2) / 4;
  const k2c = (PI4 * (1 - 2 * z2)) / 16;
  const k3d = (PI6 * (5 - 30 * z2)) / 64;
  const k3c = (PI4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (PI2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z ** 8;
  const K = [0, 0, 0, 0];
  const maxK = Math.ceil((16 * z) / Math.PI);
  for (let k = maxK; k >= 1; k--) {
    const m = 2 * k - 1;
    const m2 = m * m;
    const m4 = m2 * m2;
    const m6 = m4 * m2;
    const qp = q ** (8 * k);
    const terms = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
    for (let i = 0; i < 4; i++) K[i] = K[i]! * qp + terms[i]!;
  }
  const denominators = [z, 6 * z4, 72 * z ** 7, 6480 * z ** 10];
  for (let i = 0; i < 4; i++) K[i] = (K[i]! * q * SQRT_2PI) / denominators[i]!;
  q = Math.exp(-PI2 / 2 / z2);
  let extra2 = 0;
  let extra3 = 0;
  const sqrt3z = Math.sqrt(3) * z;
  for (let k = maxK; k >= 1; k--) {
    const k2 = k * k;
    const qk = q ** k2;
    extra2 += k2 * qk;
    const kpi = Math.PI * k;
    extra3 += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qk;
  }
  K[2]! += (extra2 * PI2 * SQRT_2PI) / (-36 * z3);
  K[3]! += (extra3 * PI2 * SQRT_2PI) / (216 * z6);
  let sum = 0;
  for (let i = 0; i < 4; i++) sum += K[i]! / n ** (i / 2);
  return sum;
}

/** P(D_n > x): the upper tail of the two-sided one-sample KS statistic (scipy's kstwo.sf). */
export function kolmogorovSf(n: number, x: number): number {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`kolmogorovSf: n must be a positive integer, got ${n}`);
  if (Number.isNaN(x)) return Number.NaN;
  if (x >= 1) return 0;
  if (x <= 0) return 1;
  const t = n * x;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    let cdf: number;
    if (n <= 140) {
      cdf = 1;
      for (let i = 1; i <= n; i++) cdf *= i * (1 / n) * (2 * t - 1);
    } else {
      cdf = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1));
    }
    return clip(1 - cdf);
  }
  if (t >= n - 1) return clip(2 * (1 - x) ** n);
  if (x >= 0.5) return clip(2 * smirnovSf(n, x));
  const nx2 = t * x;
  if (n <= 140) {
    if (nx2 <= 0.754693) return clip(1 - durbinCdf(n, x));
    if (nx2 <= 4) return clip(1 - pomeranzCdf(n, x));
    return clip(2 * smirnovSf(n, x));
  }
  if (nx2 >= 370) return 0;
  if (nx2 >= 2.2) return clip(2 * smirnovSf(n, x));
  let cdf: number;
  if (n <= 100000 && n * x ** 1.5 <= 1.4) cdf = durbinCdf(n, x);
  else cdf = pelzGoodCdf(n, x);
  return clip(1 - cdf);
}
