package optim

import (
	"math"
	"math/rand"
	"testing"
)

// refAdam is torch.optim.Adam's single-tensor update written out in
// float64, literally from torch/optim/adam.py (1.13), for one parameter.
type refAdam struct {
	lr, b1, b2, eps float64
	p, m, v         []float64
	t               int
}

func (r *refAdam) step(g []float64) {
	r.t++
	bc1 := 1 - math.Pow(r.b1, float64(r.t))
	bc2 := 1 - math.Pow(r.b2, float64(r.t))
	stepSize := r.lr / bc1
	bc2Sqrt := math.Sqrt(bc2)
	for j := range r.p {
		r.m[j] = r.m[j]*r.b1 + (1-r.b1)*g[j]
		r.v[j] = r.v[j]*r.b2 + (1-r.b2)*g[j]*g[j]
		denom := math.Sqrt(r.v[j])/bc2Sqrt + r.eps
		r.p[j] += -stepSize * r.m[j] / denom
	}
}

func TestAdamMatchesTorchFormula(t *testing.T) {
	// Absolute. Storing O(1) parameters in float32 rounds each update by up
	// to half an ulp (6e-8 near 1): a random walk of about 1e-6 over 200
	// steps, and 1.2e-5 at worst. A wrong term (a missing bias correction,
	// eps inside the sqrt) is off by ~lr = 3e-3.
	const tol = 1e-5
	rng := rand.New(rand.NewSource(1))
	sizes := []int{7, 1, 33}
	a := NewAdam(3e-3, sizes)
	if a.Beta1 != 0.9 || a.Beta2 != 0.999 || a.Eps != 1e-8 {
		t.Fatalf("defaults %v %v %v, want PyTorch's 0.9 0.999 1e-8", a.Beta1, a.Beta2, a.Eps)
	}
	params := make([][]float32, len(sizes))
	grads := make([][]float32, len(sizes))
	refs := make([]*refAdam, len(sizes))
	for i, n := range sizes {
		params[i], grads[i] = make([]float32, n), make([]float32, n)
		refs[i] = &refAdam{lr: a.LR, b1: a.Beta1, b2: a.Beta2, eps: a.Eps,
			p: make([]float64, n), m: make([]float64, n), v: make([]float64, n)}
		for j := range params[i] {
			params[i][j] = float32(rng.NormFloat64())
			refs[i].p[j] = float64(params[i][j])
		}
	}
	g64 := make([][]float64, len(sizes))
	for i, n := range sizes {
		g64[i] = make([]float64, n)
	}
	worst := 0.0
	for s := 0; s < 200; s++ {
		for i := range grads {
			for j := range grads[i] {
				// Mixed scales, including exact zeros and tiny gradients.
				g := float32(rng.NormFloat64() * math.Pow(10, float64(rng.Intn(7)-4)))
				if rng.Intn(10) == 0 {
					g = 0
				}
				grads[i][j], g64[i][j] = g, float64(g)
			}
			refs[i].step(g64[i])
		}
		a.Step(params, grads)
		for i := range params {
			for j := range params[i] {
				worst = math.Max(worst, math.Abs(float64(params[i][j])-refs[i].p[j]))
			}
		}
	}
	t.Logf("200 steps: max |float32 Adam − float64 torch formula| = %.3g", worst)
	if worst > tol {
		t.Errorf("Adam drifts from the torch formula: %g > %g", worst, tol)
	}
	if a.Steps() != 200 {
		t.Errorf("Steps() = %d, want 200", a.Steps())
	}
}

func TestAdamStepAllocatesNothing(t *testing.T) {
	sizes := []int{40 * 64, 64, 64 * 64, 64, 64 * 3, 3}
	a := NewAdam(1e-3, sizes)
	params := make([][]float32, len(sizes))
	grads := make([][]float32, len(sizes))
	for i, n := range sizes {
		params[i], grads[i] = make([]float32, n), make([]float32, n)
		for j := range grads[i] {
			grads[i][j] = float32(j%7) - 3
		}
	}
	if allocs := testing.AllocsPerRun(50, func() { a.Step(params, grads) }); allocs != 0 {
		t.Errorf("Step allocates %v times", allocs)
	}
}

func TestAdamFirstStepAndReset(t *testing.T) {
	a := NewAdam(0.1, []int{3})
	p := [][]float32{{1, 1, 1}}
	g := [][]float32{{2, -0.5, 0}}
	a.Step(p, g)
	// At t = 1 the bias-corrected update is lr·g/(|g| + eps·…) ≈ lr·sign(g).
	want := []float32{0.9, 1.1, 1}
	for j := range want {
		if math.Abs(float64(p[0][j]-want[j])) > 1e-6 {
			t.Errorf("after one step p = %v, want %v", p[0], want)
			break
		}
	}
	if s, bc := a.StepScalars(1); math.Abs(s-1) > 1e-12 || math.Abs(bc-math.Sqrt(0.001)) > 1e-15 {
		t.Errorf("StepScalars(1) = %v, %v; want lr/0.1 = 1, sqrt(0.001)", s, bc)
	}

	a.Reset()
	if a.Steps() != 0 {
		t.Errorf("Steps() after Reset = %d", a.Steps())
	}
	p2 := [][]float32{{1, 1, 1}}
	a.LR = 0.2 // hyper-parameters are read at every step
	a.Step(p2, g)
	want = []float32{0.8, 1.2, 1}
	for j := range want {
		if math.Abs(float64(p2[0][j]-want[j])) > 1e-6 {
			t.Errorf("after Reset and LR=0.2, one step gives %v, want %v", p2[0], want)
			break
		}
	}
}

func TestAdamPanicsOnMismatchBeforeUpdating(t *testing.T) {
	a := NewAdam(0.1, []int{2, 3})
	p := [][]float32{{1, 1}, {1, 1}}
	g := [][]float32{{1, 1}, {1, 1, 1}}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Step with a parameter of the wrong length did not panic")
			}
		}()
		a.Step(p, g)
	}()
	if p[0][0] != 1 || a.Steps() != 0 {
		t.Errorf("a failed Step changed state: p = %v, steps = %d", p, a.Steps())
	}
}
