package ops

import (
	"errors"
	"math"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// allOps lists one value of every op and parameter combination.
func allOps() []Op {
	return []Op{
		DenseOp{act: Identity}, DenseOp{act: ReLU},
		DenseOp{act: Identity, noInputGrad: true}, DenseOp{act: ReLU, noInputGrad: true},
		ActGradOp{act: Identity}, ActGradOp{act: ReLU},
		MatMulOp{}, MatMulOp{transA: true}, MatMulOp{transB: true}, MatMulOp{transA: true, transB: true},
		ColSumOp{},
		ProbLossOp{bceW: 0.5}, ProbLossOp{bceW: 1}, ProbLossOp{bceW: 0},
		ProbLossGradOp{bceW: 0.5}, ProbLossGradOp{bceW: 1}, ProbLossGradOp{bceW: 0},
	}
}

func TestOpHashesDistinct(t *testing.T) {
	seen := map[uint32]Op{}
	for _, op := range allOps() {
		h := op.Hashcode()
		if prev, ok := seen[h]; ok {
			t.Errorf("%v and %v share hash %x", prev, op, h)
		}
		seen[h] = op
		if op.Kind().String() == "" || op.String() == "" {
			t.Errorf("%#v: empty Kind or String", op)
		}
	}
}

func dense(dt tensor.Dtype, data []float64, shape ...int) *tensor.Dense {
	d := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	for i, v := range data {
		if dt == tensor.Float32 {
			d.Float32s()[i] = float32(v)
		} else {
			d.Float64s()[i] = v
		}
	}
	return d
}

func seq(n int, a, b float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Sin(a*float64(i)+b) * 1.3
	}
	return v
}

// UsePreallocDo (which the TapeMachine never calls; see doc.go) gives what
// Do gives, overwrites every element of a dirty buffer, and refuses a buffer
// of the wrong shape or dtype.
func TestUsePreallocDo(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		x := dense(dt, seq(15, 0.7, 0.1), 5, 3)
		w := dense(dt, seq(12, 1.1, 0.2), 3, 4)
		b := dense(dt, seq(4, 1.7, 0.3), 4)
		dy := dense(dt, seq(20, 0.9, 0.4), 5, 4)
		y := dense(dt, seq(20, 1.3, 0.5), 5, 4)
		out := dense(dt, seq(15, 0.3, 0.6), 5, 3)
		r := dense(dt, []float64{0.5, 0, -0.2, 1, 0}, 5)
		wt := dense(dt, []float64{1, 0, 2, 0.5, 1}, 5)
		var g gorgonia.Value = gorgonia.NewF64(2)
		if dt == tensor.Float32 {
			g = gorgonia.NewF32(2)
		}
		cases := []struct {
			op   gorgonia.UsePreallocDoer
			in   []gorgonia.Value
			want tensor.Shape
		}{
			{DenseOp{act: ReLU}, []gorgonia.Value{x, w, b}, tensor.Shape{5, 4}},
			{ActGradOp{act: ReLU}, []gorgonia.Value{dy, y}, tensor.Shape{5, 4}},
			{MatMulOp{transB: true}, []gorgonia.Value{dy, w}, tensor.Shape{5, 3}},
			{MatMulOp{transA: true}, []gorgonia.Value{x, dy}, tensor.Shape{3, 4}},
			{ColSumOp{}, []gorgonia.Value{dy}, tensor.Shape{4}},
			{ProbLossGradOp{bceW: 0.5}, []gorgonia.Value{out, r, wt, g}, tensor.Shape{5, 3}},
		}
		for _, c := range cases {
			op := c.op.(Op)
			ref, err := op.Do(c.in...)
			if err != nil {
				t.Fatalf("%v %v: Do: %v", op, dt, err)
			}
			if !ref.Shape().Eq(c.want) {
				t.Fatalf("%v %v: Do gives shape %v, want %v", op, dt, ref.Shape(), c.want)
			}
			p := tensor.New(tensor.Of(dt), tensor.WithShape(c.want...))
			if dt == tensor.Float32 {
				for i := range p.Float32s() {
					p.Float32s()[i] = float32(math.NaN())
				}
			} else {
				for i := range p.Float64s() {
					p.Float64s()[i] = math.NaN()
				}
			}
			got, err := c.op.UsePreallocDo(p, c.in...)
			if err != nil {
				t.Fatalf("%v %v: UsePreallocDo: %v", op, dt, err)
			}
			if got != p {
				t.Errorf("%v %v: UsePreallocDo did not return the preallocated tensor", op, dt)
			}
			rv, gv := ref.(*tensor.Dense), got.(*tensor.Dense)
			for i := 0; i < rv.Size(); i++ {
				a, _ := rv.At(unravel(i, c.want)...)
				b, _ := gv.At(unravel(i, c.want)...)
				if a != b {
					t.Fatalf("%v %v: element %d: Do %v, UsePreallocDo %v", op, dt, i, a, b)
				}
			}
			wrong := tensor.New(tensor.Of(dt), tensor.WithShape(c.want[0]+1))
			if _, err := c.op.UsePreallocDo(wrong, c.in...); !errors.Is(err, ErrShape) {
				t.Errorf("%v %v: wrong-shape prealloc: err = %v, want ErrShape", op, dt, err)
			}
			other := tensor.Float64
			if dt == tensor.Float64 {
				other = tensor.Float32
			}
			if _, err := c.op.UsePreallocDo(tensor.New(tensor.Of(other), tensor.WithShape(c.want...)), c.in...); !errors.Is(err, ErrDtype) {
				t.Errorf("%v %v: wrong-dtype prealloc: err = %v, want ErrDtype", op, dt, err)
			}
		}
	}
}

func unravel(i int, s tensor.Shape) []int {
	idx := make([]int, len(s))
	for d := len(s) - 1; d >= 0; d-- {
		idx[d] = i % s[d]
		i /= s[d]
	}
	return idx
}

func TestDoRejectsBadOperands(t *testing.T) {
	x := dense(tensor.Float64, seq(6, 1, 0), 2, 3)
	w := dense(tensor.Float64, seq(12, 1, 0), 3, 4)
	b := dense(tensor.Float64, seq(4, 1, 0), 4)

	wT := dense(tensor.Float64, seq(12, 1, 0), 4, 3)
	if err := wT.T(); err != nil { // a lazily transposed [3,4] view
		t.Fatal(err)
	}
	if _, err := (DenseOp{}).Do(x, wT, b); !errors.Is(err, ErrLayout) {
		t.Errorf("transposed w: err = %v, want ErrLayout", err)
	}
	if _, err := (DenseOp{}).Do(x, dense(tensor.Float32, seq(12, 1, 0), 3, 4), b); !errors.Is(err, ErrDtype) {
		t.Errorf("float32 w with float64 x: err = %v, want ErrDtype", err)
	}
	xi := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]int{1, 2, 3, 4, 5, 6}))
	if _, err := (DenseOp{}).Do(xi, w, b); !errors.Is(err, ErrDtype) {
		t.Errorf("int x: err = %v, want ErrDtype", err)
	}
	if _, err := (DenseOp{}).Do(x, dense(tensor.Float64, seq(8, 1, 0), 2, 4), b); !errors.Is(err, ErrShape) {
		t.Errorf("w [2,4] for x [2,3]: err = %v, want ErrShape", err)
	}
	if _, err := (MatMulOp{}).Do(x, x); !errors.Is(err, ErrShape) {
		t.Errorf("[2,3]·[2,3]: err = %v, want ErrShape", err)
	}
	out := dense(tensor.Float64, seq(6, 1, 0), 2, 3)
	r := dense(tensor.Float64, []float64{1, 0}, 2)
	if _, err := (ProbLossGradOp{}).Do(out, r, r, gorgonia.NewF32(1)); !errors.Is(err, ErrDtype) {
		t.Errorf("float32 upstream gradient for float64 operands: err = %v, want ErrDtype", err)
	}
}

// With every weight 0 (an all-padding batch) the loss and its gradient are
// 0, not NaN; zero-weight rows are skipped even when they hold NaN.
func TestProbLossZeroWeights(t *testing.T) {
	out := dense(tensor.Float64, []float64{0.1, 0.2, 0.3, math.NaN(), math.Inf(1), 1}, 2, 3)
	r := dense(tensor.Float64, []float64{1, 0}, 2)
	zero := dense(tensor.Float64, []float64{0, 0}, 2)
	l, err := (ProbLossOp{bceW: 0.5}).Do(out, r, zero)
	if err != nil {
		t.Fatal(err)
	}
	if v := float64(*l.(*gorgonia.F64)); v != 0 {
		t.Errorf("all-zero weights: loss %v, want 0", v)
	}
	d, err := (ProbLossGradOp{bceW: 0.5}).Do(out, r, zero, gorgonia.NewF64(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range d.(*tensor.Dense).Float64s() {
		if v != 0 {
			t.Fatalf("all-zero weights: gradient %v, want zeros", d)
		}
	}

	wt := dense(tensor.Float64, []float64{2, 0}, 2)
	l, _ = (ProbLossOp{bceW: 0.5}).Do(out, r, wt)
	nll, bce := RowLoss(0.1, 0.2, 0.3, 1)
	if got, want := float64(*l.(*gorgonia.F64)), nll+0.5*bce; math.Abs(got-want) > 1e-15 {
		t.Errorf("NaN in a zero-weight row: loss %v, want %v", got, want)
	}
	d, _ = (ProbLossGradOp{bceW: 0.5}).Do(out, r, wt, gorgonia.NewF64(1))
	for i, v := range d.(*tensor.Dense).Float64s() {
		if math.IsNaN(v) || (i >= 3 && v != 0) {
			t.Fatalf("NaN in a zero-weight row: gradient %v", d)
		}
	}
}

func TestSoftplusSigmoid(t *testing.T) {
	for _, c := range []struct{ x, sp, sig float64 }{
		{0, math.Ln2, 0.5},
		{1000, 1000, 1},
		{-1000, 0, 0},
		{40, 40, 1},
		{-40, math.Exp(-40), math.Exp(-40)},
		{1e-20, math.Ln2, 0.5},
	} {
		if sp := Softplus(c.x); math.Abs(sp-c.sp) > 1e-15*math.Max(1, math.Abs(c.sp)) || math.IsNaN(sp) {
			t.Errorf("Softplus(%v) = %v, want %v", c.x, sp, c.sp)
		}
		if s := Sigmoid(c.x); math.Abs(s-c.sig) > 1e-15 || math.IsNaN(s) {
			t.Errorf("Sigmoid(%v) = %v, want %v", c.x, s, c.sig)
		}
	}
	// Far into the tails the loss stays finite: sigma is floored at SigmaEps.
	nll, bce := RowLoss(0, -1000, 1000, 0)
	if math.IsNaN(nll) || math.IsInf(nll, 0) || bce != 1000 {
		t.Errorf("RowLoss(0, -1000, 1000, 0) = %v, %v", nll, bce)
	}
	if want := halfLog2Pi + math.Log(SigmaEps); math.Abs(nll-want) > 1e-12 {
		t.Errorf("NLL at sigma = SigmaEps, r = mu: %v, want %v", nll, want)
	}
}

func TestDenseForward(t *testing.T) {
	const n, in, out = 7, 5, 6
	x32, w32, b32 := make([]float32, n*in), make([]float32, in*out), make([]float32, out)
	for i, v := range seq(n*in, 0.31, 0.2) {
		x32[i] = float32(v)
	}
	for i, v := range seq(in*out, 0.77, 0.4) {
		w32[i] = float32(v)
	}
	for i, v := range seq(out, 1.9, 0.1) {
		b32[i] = float32(v)
	}
	dst := make([]float32, n*out)
	for _, act := range []Activation{Identity, ReLU} {
		DenseForward(dst, x32, w32, b32, n, in, out, act)
		neg := 0
		for i := 0; i < n; i++ {
			for j := 0; j < out; j++ {
				z := float64(b32[j])
				for k := 0; k < in; k++ {
					z += float64(x32[i*in+k]) * float64(w32[k*out+j])
				}
				if z < 0 {
					neg++
				}
				if act == ReLU {
					z = math.Max(z, 0)
				}
				if got := float64(dst[i*out+j]); math.Abs(got-z) > 1e-5 {
					t.Fatalf("%v: dst[%d,%d] = %v, want %v", act, i, j, got, z)
				}
			}
		}
		if neg == 0 {
			t.Fatal("test data has no negative pre-activation")
		}
	}
	// Below gonum's parallel threshold (4 blocks of 64×64) nothing is allocated.
	if a := testing.AllocsPerRun(20, func() { DenseForward(dst, x32, w32, b32, n, in, out, ReLU) }); a != 0 {
		t.Errorf("DenseForward allocates %v times per call", a)
	}
	defer func() {
		if recover() == nil {
			t.Error("DenseForward with a short dst did not panic")
		}
	}()
	DenseForward(dst[:3], x32, w32, b32, n, in, out, ReLU)
}
