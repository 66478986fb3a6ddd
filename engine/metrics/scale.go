package metrics

import "math"

// SeasonalNaiveMAE returns the in-sample mean absolute error of the
// seasonal naive forecast x̂_t = x_{t−period},
//
//	mean_{t >= period} |x_t − x_{t−period}|,
//
// the denominator of MASE and of the scaled CRPS (Hyndman & Koehler 2006);
// period 1 is the plain random walk. It equals NumPy's
// mean(abs(x[period:] − x[:-period])). It returns NaN when len(x) <= period
// (no pair to difference) and panics when period < 1, a programmer error.
// The result is 0 for a series that repeats exactly; the caller decides
// what dividing by it means.
func SeasonalNaiveMAE(x []float64, period int) float64 {
	if period < 1 {
		panic("metrics: SeasonalNaiveMAE: period must be >= 1")
	}
	if len(x) <= period {
		return math.NaN()
	}
	d := make([]float64, len(x)-period)
	for t := period; t < len(x); t++ {
		d[t-period] = math.Abs(x[t] - x[t-period])
	}
	return npMean(d)
}
