package ops

import (
	"math"
	"math/rand"
	"testing"
)

// ProbLossStep gives bit for bit the numbers of ProbLossOp, ProbLossGradOp
// and RowLoss, on rows with extreme outputs, zero and fractional weights,
// and on an all-padding batch.
func TestProbLossStepMatchesOps(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const n = 300
	out, r, wt := make([]float32, 3*n), make([]float32, n), make([]float32, n)
	for i := range n {
		scale := []float64{0.1, 1, 5, 40}[i%4]
		for j := range 3 {
			out[3*i+j] = float32(rng.NormFloat64() * scale)
		}
		switch i % 3 {
		case 0:
			r[i] = 0
		case 1:
			r[i] = float32(rng.ExpFloat64())
		default:
			r[i] = float32(-rng.ExpFloat64())
		}
		wt[i] = []float32{1, 0, 0.5, 1, 2}[i%5]
	}
	out[0], out[1], out[2] = 0, 0, 0 // x = 0 exactly: both branches' boundary
	const g, bceW = 1.7, 0.5
	check := func(t *testing.T, wt []float32) {
		d := make([]float32, 3*n)
		s := ProbLossStep(d, out, r, wt, g, bceW)
		var loss float64
		if s.W != 0 {
			loss = s.Loss / s.W
		}
		if want := probLoss(out, r, wt, bceW); loss != want {
			t.Errorf("loss %v, ProbLossOp %v", loss, want)
		}
		wantD := make([]float32, 3*n)
		probLossGrad(wantD, out, r, wt, g, bceW)
		for i := range d {
			if d[i] != wantD[i] && !(math.IsNaN(float64(d[i])) && math.IsNaN(float64(wantD[i]))) {
				t.Fatalf("d[%d] = %v, ProbLossGradOp %v", i, d[i], wantD[i])
			}
		}
		var want LossSums
		for i := range r {
			w := float64(wt[i])
			if w == 0 {
				continue
			}
			nll, bce := RowLoss(float64(out[3*i]), float64(out[3*i+1]), float64(out[3*i+2]), float64(r[i]))
			p := Sigmoid(float64(out[3*i+2]))
			if r[i] > 0 {
				p -= 1
			}
			want.Loss += w * (nll + bceW*bce)
			want.W += w
			want.NLL += w * nll
			want.BCE += w * bce
			want.Brier += w * (p * p)
		}
		if s != want {
			t.Errorf("sums %+v, from RowLoss %+v", s, want)
		}
		if s2 := ProbLossStep(nil, out, r, wt, g, bceW); s2 != s {
			t.Errorf("without d: sums %+v, with d %+v", s2, s)
		}
	}
	t.Run("weighted", func(t *testing.T) { check(t, wt) })
	t.Run("all padding", func(t *testing.T) { check(t, make([]float32, n)) })
}

func TestSoftplusSigmoidShared(t *testing.T) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, 0.5, -0.5, 3, -3, 40, -40, 800, -800, math.Inf(1), math.Inf(-1)} {
		sp, sig := softplusSigmoid(x)
		if sp != Softplus(x) || sig != Sigmoid(x) {
			t.Errorf("x=%v: (%v, %v), want (%v, %v)", x, sp, sig, Softplus(x), Sigmoid(x))
		}
	}
}

// The branchless ReLU mask stores exactly what the branchy loop stores,
// NaN, infinities and signed zeros included.
func TestReLUGradBranchless(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	vals := []float32{0, negZero, 1e-30, -1e-30, 2, -2, nan, inf, -inf}
	var dy, y []float32
	for _, a := range vals {
		for _, b := range vals {
			dy, y = append(dy, a), append(y, b)
		}
	}
	dz := make([]float32, len(dy))
	ActGrad(dz, dy, y, ReLU)
	for i := range dz {
		want := float32(0)
		if y[i] > 0 {
			want = dy[i]
		}
		if math.Float32bits(dz[i]) != math.Float32bits(want) {
			t.Errorf("dy %v, y %v: dz %v, want %v", dy[i], y[i], dz[i], want)
		}
	}
	ActGrad(dy, dy, y, ReLU) // in place
	for i := range dz {
		if math.Float32bits(dy[i]) != math.Float32bits(dz[i]) {
			t.Fatalf("in place: %v, want %v", dy[i], dz[i])
		}
	}
}
