package metrics

import (
	"math"
	"testing"
)

func TestGaussianNLL(t *testing.T) {
	// y = mu: each term is log √(2π) + log σ.
	got := GaussianNLL([]float64{1, 2}, []float64{1, 2}, []float64{1, math.E})
	want := 0.5*math.Log(2*math.Pi) + 0.5
	if math.Abs(got-want) > 1e-15 {
		t.Errorf("GaussianNLL = %v, want %v", got, want)
	}
	for _, s := range []float64{0, -1, math.NaN()} {
		if got := GaussianNLL([]float64{0}, []float64{0}, []float64{s}); !math.IsNaN(got) {
			t.Errorf("GaussianNLL(sigma=%v) = %v, want NaN", s, got)
		}
	}
	if got := GaussianNLL(nil, nil, nil); !math.IsNaN(got) {
		t.Errorf("GaussianNLL(empty) = %v, want NaN", got)
	}
}

func TestGaussianCRPS(t *testing.T) {
	// At z = 0 the score is σ(2φ(0) − 1/√π) = σ(√2 − 1)/√π.
	if got, want := GaussianCRPS(3, 3, 2), 2*(math.Sqrt2-1)/math.Sqrt(math.Pi); math.Abs(got-want) > 1e-15 {
		t.Errorf("GaussianCRPS(z=0) = %v, want %v", got, want)
	}
	// Symmetric in y − mu, and equivariant in location and scale.
	a := GaussianCRPS(1.3, 0.2, 0.7)
	if b := GaussianCRPS(-0.9, 0.2, 0.7); math.Abs(a-b) > 1e-15 {
		t.Errorf("not symmetric: %v vs %v", a, b)
	}
	if b := GaussianCRPS(13+5, 2+5, 7) / 10; math.Abs(a-b) > 1e-14 {
		t.Errorf("not equivariant: %v vs %v", a, b)
	}
	// sigma → 0 approaches the point-mass score |y − mu|, which sigma <= 0
	// returns.
	if got := GaussianCRPS(1, 0.25, 1e-9); math.Abs(got-0.75) > 1e-9 {
		t.Errorf("GaussianCRPS(sigma→0) = %v, want ≈ 0.75", got)
	}
	for _, s := range []float64{0, -1} {
		if got := GaussianCRPS(1, 0.25, s); got != 0.75 {
			t.Errorf("GaussianCRPS(sigma=%v) = %v, want 0.75", s, got)
		}
	}
	// Never below the sharpness floor: CRPS >= σ(√2−1)/√π for any y.
	for _, y := range []float64{-50, -3, -0.1, 0, 0.1, 3, 50} {
		if got, floor := GaussianCRPS(y, 0, 1), (math.Sqrt2-1)/math.Sqrt(math.Pi); got < floor-1e-16 {
			t.Errorf("GaussianCRPS(%v, 0, 1) = %v < %v", y, got, floor)
		}
	}
}
