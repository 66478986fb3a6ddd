"""Generate testdata/golden.json, the reference values for engine/metrics.

Run from the repository root with Debian's Python, which carries the
reference libraries (numpy 1.24.2, scipy 1.10.1, scikit-learn 1.2.1,
statsmodels 0.13.5); plain `python3` may lack them:

    /usr/bin/python3 engine/metrics/testdata/gen_golden.py

The output is deterministic (numpy.random.default_rng with a fixed seed) and
committed; golden_test.go reads it. Inputs are rounded to a few decimals
before any metric is computed, so the file stays small and every input is
exactly the float64 that Go parses back. Floats are written with Python's
shortest round-trip repr; NaN and infinities, which JSON lacks, are written
as the strings "NaN", "+Inf" and "-Inf".

Each metric is the library call named in engine/metrics' doc comments:
  roc_auc        sklearn.metrics.roc_auc_score(up, p)      (ValueError -> NaN)
  dir_acc        numpy.mean((mu > 0) == (y > 0))
  ece            numpy, bins edges arange(B+1)/B, see ece() below
  brier          sklearn.metrics.brier_score_loss(up, p)
  bce            sklearn.metrics.log_loss(up, p, labels=[0, 1])
  gaussian_nll   numpy.mean(-scipy.stats.norm.logpdf(y, mu, sigma))
  mz_*           statsmodels OLS(y, add_constant(mu)).fit(), params and
                 f_test("const = 0, x1 = 1").pvalue   (degenerate -> NaN)
  ks_d, ks_p     scipy.stats.kstest(z, "norm") statistic and pvalue
  coverage       numpy.mean((lo <= y) & (y <= hi))
  mean_width     numpy.mean(hi - lo)
  seasonal_mae   numpy.mean(abs(x[period:] - x[:-period]))
plus a grid of scipy.stats.kstwo.sf(d, n) values over every branch of
scipy.stats._ksstats._kolmogn, and Gaussian CRPS values both in closed form
(numpy) and by numerical integration (scipy.integrate.quad).
"""

import json
import math
import os
import warnings

import numpy as np
import scipy
import scipy.stats as st
import sklearn
import statsmodels
import statsmodels.api as sm
from scipy.integrate import quad
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

SEED = 20240607
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")

warnings.simplefilter("ignore")  # statsmodels FutureWarning, numpy empty-mean


def enc(v):
    """Make floats JSON-safe: NaN/Inf become strings, numpy scalars floats."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return [enc(x) for x in v]
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return v
    return v


def ece(p, up, bins):
    """Equal-width ECE: bin b holds b/B <= p < (b+1)/B, p == 1 in the last."""
    edges = np.arange(bins + 1) / bins
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += m.sum() / len(p) * abs(up[m].mean() - p[m].mean())
    return total


def mz(y, mu):
    """Mincer-Zarnowitz with statsmodels; NaN where engine/metrics says the
    fit is degenerate (statsmodels would return a pinv/min-norm answer)."""
    if len(y) < 3 or np.all(mu == mu[0]):
        return math.nan, math.nan, math.nan
    res = sm.OLS(y, sm.add_constant(mu)).fit()
    ft = res.f_test("const = 0, x1 = 1")
    return float(res.params[0]), float(res.params[1]), float(ft.pvalue)


def metrics(c):
    """Compute every metric whose inputs the case has."""
    want = {}
    if "p" in c:
        p = np.array(c["p"], dtype=float)
        up = np.array(c["up"], dtype=bool)
        upi = up.astype(int)
        try:
            want["roc_auc"] = roc_auc_score(up, p)
        except ValueError:
            want["roc_auc"] = math.nan
        want["ece"] = ece(p, up, c["bins"])
        want["brier"] = brier_score_loss(upi, p)
        want["bce"] = log_loss(upi, p, labels=[0, 1])
        if len(np.unique(upi)) == 2:
            # labels=[0, 1] changes nothing when both classes are present.
            assert want["bce"] == log_loss(upi, p)
    if "mu" in c:
        y = np.array(c["y"], dtype=float)
        mu = np.array(c["mu"], dtype=float)
        want["dir_acc"] = np.mean((mu > 0) == (y > 0))
        want["mz_intercept"], want["mz_slope"], want["mz_f_p"] = mz(y, mu)
        if "sigma" in c:
            sigma = np.array(c["sigma"], dtype=float)
            want["gaussian_nll"] = np.mean(-st.norm.logpdf(y, mu, sigma))
        if "lo" in c:
            lo = np.array(c["lo"], dtype=float)
            hi = np.array(c["hi"], dtype=float)
            want["coverage"] = np.mean((lo <= y) & (y <= hi))
            want["mean_width"] = np.mean(hi - lo)
    if "z" in c:
        r = st.kstest(np.array(c["z"], dtype=float), "norm")
        want["ks_d"], want["ks_p"] = r.statistic, r.pvalue
    if "x" in c:
        x = np.array(c["x"], dtype=float)
        k = c["period"]
        want["seasonal_mae"] = (
            np.mean(np.abs(x[k:] - x[:-k])) if len(x) > k else math.nan
        )
    return want


def r(a, d):
    """Round to d decimals and return a plain list of floats."""
    return [float(v) for v in np.round(np.asarray(a, dtype=float), d)]


def full_case(rng, name, n, *, scale=1.0, p=None, up=None, mu=None, y=None,
              sigma=None, z=None, period=1, bins=10):
    """A case with every input; the defaults are independent random draws.

    y = mu + sigma·e with sigma varying, p = Φ(mu/sigma) perturbed, so the
    metrics see realistic, imperfect forecasts. Values are rounded to about
    six significant digits of their scale."""
    d = 6 - int(round(math.log10(scale)))
    if mu is None:
        mu = rng.normal(0, scale, n)
    mu = np.round(mu, d)
    if sigma is None:
        sigma = scale * np.exp(rng.normal(0, 0.3, n))
    sigma = np.round(sigma, d)
    if y is None:
        y = mu + sigma * rng.standard_normal(n)
    y = np.round(y, d)
    if p is None:
        p = np.clip(st.norm.cdf(mu / sigma + rng.normal(0, 0.5, n)), 0, 1)
    p = np.round(p, 6)
    if up is None:
        up = y > 0
    if z is None:
        z = (y - mu) / sigma
    half = 1.6 * sigma * np.exp(rng.normal(0, 0.2, n))
    x = np.cumsum(rng.normal(0, scale, n))
    return {
        "name": name, "n": n, "bins": bins, "period": period,
        "p": r(p, 6), "up": [bool(v) for v in up],
        "mu": r(mu, d), "y": r(y, d), "sigma": r(sigma, d),
        "lo": r(mu - half, d), "hi": r(mu + half, d),
        "z": r(z, 6), "x": r(x, d),
    }


def cases(rng):
    out = []
    out.append(full_case(rng, "n1", 1))
    out.append(full_case(rng, "n2", 2))
    out.append(full_case(rng, "n3_min_mz", 3))
    out.append(full_case(rng, "n5_random", 5))
    out.append(full_case(rng, "n50_random", 50, period=7))
    out.append(full_case(rng, "n300_random", 300, period=24))
    out.append(full_case(rng, "n2000_random", 2000, period=7, bins=15))

    # Ties: p on the 0.1 grid, i.e. on the ECE bin edges and in AUC ties.
    c = full_case(rng, "n300_ties_p_1dec", 300)
    c["p"] = r(np.array(c["p"]), 1)
    out.append(c)

    # One class present: AUC undefined, BCE via labels=[0, 1].
    n = 50
    c = full_case(rng, "n50_one_class_up", n)
    c["up"] = [True] * n
    out.append(c)
    c = full_case(rng, "n50_one_class_down", n)
    c["up"] = [False] * n
    out.append(c)

    # p exactly 0 and 1 (BCE clipping, the p == 1 bin), some confidently wrong.
    c = full_case(rng, "n50_p_exact_0_1", n)
    p = np.array(c["p"])
    p[:10], p[10:20], p[20:23] = 0.0, 1.0, 0.5
    c["p"] = r(p, 6)
    out.append(c)

    # Change space: small scale, y correlated with mu, a small bias.
    n = 2000
    mu = rng.normal(0, 1e-3, n)
    y = 2e-4 + 0.8 * mu + rng.normal(0, 1e-3, n)
    out.append(full_case(rng, "n2000_mz_change_space", n, scale=1e-3, mu=mu,
                         y=y, sigma=np.full(n, 1.1e-3)))

    # A strongly rejected MZ test: tiny F p-value.
    n = 300
    mu = rng.normal(0, 1, n)
    y = 2 * mu + rng.normal(0, 0.5, n)
    out.append(full_case(rng, "n300_mz_tiny_p", n, mu=mu, y=y))

    # Constant forecasts: MZ degenerate.
    c = full_case(rng, "n50_constant_mu", 50, mu=np.full(50, 0.25))
    out.append(c)

    # Heavy-tailed PIT z: small KS p.
    c = full_case(rng, "n300_heavy_tail_z", 300, z=rng.standard_t(2, 300))
    out.append(c)

    # Non-positive sigma: NaN NLL.
    c = full_case(rng, "n5_sigma_nonpositive", 5)
    c["sigma"][2] = 0.0
    c["sigma"][4] = -1.0
    out.append(c)

    # z far out on one side: D near 1, tiny KS p (Ruben-Gambino / smirnov).
    out.append({"name": "n50_z_far", "n": 50,
                "z": r(rng.uniform(2.5, 3.5, 50), 6)})
    out.append({"name": "n5_z_inf", "n": 5,
                "z": [-math.inf, -0.5, 0.0, 1.25, math.inf]})

    # Large n: KS only (the other metrics are covered above).
    out.append({"name": "n12000_z_null", "n": 12000,
                "z": r(rng.standard_normal(12000), 5)})
    out.append({"name": "n12000_z_shift", "n": 12000,
                "z": r(rng.normal(0.25, 1, 12000), 5)})
    out.append({"name": "n20000_z_null", "n": 20000,
                "z": r(rng.standard_normal(20000), 5)})

    for c in out:
        c["want"] = metrics(c)
    return out


def kstwo_grid():
    """kstwo.sf(d, n) over every branch of _kolmogn: Ruben-Gambino ends,
    x >= 0.5, MTW, Pomeranz, smirnov for n <= 140 and for n > 140, Pelz-Good,
    the 370 cut-off; d is set through n·d² and at the support's landmarks."""
    ns = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 50, 75, 100, 139, 140,
          141, 150, 200, 300, 500, 1000, 1500, 2000, 5000, 12000, 20000]
    cs = [0.05, 0.2, 0.5, 0.754, 0.76, 1.0, 1.5, 2.0, 2.19, 2.21, 3.0, 3.99,
          4.01, 6.0, 10.0, 17.9, 18.1, 40.0, 100.0, 200.0, 300.0, 360.0,
          369.9, 370.1, 400.0]
    rows = []
    for n in ns:
        ds = [math.sqrt(c / n) for c in cs]
        ds += [0.5 / n, 0.75 / n, 1.0 / n, 1.5 / n, (n - 1) / n,
               (n - 0.5) / n, 0.5, 0.6, 0.9, 1.0]
        for d in sorted(set(ds)):
            if 0 < d <= 1:
                rows.append({"n": n, "d": d, "sf": float(st.kstwo.sf(d, n))})
    return rows


def crps_rows(rng):
    """Gaussian CRPS: closed form in numpy and ∫(F(x) − 1{x >= y})² dx by
    quad, split at y and at mu, over mu ± 40σ beyond which F² and (1−F)²
    are below 1e-300."""
    rows = []
    triples = [(float(a), float(b), float(s)) for a, b, s in zip(
        np.round(rng.normal(0, 2, 20), 6), np.round(rng.normal(0, 1, 20), 6),
        np.round(np.exp(rng.normal(0, 1, 20)), 6))]
    triples += [(0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (-3.0, 0.0, 1.0),
                (10.0, 0.0, 1.0), (-40.0, 0.0, 1.0), (0.0123, 0.0121, 1e-3),
                (2e-3, -1e-3, 1e-4), (1e6, 1e6 + 1.0, 0.5),
                (1.5, 0.5, 0.0), (-1.5, 0.5, -2.0)]
    for y, mu, s in triples:
        row = {"y": y, "mu": mu, "sigma": s}
        if s <= 0:
            row["closed"] = abs(y - mu)
            row["quad"], row["quad_err"] = abs(y - mu), 0.0
        else:
            z = (y - mu) / s
            row["closed"] = s * (z * (2 * st.norm.cdf(z) - 1)
                                 + 2 * st.norm.pdf(z) - 1 / np.sqrt(np.pi))
            lo, hi = min(y, mu) - 40 * s, max(y, mu) + 40 * s
            F = lambda t: st.norm.cdf(t, mu, s) ** 2
            S = lambda t: st.norm.sf(t, mu, s) ** 2
            kw = dict(epsabs=1e-15 * s, epsrel=1e-13, limit=500)
            a = quad(F, lo, y, points=[mu] if lo < mu < y else None, **kw)
            b = quad(S, y, hi, points=[mu] if y < mu < hi else None, **kw)
            row["quad"], row["quad_err"] = a[0] + b[0], a[1] + b[1]
        rows.append(row)
    return rows


def main():
    rng = np.random.default_rng(SEED)
    doc = {
        "generator": "engine/metrics/testdata/gen_golden.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__,
                     "statsmodels": statsmodels.__version__},
        "seed": SEED,
        "cases": cases(rng),
        "kstwo": kstwo_grid(),
        "crps": crps_rows(rng),
    }
    with open(OUT, "w") as f:
        json.dump(enc(doc), f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
