"""Reference values from scipy/statsmodels for the parity tests: reads a JSON list of cases on
stdin, writes a JSON list of results (same order) on stdout."""
import json
import sys

import numpy as np
from scipy import optimize, stats
from scipy.spatial.distance import jensenshannon
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest


def num(x):
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def run(case):
    kind = case["kind"]
    if kind == "ks_2samp":
        r = stats.ks_2samp(np.asarray(case["a"], dtype=float), np.asarray(case["b"], dtype=float), method=case.get("method", "auto"))
        return {"statistic": num(r.statistic), "pvalue": num(r.pvalue)}
    if kind == "kstwo_sf":
        return {"sf": num(stats.kstwo.sf(case["x"], case["n"]))}
    if kind == "wasserstein":
        a = np.asarray(case["a"], dtype=float)
        b = np.asarray(case["b"], dtype=float)
        w = stats.wasserstein_distance(a, b)
        return {"distance": num(w), "normalized": num(w / max(np.std(a), 0.001))}
    if kind == "jensenshannon":
        base = case.get("base")
        return {"distance": num(jensenshannon(case["p"], case["q"], base=base))}
    if kind == "chisquare":
        r = stats.chisquare(case["observed"], case.get("expected"))
        return {"statistic": num(r.statistic), "pvalue": num(r.pvalue)}
    if kind == "chi2_contingency":
        r = stats.chi2_contingency(np.asarray(case["table"], dtype=float), correction=case.get("correction", True))
        return {"statistic": num(r.statistic), "pvalue": num(r.pvalue), "dof": int(r.dof)}
    if kind == "multipletests":
        out = {}
        for method in ("bonferroni", "fdr_bh"):
            reject, adjusted, _, _ = multipletests(case["p"], alpha=case.get("alpha", 0.05), method=method)
            out[method] = {"adjusted": [num(x) for x in adjusted], "reject": [bool(x) for x in reject]}
        return out
    if kind == "sample_size":
        p1 = case["baseline"]
        p2 = p1 * (1 + case["mde"])
        alpha, power = case["alpha"], case["power"]
        z_alpha = stats.norm.ppf(1 - alpha / 2)
        z_beta = stats.norm.ppf(power)
        p_avg = (p1 + p2) / 2
        n = ((z_alpha * np.sqrt(2 * p_avg * (1 - p_avg)) + z_beta * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) / (p2 - p1)) ** 2
        h = proportion_effectsize(p2, p1)
        n_h = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
        return {"guide": num(n), "guide_ceil": int(np.ceil(n)), "h": num(h), "cohen": num(n_h)}
    if kind == "cohen_h_sample_size":
        # proportion_effectsize(p2, p1) and NormalIndPower().solve_power as a user would call them;
        # solve_power stops at brentq's xtol=1e-5, so the root of statsmodels' own power function
        # is also found to full precision for the 1e-9 comparison.
        p1 = case["baseline"]
        p2 = p1 * (1 + case["mde"]) if case.get("relative", True) else p1 + case["mde"]
        alpha, power = case["alpha"], case["power"]
        h = proportion_effectsize(p2, p1)
        solved = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1, alternative="two-sided")
        f = lambda n: NormalIndPower().power(h, n, alpha, ratio=1, alternative="two-sided") - power
        lo, hi = 1e-6, 2.0
        while f(hi) < 0:
            hi *= 2
        root = optimize.brentq(f, lo, hi, xtol=1e-300, rtol=8.9e-16, maxiter=1000)
        return {"h": num(h), "solve_power": num(solved), "root": num(root)}
    if kind == "normal_ind_power":
        return {"power": num(NormalIndPower().power(case["effect"], case["nobs1"], case["alpha"], ratio=1.0, alternative="two-sided"))}
    if kind == "proportions_ztest":
        z, p = proportions_ztest([case["x1"], case["x2"]], [case["n1"], case["n2"]])
        lo, hi = confint_proportions_2indep(case["x1"], case["n1"], case["x2"], case["n2"], method="wald", compare="diff", alpha=0.05)
        return {"z": num(z), "pvalue": num(p), "lower": num(lo), "upper": num(hi)}
    if kind == "welch":
        r = stats.ttest_ind(np.asarray(case["a"], dtype=float), np.asarray(case["b"], dtype=float), equal_var=False)
        ci = r.confidence_interval(0.95)
        return {"t": num(r.statistic), "pvalue": num(r.pvalue), "df": num(r.df), "lower": num(ci.low), "upper": num(ci.high)}
    raise ValueError(f"unknown case kind {kind}")


def main():
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
