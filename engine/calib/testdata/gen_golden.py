"""Make golden.json: reference values for engine/calib's golden tests.

Run from the repository root with Debian's libraries (numpy 1.24.2,
scipy 1.10.1, scikit-learn 1.2.1):

    /usr/bin/python3 engine/calib/testdata/gen_golden.py

(or `go test ./engine/calib -run Golden -update`, which runs this). The output
is deterministic: every input comes from numpy's default_rng with a fixed seed.

For each case it records
  * T: the temperature minimising mean BCE of sigmoid(logit/T), found by
    scipy.optimize.minimize_scalar over log T on [log 1e-2, log 1e2],
    method="bounded", xatol=1e-10;
  * the sklearn IsotonicRegression(y_min=0, y_max=1, increasing=True,
    out_of_bounds="clip") fitted on (x, y): its thresholds and predictions on
    x itself and on a grid reaching beyond the fitted range.
Conformal cases record the k-th smallest score, k = ceil((n+1)(1-alpha)), or
null when k > n. That is np.sort(s)[k-1], deliberately not
np.quantile(s, k/n, method="higher"): numpy puts that at index
ceil(k(n-1)/n) = k for k < n, the (k+1)-th smallest score.
"""

import json
import math
import pathlib

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

SEED = 20240611
OUT = pathlib.Path(__file__).with_name("golden.json")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(logits, up):
    y = up.astype(float)

    def mean_bce(log_t):
        z = logits / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    res = minimize_scalar(
        mean_bce,
        bounds=(math.log(1e-2), math.log(1e2)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return math.exp(res.x)


def isotonic(x, y):
    iso = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip")
    iso.fit(x, y)
    lo, hi = float(np.min(x)), float(np.max(x))
    pad = 0.25 * (hi - lo) + 1.0
    grid = np.concatenate([np.linspace(lo - pad, hi + pad, 41), [lo, hi]])
    return {
        "x": x.tolist(),
        "y": y.tolist(),
        "thresholds_x": iso.X_thresholds_.tolist(),
        "thresholds_y": iso.y_thresholds_.tolist(),
        "pred": iso.predict(x).tolist(),
        "grid": grid.tolist(),
        "pred_grid": iso.predict(grid).tolist(),
    }


def case(name, logits, up, iso_x=None, iso_y=None):
    """Temperature on (logits, up); isotonic on (iso_x, iso_y), by default (logits, up)."""
    logits = np.asarray(logits, dtype=float)
    up = np.asarray(up, dtype=bool)
    iso_x = logits if iso_x is None else np.asarray(iso_x, dtype=float)
    iso_y = up.astype(float) if iso_y is None else np.asarray(iso_y, dtype=float)
    return {
        "name": name,
        "logits": logits.tolist(),
        "up": up.tolist(),
        "T": fit_temperature(logits, up),
        "isotonic": isotonic(iso_x, iso_y),
    }


def draw(rng, n, scale):
    """n rows whose true logit is z ~ N(0, 1.5^2); the model reports scale·z."""
    z = rng.normal(0.0, 1.5, n)
    up = rng.random(n) < sigmoid(z)
    return scale * z, up


def main():
    rng = np.random.default_rng(SEED)
    cases = []

    cases.append(case("overconfident_x3_n300", *draw(rng, 300, 3.0)))
    cases.append(case("underconfident_x0.3_n300", *draw(rng, 300, 0.3)))
    cases.append(case("calibrated_n500", *draw(rng, 500, 1.0)))
    cases.append(case("small_n12", *draw(rng, 12, 1.0)))

    # Logits on a coarse grid: many ties in x for isotonic.
    lg, up = draw(rng, 200, 2.0)
    cases.append(case("ties_rounded_n200", np.round(lg, 1), up))

    # Probabilities as isotonic x, as Choose uses it, with exact and
    # below-resolution ties (x values 1e-16 apart merge in sklearn).
    lg, up = draw(rng, 120, 1.0)
    p = sigmoid(lg)
    p[10:20] = p[9]
    p[30] = p[29] + 1e-16
    p[40] = p[39] + 5e-16
    cases.append(case("probabilities_near_ties_n120", lg, up, iso_x=p))

    # Already monotone, continuous y: PAV must leave it unchanged.
    x = np.sort(rng.normal(0.0, 1.0, 60))
    y = np.sort(rng.random(60))
    lg, up = draw(rng, 60, 1.0)
    cases.append(case("monotone_continuous_n60", lg, up, iso_x=x, iso_y=y))

    # Continuous y outside [0, 1] after pooling is clipped.
    x = rng.normal(0.0, 1.0, 80)
    y = 0.5 * x + rng.normal(0.0, 0.5, 80) + 0.5
    cases.append(case("clipped_continuous_n80", *draw(rng, 80, 1.0), iso_x=x, iso_y=y))

    # Every row up: isotonic is constant 1; temperature pushes to a bound.
    lg = rng.normal(0.0, 1.0, 50)
    cases.append(case("constant_up_n50", lg, np.ones(50, dtype=bool)))

    # Perfectly separable: the BCE keeps falling as T -> 0 (lower bound).
    lg = rng.normal(0.0, 1.0, 40)
    cases.append(case("separable_n40", lg, lg > 0))

    # Two rows, one of them a single threshold after merging.
    cases.append(case("single_threshold_n2", [0.5, 0.5], [True, False]))

    conformal = []
    for n in (1, 5, 9, 10, 18, 19, 20, 39, 50, 101, 500):
        s = np.abs(rng.standard_t(4, n))
        for alpha in (0.1, 0.2, 0.05):
            k = math.ceil((n + 1) * (1 - alpha))
            conformal.append({
                "n": n,
                "alpha": alpha,
                "k": k,
                "scores": s.tolist(),
                "q": float(np.sort(s)[k - 1]) if k <= n else None,
            })

    # One case per line: compact, yet a regenerated file diffs by case.
    def block(items):
        return "[\n" + ",\n".join(json.dumps(i) for i in items) + "\n]"

    OUT.write_text(
        '{"generator": "engine/calib/testdata/gen_golden.py", "seed": %d,\n'
        '"cases": %s,\n"conformal": %s}\n' % (SEED, block(cases), block(conformal)))


if __name__ == "__main__":
    main()
