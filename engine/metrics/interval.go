package metrics

import "math"

// Coverage returns the share of y inside its interval, lo[i] <= y[i] <=
// hi[i] (both ends closed); NaN when empty. A NaN in any of the three
// counts as outside, as NumPy's comparisons make it.
func Coverage(y, lo, hi []float64) float64 {
	n := sameLen("Coverage", len(y), len(lo), len(hi))
	if n == 0 {
		return math.NaN()
	}
	var in int
	for i := range n {
		if lo[i] <= y[i] && y[i] <= hi[i] {
			in++
		}
	}
	return float64(in) / float64(n)
}

// MeanWidth returns the mean interval width mean(hi − lo), as NumPy sums
// it; NaN when empty. Inverted intervals (hi < lo) count negatively: the
// conformal layer never makes them, and hiding them would hide a bug there.
func MeanWidth(lo, hi []float64) float64 {
	n := sameLen("MeanWidth", len(lo), len(hi))
	w := make([]float64, n)
	for i := range n {
		w[i] = hi[i] - lo[i]
	}
	return npMean(w)
}
