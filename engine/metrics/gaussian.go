package metrics

import "math"

// normLogC is SciPy's _norm_pdf_logC = log(sqrt(2π)), computed the same way
// so that the constant rounds identically.
var normLogC = math.Log(math.Sqrt(2 * math.Pi))

// GaussianNLL returns the mean negative log-likelihood of y under
// N(mu, sigma²), i.e. mean(−scipy.stats.norm.logpdf(y, mu, sigma)), with
// SciPy's order of operations: x = (y−mu)/sigma, logpdf = −x²/2 − log√(2π)
// − log sigma. A sigma that is not > 0 makes its term NaN (SciPy's "bad
// value"), hence the mean; NaN when empty.
func GaussianNLL(y, mu, sigma []float64) float64 {
	n := sameLen("GaussianNLL", len(y), len(mu), len(sigma))
	if n == 0 {
		return math.NaN()
	}
	nll := make([]float64, n)
	for i := range n {
		s := sigma[i]
		if !(s > 0) {
			return math.NaN()
		}
		x := (y[i] - mu[i]) / s
		nll[i] = -((-(x*x)/2.0 - normLogC) - math.Log(s))
	}
	return npMean(nll)
}

// GaussianCRPS returns the continuous ranked probability score of the
// forecast N(mu, sigma²) for the outcome y, in closed form (Gneiting &
// Raftery 2007):
//
//	σ·[z(2Φ(z) − 1) + 2φ(z) − 1/√π],  z = (y − μ)/σ,
//
// which equals ∫ (F(x) − 1{x ≥ y})² dx. A degenerate forecast, sigma <= 0,
// is a point mass at mu and scores |y − mu| (the limit as σ → 0).
func GaussianCRPS(y, mu, sigma float64) float64 {
	if sigma <= 0 {
		return math.Abs(y - mu)
	}
	z := (y - mu) / sigma
	pdf := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
	return sigma * (z*(2*ndtr(z)-1) + 2*pdf - 1/math.Sqrt(math.Pi))
}
