package calib

import (
	"math"
	"sort"
)

// IsotonicFit is a fitted non-decreasing map, stored as sklearn stores it:
// thresholds X (strictly increasing) with values Y in [0, 1]. Predict
// interpolates linearly between them and is flat outside.
type IsotonicFit struct {
	X, Y []float64
}

// tieEps is numpy's finfo(float64).resolution, the distance below which
// sklearn's _make_unique treats two sorted x values as one.
const tieEps = 1e-15

// FitIsotonic fits a non-decreasing map from x to y and reproduces
// sklearn.isotonic.IsotonicRegression(y_min=0, y_max=1, increasing=True,
// out_of_bounds="clip").fit(x, y) with unit weights, step by step:
//
//  1. sort the rows by x, then y;
//  2. merge runs of x within 1e-15 of the run's first x into one point at
//     that x, whose y is the mean of the run and whose weight is its length;
//  3. pool adjacent violators (weighted), then clip to [0, 1];
//  4. drop interior points whose y equals both neighbours' (they do not
//     change the interpolation).
//
// x must be finite. It panics when x and y differ in length or are empty.
func FitIsotonic(x, y []float64) *IsotonicFit {
	mustSameLen("FitIsotonic", len(x), len(y))
	if len(x) == 0 {
		panic("calib: FitIsotonic: no rows")
	}
	order := make([]int, len(x))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if x[i] != x[j] {
			return x[i] < x[j]
		}
		return y[i] < y[j]
	})

	// Step 2, summing in sorted order as sklearn does.
	var ux, uy, uw []float64
	curX, sumY, sumW := x[order[0]], 0.0, 0.0
	for _, i := range order {
		if x[i]-curX >= tieEps {
			ux, uy, uw = append(ux, curX), append(uy, sumY/sumW), append(uw, sumW)
			curX, sumY, sumW = x[i], 0, 0
		}
		sumY += y[i]
		sumW++
	}
	ux, uy, uw = append(ux, curX), append(uy, sumY/sumW), append(uw, sumW)

	pav(uy, uw)
	for i, v := range uy {
		uy[i] = math.Min(math.Max(v, 0), 1)
	}

	// Step 4.
	f := &IsotonicFit{}
	for i := range uy {
		if i == 0 || i == len(uy)-1 || uy[i] != uy[i-1] || uy[i] != uy[i+1] {
			f.X, f.Y = append(f.X, ux[i]), append(f.Y, uy[i])
		}
	}
	return f
}

// pav replaces y by its weighted non-decreasing least-squares fit, in place.
// It is sklearn's _inplace_contiguous_isotonic_regression: blocks are kept as
// target[first] = last and target[last] = first, equal neighbours are pooled
// too, and after a merge it steps back one block so one pass suffices. w is
// overwritten.
func pav(y, w []float64) {
	n := len(y)
	target := make([]int, n)
	for i := range target {
		target[i] = i
	}
	for i := 0; i < n; {
		k := target[i] + 1
		if k == n {
			break
		}
		if y[i] < y[k] {
			i = k
			continue
		}
		sumWY, sumW := w[i]*y[i], w[i]
		for {
			// Inside a non-increasing run: absorb block k.
			prevY := y[k]
			sumWY += w[k] * y[k]
			sumW += w[k]
			k = target[k] + 1
			if k == n || prevY < y[k] {
				y[i] = sumWY / sumW
				w[i] = sumW
				target[i] = k - 1
				target[k-1] = i
				if i > 0 {
					i = target[i-1]
				}
				break
			}
		}
	}
	for i := 0; i < n; {
		k := target[i] + 1
		for j := i + 1; j < k; j++ {
			y[j] = y[i]
		}
		i = k
	}
}

// Predict returns the fitted value at x, as sklearn's predict does: x is
// clipped to the fitted range, then interpolated linearly between thresholds
// with numpy.interp's arithmetic. A NaN x gives NaN.
func (f *IsotonicFit) Predict(x float64) float64 {
	n := len(f.X)
	if math.IsNaN(x) {
		return x
	}
	if n == 1 {
		return f.Y[0]
	}
	x = math.Min(math.Max(x, f.X[0]), f.X[n-1])
	// j is the last threshold <= x.
	j := sort.Search(n, func(i int) bool { return f.X[i] > x }) - 1
	if j == n-1 || f.X[j] == x {
		return f.Y[j]
	}
	slope := (f.Y[j+1] - f.Y[j]) / (f.X[j+1] - f.X[j])
	return slope*(x-f.X[j]) + f.Y[j]
}
