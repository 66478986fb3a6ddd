package calib

import (
	"fmt"
	"math"
	"sort"
)

// Scores returns the normalised residuals |y_i - mu_i| / sigma_i, the
// conformity scores of split-conformal intervals mu ± q·sigma. sigma must be
// > 0 (the model's softplus + eps guarantees it). It panics when the slices
// differ in length.
func Scores(y, mu, sigma []float64) []float64 {
	mustSameLen("Scores y, mu", len(y), len(mu))
	mustSameLen("Scores y, sigma", len(y), len(sigma))
	s := make([]float64, len(y))
	for i := range y {
		s[i] = math.Abs(y[i]-mu[i]) / sigma[i]
	}
	return s
}

// ConformalQuantile returns the finite-sample split-conformal quantile of the
// calibration scores: the k-th smallest with k = ceil((n+1)(1-alpha)). An
// exchangeable new score is then <= q with probability at least 1-alpha (and
// below 1-alpha+1/(n+1)).
//
// When k > n no calibration score is large enough: it returns +Inf and
// ok=false, meaning the interval is unbounded because there are too few rows
// for that alpha (n < 1/alpha - 1).
//
// This is np.sort(s)[k-1]. It is not numpy.quantile(s, k/n, method="higher"),
// which for k < n lands on index ceil(k(n-1)/n) = k, the (k+1)-th smallest,
// one order statistic wider than needed. alpha must be in (0, 1); it panics
// otherwise. scores is not modified.
func ConformalQuantile(scores []float64, alpha float64) (q float64, ok bool) {
	if !(alpha > 0 && alpha < 1) {
		panic(fmt.Sprintf("calib: ConformalQuantile: alpha %v is not in (0, 1)", alpha))
	}
	n := len(scores)
	// Same floating-point expression as the reference, so k agrees with it
	// even where (n+1)(1-alpha) is an integer up to rounding.
	k := int(math.Ceil(float64(n+1) * (1 - alpha)))
	if k > n {
		return math.Inf(1), false
	}
	s := append([]float64(nil), scores...)
	sort.Float64s(s)
	return s[k-1], true
}

// WeightedConformalQuantile is the split-conformal quantile for scores that
// are not exchangeable with the new one, each weighing w_i ≥ 0 (Barber,
// Candès, Ramdas and Tibshirani, "Conformal prediction beyond
// exchangeability", Ann. Statist. 2023): the smallest score q such that the
// weights of the scores ≤ q reach (1−alpha)·(Σw + 1), the new point weighing
// 1 at +Inf. With every weight 1 it is ConformalQuantile. Weights that fade
// with a row's age keep the coverage of a series whose behaviour changed
// recently (a level shift) closer to 1−alpha than equal weights do; the
// coverage gap is bounded by the weighted distance from exchangeability.
// When no score reaches it, it returns +Inf and ok=false. It panics when
// alpha is not in (0, 1), when the slices differ in length or when a weight
// is negative or not finite.
func WeightedConformalQuantile(scores, weights []float64, alpha float64) (q float64, ok bool) {
	if !(alpha > 0 && alpha < 1) {
		panic(fmt.Sprintf("calib: WeightedConformalQuantile: alpha %v is not in (0, 1)", alpha))
	}
	mustSameLen("WeightedConformalQuantile scores, weights", len(scores), len(weights))
	idx := make([]int, len(scores))
	total := 1.0 // the new point's
	for i, w := range weights {
		if !(w >= 0) || math.IsInf(w, 1) {
			panic(fmt.Sprintf("calib: WeightedConformalQuantile: weight %v is not finite and ≥ 0", w))
		}
		idx[i] = i
		total += w
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	need, sum := (1-alpha)*total, 0.0
	for _, i := range idx {
		sum += weights[i]
		if sum >= need*(1-1e-12) { // equal weights: the same k as ConformalQuantile despite rounding
			return scores[i], true
		}
	}
	return math.Inf(1), false
}

// ConformalP returns the conformal p-value of a new score against the
// calibration scores: (1 + #{i: s_i >= score}) / (n + 1). Small values mean
// the new residual is unusually large; under exchangeability the p-value is
// uniform on {1/(n+1), ..., 1}.
func ConformalP(score float64, calScores []float64) float64 {
	ge := 0
	for _, s := range calScores {
		if s >= score {
			ge++
		}
	}
	return float64(1+ge) / float64(len(calScores)+1)
}

// boundarySlack keeps a coverage that sits on the edge of the band inside it
// despite rounding (0.9 - 0.85 is 0.05000000000000004 in float64).
const boundarySlack = 1e-9

// CoverageTolerance is the half-width of the band around 1-alpha in which a
// scored coverage over n rows is accepted: max(0.05, 3·sqrt(alpha(1-alpha)/n)).
// The second term is three binomial standard deviations of the coverage of n
// independent rows, so a correct interval leaves the band by chance only
// about 0.3% of the time; the 0.05 floor keeps large folds from flagging
// differences too small to matter. Rows of a time series are not independent,
// which makes the band somewhat optimistic, not too strict.
func CoverageTolerance(n int, alpha float64) float64 {
	return math.Max(0.05, 3*math.Sqrt(alpha*(1-alpha)/float64(n)))
}

// CoverageWarning returns nil when the share of scored rows inside their
// interval is within CoverageTolerance of the target 1-alpha (edges
// included), else a sentence saying how far off it is and in which direction.
// With no scored rows it says coverage cannot be checked.
func CoverageWarning(coverage float64, n int, alpha float64) *string {
	target := 1 - alpha
	if n <= 0 {
		msg := fmt.Sprintf("conformal coverage cannot be checked: no scored rows (target %.2f)", target)
		return &msg
	}
	tol := CoverageTolerance(n, alpha)
	if math.Abs(coverage-target) <= tol+boundarySlack {
		return nil
	}
	verdict := "too narrow"
	if coverage > target {
		verdict = "too wide"
	}
	msg := fmt.Sprintf("conformal coverage %.2f on %d scored rows is outside %.2f ± %.2f; intervals are %s",
		coverage, n, target, tol, verdict)
	return &msg
}
