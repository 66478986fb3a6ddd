package metrics

import (
	"math"
	"testing"
)

func TestKSNormPEdges(t *testing.T) {
	if got := KSNormP(nil); !math.IsNaN(got) {
		t.Errorf("KSNormP(empty) = %v, want NaN", got)
	}
	if got := KSNormP([]float64{0, math.NaN()}); !math.IsNaN(got) {
		t.Errorf("KSNormP(NaN) = %v, want NaN", got)
	}
	// n = 1 at the median: D = 1/2 = 0.5/n, the bottom of the support.
	if got := KSNormP([]float64{0}); got != 1 {
		t.Errorf("KSNormP([0]) = %v, want 1", got)
	}
	// n = 1 in general: P(D₁ > d) = 2 − 2d for d in [1/2, 1].
	d := ndtr(1.3)
	if got, want := KSNormP([]float64{1.3}), 2-2*d; math.Abs(got-want) > 1e-15 {
		t.Errorf("KSNormP([1.3]) = %v, want %v", got, want)
	}
}

// The sample quantiles Φ⁻¹((i−½)/n) are as close to N(0,1) as n points can
// be: D = 1/2n and p = 1. Moving them away lowers p.
func TestKSNormPIdealSample(t *testing.T) {
	const n = 200
	z := make([]float64, n)
	for i := range z {
		z[i] = math.Sqrt2 * math.Erfinv(2*(float64(i)+0.5)/n-1)
	}
	if got := KSNormP(z); got != 1 {
		t.Errorf("KSNormP(ideal) = %v, want 1", got)
	}
	prev := 1.0
	for _, shift := range []float64{0.05, 0.1, 0.2, 0.4, 0.8} {
		s := make([]float64, n)
		for i := range z {
			s[i] = z[i] + shift
		}
		p := KSNormP(s)
		if !(p < prev) {
			t.Errorf("shift %v: p = %v, not below %v", shift, p, prev)
		}
		prev = p
	}
}

// P(Dₙ > d) must fall as d grows, across every branch cut-off of SciPy's
// algorithm selection. At the switch from the exact MTW method to the
// Pelz–Good approximation the two may disagree in their last digits, hence
// the slack.
func TestKolmogorovSFMonotone(t *testing.T) {
	for _, n := range []int{2, 7, 40, 140, 141, 1000, 20000} {
		prev := 1.0
		for i := 1; i <= 400; i++ {
			d := float64(i) / 400
			sf := kstwoSF(n, d)
			if math.IsNaN(sf) || sf < 0 || sf > 1 {
				t.Fatalf("n=%d d=%v: sf = %v", n, d, sf)
			}
			if sf > prev*(1+1e-9)+1e-300 {
				t.Errorf("n=%d: sf(%v) = %v > sf(previous) = %v", n, d, sf, prev)
			}
			prev = sf
		}
	}
}

// For large n the exact distribution approaches Kolmogorov's limit
// P(√n·Dₙ > x) → 2Σ(−1)^(k−1)exp(−2k²x²).
func TestKolmogorovSFLimit(t *testing.T) {
	const n = 20000
	for _, x := range []float64{0.6, 0.9, 1.2, 1.6} {
		var lim float64
		for k := 1; k <= 100; k++ {
			lim += 2 * math.Pow(-1, float64(k-1)) * math.Exp(-2*float64(k*k)*x*x)
		}
		got := kstwoSF(n, x/math.Sqrt(n))
		if math.Abs(got-lim) > 0.01*lim {
			t.Errorf("x=%v: sf = %v, limit %v", x, got, lim)
		}
	}
}

func TestSmirnovSF(t *testing.T) {
	if got := smirnovSF(1, 0.3); got != 0.7 {
		t.Errorf("smirnov(1, 0.3) = %v, want 0.7", got)
	}
	// x >= 1 − 1/n: (1 − x)ⁿ.
	if got, want := smirnovSF(4, 0.8), math.Pow(0.2, 4); math.Abs(got-want) > 1e-16 {
		t.Errorf("smirnov(4, 0.8) = %v, want %v", got, want)
	}
	// A two-term lower sum, by hand: n = 3, x = 0.4,
	// x·[(1/x)(1−x)³ + C(3,1)(x+1/3)⁰(1−x−1/3)²] = 0.4·(0.54 + 3·(4/15)²);
	// SciPy gives 0.3013333333333333.
	if got := smirnovSF(3, 0.4); math.Abs(got-0.3013333333333333) > 1e-16 {
		t.Errorf("smirnov(3, 0.4) = %.17g, want 0.3013333333333333", got)
	}
	for _, x := range []float64{-0.1, 1.1, math.NaN()} {
		if got := smirnovSF(5, x); !math.IsNaN(got) {
			t.Errorf("smirnov(5, %v) = %v, want NaN", x, got)
		}
	}
}
