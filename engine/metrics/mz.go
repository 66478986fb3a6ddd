package metrics

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// MincerZarnowitz regresses the outcomes y on the forecasts mu with an
// intercept, y = a + b·mu + e, as statsmodels' OLS(y, add_constant(mu)).fit(),
// and returns a, b and the p-value of the joint F-test of an unbiased
// forecast, a = 0 and b = 1 (statsmodels f_test("const = 0, x1 = 1"), i.e.
// R = I₂, q = (0, 1)).
//
// The estimates use the centred normal equations, b = Sxy/Sxx and
// a = ȳ − b·μ̄, and the Wald statistic the identity
//
//	F = (Rβ−q)ᵀ[s²(XᵀX)⁻¹]⁻¹(Rβ−q)/2 = Σᵢ (a + (b−1)·muᵢ)² / (2s²),
//	s² = SSR/(n−2),
//
// which needs no matrix inverse: XᵀX is the Gram matrix of the columns
// (1, mu), so the quadratic form is the squared length of X·(a, b−1).
// statsmodels gets the same numbers through pseudo-inverses; they agree to
// its own rounding error. The p-value is SciPy's f.sf(F, 2, n−2) =
// fdtrc = I_w(d/2, 1), w = d/(d+2F), d = n−2, evaluated with the cephes
// incomplete beta function that SciPy itself calls.
//
// All three are NaN when the fit is degenerate: n < 3 (no residual degree
// of freedom) or constant mu (XᵀX singular; statsmodels would return a
// minimum-norm fit and a rank-reduced test). When the fit is exact
// (SSR = 0), F is +Inf and fP is 0 unless a = 0 and b = 1 exactly, which
// gives NaN; statsmodels would divide through a zero covariance instead.
// NaN inputs give NaN.
func MincerZarnowitz(y, mu []float64) (intercept, slope, fP float64) {
	n := sameLen("MincerZarnowitz", len(y), len(mu))
	nan := math.NaN()
	if n < 3 {
		return nan, nan, nan
	}
	constant := true
	for _, m := range mu[1:] {
		if m != mu[0] {
			constant = false
			break
		}
	}
	if constant {
		return nan, nan, nan
	}
	mBar, yBar := npMean(mu), npMean(y)
	var sxx, sxy float64
	for i := range n {
		dm := mu[i] - mBar
		sxx += dm * dm
		sxy += dm * (y[i] - yBar)
	}
	slope = sxy / sxx
	intercept = yBar - slope*mBar

	var ssr, wald float64
	for i := range n {
		r := (y[i] - yBar) - slope*(mu[i]-mBar)
		ssr += r * r
		d := intercept + (slope-1)*mu[i]
		wald += d * d
	}
	df := float64(n - 2)
	f := wald / (2 * ssr / df)
	if math.IsNaN(f) {
		return intercept, slope, nan
	}
	fP = mathext.RegIncBeta(df/2, 1, df/(df+2*f))
	return intercept, slope, fP
}
