package metrics

import (
	"math"
	"testing"
)

func TestMincerZarnowitzRecoversLine(t *testing.T) {
	// y = 0.5 + 2·mu + e with residuals orthogonal to (1, mu): OLS
	// recovers the line exactly and the test rejects (F ≈ 29 on 2 and 3
	// degrees of freedom).
	mu := []float64{-2, -1, 0, 1, 2}
	e := []float64{0.1, -0.2, 0.2, -0.2, 0.1} // Σe = 0, Σe·mu = 0
	y := make([]float64, len(mu))
	for i := range mu {
		y[i] = 0.5 + 2*mu[i] + e[i]
	}
	a, b, p := MincerZarnowitz(y, mu)
	if math.Abs(a-0.5) > 1e-15 || math.Abs(b-2) > 1e-15 {
		t.Errorf("params = %v, %v, want 0.5, 2", a, b)
	}
	if !(p > 0 && p < 0.01) {
		t.Errorf("fP = %v, want a strong rejection", p)
	}
}

func TestMincerZarnowitzUnbiased(t *testing.T) {
	// y = mu + e, e orthogonal to (1, mu): a = 0, b = 1, F = 0, p = 1.
	mu := []float64{-2, -1, 0, 1, 2}
	e := []float64{0.1, -0.2, 0.2, -0.2, 0.1}
	y := make([]float64, len(mu))
	for i := range mu {
		y[i] = mu[i] + e[i]
	}
	a, b, p := MincerZarnowitz(y, mu)
	if math.Abs(a) > 1e-15 || math.Abs(b-1) > 1e-15 || math.Abs(p-1) > 1e-12 {
		t.Errorf("MZ = %v, %v, %v, want 0, 1, 1", a, b, p)
	}
}

func TestMincerZarnowitzDegenerate(t *testing.T) {
	for name, in := range map[string][2][]float64{
		"n=0":         {nil, nil},
		"n=2":         {{1, 2}, {0.5, 1}},
		"constant mu": {{1, 2, 3, 4}, {0.3, 0.3, 0.3, 0.3}},
	} {
		a, b, p := MincerZarnowitz(in[0], in[1])
		if !math.IsNaN(a) || !math.IsNaN(b) || !math.IsNaN(p) {
			t.Errorf("%s: MZ = %v, %v, %v, want NaN ×3", name, a, b, p)
		}
	}
	// An exact fit away from (0, 1): F = +Inf, p = 0.
	if _, _, p := MincerZarnowitz([]float64{1, 3, 5}, []float64{0, 1, 2}); p != 0 {
		t.Errorf("exact fit: fP = %v, want 0", p)
	}
}
