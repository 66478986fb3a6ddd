package calib

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestScores(t *testing.T) {
	got := Scores([]float64{1, -2, 0.5}, []float64{0, 0, 0.5}, []float64{2, 4, 1})
	want := []float64{0.5, 0.5, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Scores[%d] = %g, want %g", i, got[i], want[i])
		}
	}
}

func TestConformalP(t *testing.T) {
	cal := []float64{0.1, 0.5, 0.5, 2}
	for _, tc := range []struct{ s, want float64 }{
		{0, 5.0 / 5}, {0.5, 4.0 / 5}, {1, 2.0 / 5}, {3, 1.0 / 5},
	} {
		if got := ConformalP(tc.s, cal); got != tc.want {
			t.Errorf("ConformalP(%g) = %g, want %g", tc.s, got, tc.want)
		}
	}
	if got := ConformalP(1, nil); got != 1 {
		t.Errorf("ConformalP with no calibration scores = %g, want 1", got)
	}
}

// TestConformalCoverage checks the finite-sample guarantee the k-th smallest
// score gives: with n = 19 and alpha = 0.1, k = 18 and a new exchangeable
// score is <= q with probability exactly 18/20 = 0.90. numpy's
// quantile(s, k/n, method="higher") would give the 19th score and 0.95.
func TestConformalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, trials = 19, 20000
	s := make([]float64, n)
	covered := 0
	for range trials {
		for i := range s {
			s[i] = math.Abs(rng.NormFloat64())
		}
		q, ok := ConformalQuantile(s, 0.1)
		if !ok {
			t.Fatal("ConformalQuantile(n=19, alpha=0.1) not ok")
		}
		if math.Abs(rng.NormFloat64()) <= q {
			covered++
		}
	}
	// 4 binomial standard deviations of the share over 20000 trials.
	if got := float64(covered) / trials; math.Abs(got-0.9) > 4*math.Sqrt(0.9*0.1/trials) {
		t.Errorf("coverage %.4f, want 0.90", got)
	}
}

func TestConformalQuantileTooFewRows(t *testing.T) {
	// alpha = 0.1 needs n >= 9: k = ceil(10·0.9) = 9.
	if q, ok := ConformalQuantile(make([]float64, 8), 0.1); ok || !math.IsInf(q, 1) {
		t.Errorf("n=8, alpha=0.1: got %v, %v; want +Inf, false", q, ok)
	}
	if _, ok := ConformalQuantile(make([]float64, 9), 0.1); !ok {
		t.Error("n=9, alpha=0.1: not ok")
	}
	if q, ok := ConformalQuantile(nil, 0.1); ok || !math.IsInf(q, 1) {
		t.Errorf("no rows: got %v, %v; want +Inf, false", q, ok)
	}
}

func TestConformalQuantileBadAlphaPanics(t *testing.T) {
	for _, alpha := range []float64{0, 1, -0.1, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("alpha %v did not panic", alpha)
				}
			}()
			ConformalQuantile([]float64{1, 2, 3}, alpha)
		}()
	}
}

func TestCoverageWarning(t *testing.T) {
	for _, tc := range []struct {
		coverage float64
		n        int
		alpha    float64
		want     string // "" for no warning
	}{
		// Large n: the 0.05 floor applies; the edges are inside.
		{0.85, 10000, 0.1, ""},
		{0.95, 10000, 0.1, ""},
		{0.849, 10000, 0.1, "conformal coverage 0.85 on 10000 scored rows is outside 0.90 ± 0.05; intervals are too narrow"},
		{0.951, 10000, 0.1, "too wide"},
		// n = 100: 3·sqrt(0.09/100) = 0.09.
		{0.81, 100, 0.1, ""},
		{0.99, 100, 0.1, ""},
		{0.80, 100, 0.1, "outside 0.90 ± 0.09; intervals are too narrow"},
		// The example from the spec: n = 120 gives ± 0.08.
		{0.78, 120, 0.1, "conformal coverage 0.78 on 120 scored rows is outside 0.90 ± 0.08; intervals are too narrow"},
		{0.9, 0, 0.1, "no scored rows"},
	} {
		got := CoverageWarning(tc.coverage, tc.n, tc.alpha)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("CoverageWarning(%g, %d, %g) = %q, want nil", tc.coverage, tc.n, tc.alpha, *got)
		case tc.want != "" && (got == nil || !strings.Contains(*got, tc.want)):
			t.Errorf("CoverageWarning(%g, %d, %g) = %v, want it to contain %q", tc.coverage, tc.n, tc.alpha, got, tc.want)
		}
	}
}

// With equal weights the weighted quantile is the plain one (itself pinned
// to NumPy), for every n and alpha tried; weights move it towards the
// heavier scores; too little weight below +Inf gives +Inf.
func TestWeightedConformalQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 60; n++ {
		s := make([]float64, n)
		w := make([]float64, n)
		for i := range s {
			s[i], w[i] = rng.ExpFloat64(), 1
		}
		for _, alpha := range []float64{0.05, 0.1, 0.2, 0.5} {
			want, wok := ConformalQuantile(s, alpha)
			got, gok := WeightedConformalQuantile(s, w, alpha)
			if got != want || gok != wok {
				t.Fatalf("n=%d alpha=%v: weighted %v %v, plain %v %v", n, alpha, got, gok, want, wok)
			}
		}
	}
	s := []float64{1, 2, 3, 4, 10}
	// (1-0.2)·(Σw+1): equal weights need 4.8 of 6 → the 5th score.
	if q, _ := WeightedConformalQuantile(s, []float64{1, 1, 1, 1, 1}, 0.2); q != 10 {
		t.Errorf("equal weights: %v, want 10", q)
	}
	// The outlier weighs 0.1 against 2 for the others: need 0.8·9.1 = 7.28,
	// reached at the 4th score (2+2+2+2 = 8).
	if q, _ := WeightedConformalQuantile(s, []float64{2, 2, 2, 2, 0.1}, 0.2); q != 4 {
		t.Errorf("a light outlier: %v, want 4", q)
	}
	if q, ok := WeightedConformalQuantile(s, []float64{0.1, 0.1, 0.1, 0.1, 0.1}, 0.2); ok || !math.IsInf(q, 1) {
		t.Errorf("too light: %v %v, want +Inf", q, ok)
	}
}
