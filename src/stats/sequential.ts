/**
 * Sequential testing with always-valid p-values: the mixture sequential probability ratio test
 * (mSPRT) of Johari, Pekelis & Walsh, "Always Valid Inference" (2017), as used by Optimizely's
 * Stats Engine. Peeking after every observation keeps the false positive rate at most alpha.
 *
 * The tested quantity is a difference θ (of means or of rates) estimated by θ̂ with variance V
 * (for two groups of n: V = σ²_A/n + σ²_B/n). With a normal mixing prior θ ~ N(θ0, τ²) the
 * likelihood ratio of H1 (mixture) against H0 (θ = θ0) is
 *
 *   Λ = √(V / (V + τ²)) · exp( τ²·(θ̂ - θ0)² / (2·V·(V + τ²)) )
 *
 * and the always-valid p-value is p_n = min(p_{n-1}, 1/Λ_n), starting at 1; it never increases,
 * and rejecting when p_n ≤ α is a level-α test however often it is looked at (Ville's inequality).
 * τ² sets where the test is most sensitive: a good value is the square of the effect one expects.
 */

export interface MsprtObservation {
  /** Estimated difference θ̂. */
  estimate: number;
  /** Variance of the estimate V (> 0). */
  variance: number;
}

/** The mixture likelihood ratio Λ for one look. */
export function msprtLikelihoodRatio(observation: MsprtObservation, tau2: number, theta0 = 0): number {
  const { estimate, variance } = observation;
  if (!(variance > 0)) throw new RangeError(`mSPRT: the variance of the estimate must be positive, got ${variance}`);
  if (!(tau2 > 0)) throw new RangeError(`mSPRT: tau² must be positive, got ${tau2}`);
  const d = estimate - theta0;
  return Math.sqrt(variance / (variance + tau2)) * Math.exp((tau2 * d * d) / (2 * variance * (variance + tau2)));
}

/** A running mSPRT: feed each look's estimate and variance, read the always-valid p-value. */
export class AlwaysValidPValue {
  private current = 1;
  private looks = 0;

  constructor(
    readonly tau2: number,
    readonly theta0 = 0,
  ) {
    if (!(tau2 > 0)) throw new RangeError(`mSPRT: tau² must be positive, got ${tau2}`);
  }

  /** Records one look and returns the p-value so far. */
  update(observation: MsprtObservation): number {
    const lr = msprtLikelihoodRatio(observation, this.tau2, this.theta0);
    this.looks++;
    this.current = Math.min(this.current, 1 / lr);
    return this.current;
  }

  get pValue(): number {
    return this.current;
  }

  get count(): number {
    return this.looks;
  }
}

/** Always-valid p-values over a sequence of looks. */
export function msprtPValues(observations: readonly MsprtObservation[], tau2: number, theta0 = 0): number[] {
  const running = new AlwaysValidPValue(tau2, theta0);
  return observations.map((o) => running.update(o));
}

/** The look for two groups of conversions (rates, variance from the observed rates). */
export function proportionsObservation(successesA: number, nA: number, successesB: number, nB: number): MsprtObservation {
  const pA = successesA / nA;
  const pB = successesB / nB;
  return { estimate: pB - pA, variance: (pA * (1 - pA)) / nA + (pB * (1 - pB)) / nB };
}
