package ops_test

import (
	"errors"
	"math"
	"testing"

	"github.com/kairoscope/kairoscope/engine/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Tolerances of the finite-difference checks (central differences, h = 1e-6,
// float64): the truncation error is O(h²) and the rounding error
// O(eps·|cost|/h) ≈ 1e-10, so 1e-6 relative is comfortable and still catches
// any wrong term.
const fdTol = 1e-6

// denseCase builds cost = Σ (act(x·w + b) ⊙ c) with a non-constant c, so the
// upstream gradient dy = c is not 1.
type denseCase struct {
	n, in, out int
	x, w, b, c []float64
}

func newDenseCase() denseCase {
	const n, in, out = 6, 4, 5
	d := denseCase{n: n, in: in, out: out,
		x: det(n*in, 0.7, 1.2), w: det(in*out, 1.9, 0.8), b: det(out, 2.3, 0.3), c: det(n*out, 3.1, 1.5)}
	return d
}

// preacts returns x·w + b in float64 (to keep the ReLU kinks away from the
// finite-difference steps).
func (d denseCase) preacts() []float64 {
	z := make([]float64, d.n*d.out)
	for i := 0; i < d.n; i++ {
		for j := 0; j < d.out; j++ {
			s := d.b[j]
			for k := 0; k < d.in; k++ {
				s += d.x[i*d.in+k] * d.w[k*d.out+j]
			}
			z[i*d.out+j] = s
		}
	}
	return z
}

func (d denseCase) graph(t *testing.T, dt tensor.Dtype, act ops.Activation) (g *G.ExprGraph, wrt G.Nodes, y, cost *G.Node, grads G.Nodes) {
	t.Helper()
	g = G.NewGraph()
	x := input(g, dt, "x", d.x, d.n, d.in)
	w := input(g, dt, "w", d.w, d.in, d.out)
	b := input(g, dt, "b", d.b, d.out)
	c := input(g, dt, "c", d.c, d.n, d.out)
	var err error
	if y, err = ops.Dense(x, w, b, act); err != nil {
		t.Fatal(err)
	}
	cost = G.Must(G.Sum(G.Must(G.HadamardProd(y, c))))
	wrt = G.Nodes{x, w, b}
	if grads, err = G.Grad(cost, wrt...); err != nil {
		t.Fatal(err)
	}
	return
}

func TestDenseGradFiniteDiff(t *testing.T) {
	d := newDenseCase()
	minZ := math.Inf(1)
	neg := 0
	for _, z := range d.preacts() {
		minZ = math.Min(minZ, math.Abs(z))
		if z < 0 {
			neg++
		}
	}
	if minZ < 1e-3 || neg == 0 || neg == d.n*d.out {
		t.Fatalf("test data: min |z| = %g, %d of %d pre-activations negative; want kinks far away and both signs", minZ, neg, d.n*d.out)
	}
	for _, act := range []ops.Activation{ops.Identity, ops.ReLU} {
		t.Run(act.String(), func(t *testing.T) {
			g, wrt, y, cost, grads := d.graph(t, tensor.Float64, act)
			if _, ok := y.Op().(ops.DenseOp); !ok {
				t.Fatalf("Dense node's op is %T, want ops.DenseOp", y.Op())
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			maxRel, n := fdCheck(t, m, cost, wrt, grads)
			t.Logf("%v: max relative error vs central differences = %.3g over %d entries (x, w, b)", act, maxRel, n)
			if maxRel > fdTol {
				t.Errorf("gradient mismatch: %g > %g", maxRel, fdTol)
			}
		})
	}
}

func TestDenseNoInputGrad(t *testing.T) {
	d := newDenseCase()
	g := G.NewGraph()
	x := input(g, tensor.Float64, "x", d.x, d.n, d.in)
	w := input(g, tensor.Float64, "w", d.w, d.in, d.out)
	b := input(g, tensor.Float64, "b", d.b, d.out)
	c := input(g, tensor.Float64, "c", d.c, d.n, d.out)
	y := G.Must(ops.DenseNoInputGrad(x, w, b, ops.ReLU))
	if op := y.Op().(ops.DenseOp); op.InputGrad() || op.Activation() != ops.ReLU {
		t.Fatalf("op %v: InputGrad %v, Activation %v", op, op.InputGrad(), op.Activation())
	}
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(y, c))))
	grads, err := G.Grad(cost, w, b)
	if err != nil {
		t.Fatal(err)
	}
	// No dx GEMM in the graph: exactly one MatMul (dw).
	matmuls := 0
	for _, n := range g.AllNodes() {
		if op, ok := n.Op().(ops.Op); ok && op.Kind() == ops.KindMatMul {
			matmuls++
		}
	}
	if matmuls != 1 {
		t.Errorf("graph has %d MatMul nodes, want 1 (dw only)", matmuls)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	maxRel, n := fdCheck(t, m, cost, G.Nodes{w, b}, grads)
	t.Logf("max relative error = %.3g over %d entries (w, b)", maxRel, n)
	if maxRel > fdTol {
		t.Errorf("gradient mismatch: %g", maxRel)
	}

	g2 := G.NewGraph()
	x2 := input(g2, tensor.Float64, "x", d.x, d.n, d.in)
	w2 := input(g2, tensor.Float64, "w", d.w, d.in, d.out)
	b2 := input(g2, tensor.Float64, "b", d.b, d.out)
	y2 := G.Must(ops.DenseNoInputGrad(x2, w2, b2, ops.Identity))
	if _, err := G.Grad(G.Must(G.Sum(y2)), x2); err == nil {
		t.Error("Grad with respect to the input of DenseNoInputGrad succeeded; want an error")
	}
}

// probLossCase: out [N,3] with mixed signs, r with exact zeros, weights with
// zeros and non-unit values.
func probLossCase() (n int, out, r, wt []float64) {
	n = 9
	out = det(3*n, 1.3, 1.4)
	r = det(n, 0.9, 1.1)
	r[1], r[4], r[7] = 0, 0, 0
	wt = []float64{1, 0, 2.5, 0.5, 1, 0, 0.25, 3, 1}
	return
}

func TestProbLossGradFiniteDiff(t *testing.T) {
	n, o, r, wt := probLossCase()
	g := G.NewGraph()
	out := input(g, tensor.Float64, "out", o, n, 3)
	rn := input(g, tensor.Float64, "r", r, n)
	wn := input(g, tensor.Float64, "wt", wt, n)
	loss := G.Must(ops.ProbLoss(out, rn, wn, 0.5))
	cost := G.Must(G.Mul(loss, G.NewConstant(3.0))) // upstream gradient 3, not 1
	grads, err := G.Grad(cost, out)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	maxRel, entries := fdCheck(t, m, cost, G.Nodes{out}, grads)
	t.Logf("max relative error vs central differences = %.3g over %d entries", maxRel, entries)
	if maxRel > fdTol {
		t.Errorf("gradient mismatch: %g > %g", maxRel, fdTol)
	}

	// The value matches RowLoss, and zero-weight rows get a zero gradient.
	run(t, m)
	var sum, sumW float64
	for i := 0; i < n; i++ {
		nll, bce := ops.RowLoss(o[3*i], o[3*i+1], o[3*i+2], r[i])
		sum += wt[i] * (nll + 0.5*bce)
		sumW += wt[i]
	}
	if e := relErr(scalar(t, loss), sum/sumW, 1e-300); e > 1e-14 {
		t.Errorf("loss %v, RowLoss gives %v (rel %g)", scalar(t, loss), sum/sumW, e)
	}
	d := float64s(t, grads[0])
	for i, w := range wt {
		if w == 0 && (d[3*i] != 0 || d[3*i+1] != 0 || d[3*i+2] != 0) {
			t.Errorf("row %d has weight 0 but gradient %v", i, d[3*i:3*i+3])
		}
	}
}

// The same graphs in float32 agree with float64 to float32 precision.
func TestFloat32MatchesFloat64(t *testing.T) {
	const tol = 1e-5 // relative to the largest |entry| of each tensor
	d := newDenseCase()
	for _, act := range []ops.Activation{ops.Identity, ops.ReLU} {
		var vals [2][]float64
		var grads [2][][]float64
		for k, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			g, _, _, cost, gn := d.graph(t, dt, act)
			m := G.NewTapeMachine(g)
			run(t, m)
			vals[k] = []float64{scalar(t, cost)}
			for _, n := range gn {
				grads[k] = append(grads[k], float64s(t, n))
			}
			m.Close()
		}
		costErr, gradErr := maxScaledErr(vals[1], vals[0]), 0.0
		for i := range grads[0] {
			gradErr = math.Max(gradErr, maxScaledErr(grads[1][i], grads[0][i]))
		}
		// The cost Σ y⊙c cancels, so its float32 error is the larger one.
		t.Logf("Dense %v: float32 vs float64, relative error: cost %.3g, gradients %.3g (max over x, w, b, relative to each tensor's max)", act, costErr, gradErr)
		if costErr > tol || gradErr > tol {
			t.Errorf("Dense %v: float32 differs from float64: cost %g, gradients %g", act, costErr, gradErr)
		}
	}

	n, o, r, wt := probLossCase()
	var vals, grads [2][]float64
	for k, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := G.NewGraph()
		out := input(g, dt, "out", o, n, 3)
		loss := G.Must(ops.ProbLoss(out, input(g, dt, "r", r, n), input(g, dt, "wt", wt, n), 0.5))
		gn, err := G.Grad(loss, out)
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		run(t, m)
		vals[k], grads[k] = []float64{scalar(t, loss)}, float64s(t, gn[0])
		m.Close()
	}
	costErr, gradErr := maxScaledErr(vals[1], vals[0]), maxScaledErr(grads[1], grads[0])
	t.Logf("ProbLoss: float32 vs float64, relative error: loss %.3g, gradient %.3g", costErr, gradErr)
	if costErr > tol || gradErr > tol {
		t.Errorf("ProbLoss: float32 differs from float64: loss %g, gradient %g", costErr, gradErr)
	}
}

// maxScaledErr is max |got−want| / max|want|.
func maxScaledErr(got, want []float64) float64 {
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	if scale == 0 {
		scale = 1
	}
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(got[i]-want[i])/scale)
	}
	return worst
}

func TestGraphErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 3), G.WithName("x"))
	w := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 5), G.WithName("w"))
	b := G.NewVector(g, tensor.Float64, G.WithShape(5), G.WithName("b"))
	if _, err := ops.Dense(x, w, b, ops.ReLU); !errors.Is(err, ops.ErrShape) {
		t.Errorf("x [4,3]·w [2,5]: err = %v, want ErrShape", err)
	}
	w35 := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 5), G.WithName("w35"))
	if _, err := ops.Dense(x, w35, b, ops.Activation(7)); !errors.Is(err, ops.ErrActivation) {
		t.Errorf("activation 7: err = %v, want ErrActivation", err)
	}
	w32 := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 5), G.WithName("w32"))
	if _, err := ops.Dense(x, w32, b, ops.ReLU); err == nil {
		t.Error("mixed float64/float32: no error")
	}
	out := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("out"))
	r := G.NewVector(g, tensor.Float64, G.WithShape(4), G.WithName("r"))
	if _, err := ops.ProbLoss(out, r, r, 0.5); !errors.Is(err, ops.ErrShape) {
		t.Errorf("out [4,2]: err = %v, want ErrShape", err)
	}
	out3 := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 3), G.WithName("out3"))
	r5 := G.NewVector(g, tensor.Float64, G.WithShape(5), G.WithName("r5"))
	if _, err := ops.ProbLoss(out3, r, r5, 0.5); !errors.Is(err, ops.ErrShape) {
		t.Errorf("wt [5] for N=4: err = %v, want ErrShape", err)
	}
	if _, err := ops.ProbLoss(out3, r, r, math.NaN()); err == nil {
		t.Error("bceW NaN: no error")
	}
}
