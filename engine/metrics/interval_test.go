package metrics

import (
	"math"
	"testing"
)

func TestCoverageAndWidth(t *testing.T) {
	y := []float64{0, 1, 2, 3, math.NaN()}
	lo := []float64{0, 1.5, 1, -1, 0}
	hi := []float64{1, 2, 2, 2, 1}
	// in (closed at lo), out, in (closed at hi), out, out (NaN)
	if got := Coverage(y, lo, hi); got != 0.4 {
		t.Errorf("Coverage = %v, want 0.4", got)
	}
	if got := MeanWidth(lo, hi); got != (1+0.5+1+3+1)/5.0 {
		t.Errorf("MeanWidth = %v, want 1.3", got)
	}
	if !math.IsNaN(Coverage(nil, nil, nil)) || !math.IsNaN(MeanWidth(nil, nil)) {
		t.Error("empty input: want NaN")
	}
}

func TestSeasonalNaiveMAE(t *testing.T) {
	// A weekly pattern repeats exactly: its seasonal naive error is 0.
	x := []float64{1, 5, 2, 7, 1, 5, 2, 7, 1}
	if got := SeasonalNaiveMAE(x, 4); got != 0 {
		t.Errorf("repeating series: %v, want 0", got)
	}
	// A trend of slope 0.5 gives period·0.5.
	trend := []float64{0, 0.5, 1, 1.5, 2, 2.5}
	if got := SeasonalNaiveMAE(trend, 3); got != 1.5 {
		t.Errorf("trend: %v, want 1.5", got)
	}
	if got := SeasonalNaiveMAE([]float64{1, 2}, 2); !math.IsNaN(got) {
		t.Errorf("len <= period: %v, want NaN", got)
	}
	mustPanic(t, "period 0", func() { SeasonalNaiveMAE(x, 0) })
}

// Mismatched slices are programmer errors and panic in every metric.
func TestLengthMismatchPanics(t *testing.T) {
	a, b := []float64{0.1, 0.2}, []float64{0.1}
	ub := []bool{true}
	for name, f := range map[string]func(){
		"ROCAUC":          func() { ROCAUC(a, ub) },
		"DirAcc":          func() { DirAcc(a, b) },
		"ECE":             func() { ECE(a, ub, 10) },
		"Brier":           func() { Brier(a, ub) },
		"BCE":             func() { BCE(a, ub) },
		"GaussianNLL":     func() { GaussianNLL(a, a, b) },
		"MincerZarnowitz": func() { MincerZarnowitz(a, b) },
		"Coverage":        func() { Coverage(a, b, a) },
		"MeanWidth":       func() { MeanWidth(a, b) },
	} {
		mustPanic(t, name, f)
	}
}

func TestNpSumOrder(t *testing.T) {
	// Integers sum exactly in any order; the blocked pairwise tree must not
	// drop or repeat an element at any of its boundaries.
	for _, n := range []int{0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 1000, 8191, 8192, 8193, 20000} {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i + 1)
		}
		if got, want := npSum(xs), float64(n)*float64(n+1)/2; got != want {
			t.Errorf("npSum(1..%d) = %v, want %v", n, got, want)
		}
	}
}
