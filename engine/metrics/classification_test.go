package metrics

import (
	"math"
	"testing"
)

func TestROCAUCProperties(t *testing.T) {
	up := []bool{false, false, true, true}
	tests := []struct {
		name string
		p    []float64
		up   []bool
		want float64
	}{
		{"perfectly separated", []float64{0.1, 0.2, 0.8, 0.9}, up, 1},
		{"perfectly reversed", []float64{0.9, 0.8, 0.2, 0.1}, up, 0},
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, up, 0.5},
		// scikit-learn's docstring example.
		{"sklearn example", []float64{0.1, 0.4, 0.35, 0.8}, up, 0.75},
		// One positive tied with one of two negatives: (1 + 0.5)/2.
		{"half credit for a tie", []float64{0.3, 0.6, 0.6}, []bool{false, false, true}, 0.75},
		{"one class", []float64{0.1, 0.9}, []bool{true, true}, math.NaN()},
		{"empty", nil, nil, math.NaN()},
		{"NaN score", []float64{0.1, math.NaN()}, []bool{false, true}, math.NaN()},
		{"Inf score", []float64{0.1, math.Inf(1)}, []bool{false, true}, math.NaN()},
	}
	for _, tt := range tests {
		if got := ROCAUC(tt.p, tt.up); !sameFloat(got, tt.want) {
			t.Errorf("%s: ROCAUC = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDirAcc(t *testing.T) {
	mu := []float64{1, -1, 0, 2, math.NaN()}
	y := []float64{2, -3, -1, -1, 0}
	// agree, agree, agree (0 is not up), disagree, agree (NaN > 0 is false)
	if got := DirAcc(mu, y); got != 0.8 {
		t.Errorf("DirAcc = %v, want 0.8", got)
	}
	if got := DirAcc(nil, nil); !math.IsNaN(got) {
		t.Errorf("DirAcc(empty) = %v, want NaN", got)
	}
}

func TestECEPerfectlyCalibratedIsZero(t *testing.T) {
	// Bin 2 holds four 0.25s with one up, bin 7 four 0.75s with three up.
	p := []float64{0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75}
	up := []bool{true, false, false, false, true, true, false, true}
	if got := ECE(p, up, 10); got != 0 {
		t.Errorf("ECE = %v, want 0", got)
	}
}

func TestECEWeightsBins(t *testing.T) {
	// Bin 0: p = 0.05 ×2, no ups: gap 0.05, weight 2/4.
	// Bin 9 (p == 1 lands in the last bin): p = 1 ×2, one up: gap 0.5, weight 2/4.
	p := []float64{0.05, 0.05, 1, 1}
	up := []bool{false, false, true, false}
	if got, want := ECE(p, up, 10), 0.5*0.05+0.5*0.5; math.Abs(got-want) > 1e-15 {
		t.Errorf("ECE = %v, want %v", got, want)
	}
}

func TestECEInvalid(t *testing.T) {
	for _, p := range [][]float64{{}, {-0.1}, {1.1}, {math.NaN()}} {
		if got := ECE(p, make([]bool, len(p)), 10); !math.IsNaN(got) {
			t.Errorf("ECE(%v) = %v, want NaN", p, got)
		}
	}
	mustPanic(t, "ECE bins=0", func() { ECE([]float64{0.5}, []bool{true}, 0) })
}

// Every edge b/B belongs to bin b, the float just below it to bin b−1,
// whatever rounding p·B does.
func TestECEBinEdges(t *testing.T) {
	for B := 1; B <= 64; B++ {
		for b := 0; b <= B; b++ {
			e := float64(b) / float64(B)
			want := min(b, B-1)
			if got := eceBin(e, B); got != want {
				t.Fatalf("eceBin(%d/%d) = %d, want %d", b, B, got, want)
			}
			if b > 0 {
				below := math.Nextafter(e, 0)
				if got := eceBin(below, B); got != b-1 {
					t.Fatalf("eceBin(%d/%d−ulp) = %d, want %d", b, B, got, b-1)
				}
			}
		}
	}
}

func TestBrier(t *testing.T) {
	if got := Brier([]float64{0, 1, 1, 0}, []bool{false, true, true, false}); got != 0 {
		t.Errorf("Brier(perfect) = %v, want 0", got)
	}
	if got := Brier([]float64{0.5, 0.5}, []bool{true, true}); got != 0.25 {
		t.Errorf("Brier(0.5, one class) = %v, want 0.25", got)
	}
	for _, p := range [][]float64{{}, {1.5}, {-0.5}, {math.NaN()}} {
		if got := Brier(p, make([]bool, len(p))); !math.IsNaN(got) {
			t.Errorf("Brier(%v) = %v, want NaN", p, got)
		}
	}
}

func TestBCE(t *testing.T) {
	if got := BCE([]float64{0.5, 0.5}, []bool{true, false}); math.Abs(got-math.Ln2) > 1e-15 {
		t.Errorf("BCE(0.5) = %v, want ln 2", got)
	}
	// One class works (labels=[0, 1]).
	if got, want := BCE([]float64{0.8}, []bool{true}), -math.Log(0.8); math.Abs(got-want) > 1e-15 {
		t.Errorf("BCE(one class) = %v, want %v", got, want)
	}
	// A confidently wrong p = 0 is clipped to 2⁻⁵²: −log(2⁻⁵²) = 52 ln 2,
	// scikit-learn 1.2.1's value (-np.log(np.finfo(float).eps)).
	if got := BCE([]float64{0}, []bool{true}); got != 36.04365338911715 {
		t.Errorf("BCE(p=0, up) = %.17g, want 36.04365338911715", got)
	}
	for _, p := range [][]float64{{}, {math.NaN()}, {math.Inf(1)}} {
		if got := BCE(p, make([]bool, len(p))); !math.IsNaN(got) {
			t.Errorf("BCE(%v) = %v, want NaN", p, got)
		}
	}
}

// sameFloat is equality that also holds between two NaNs.
func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: did not panic", what)
		}
	}()
	f()
}
