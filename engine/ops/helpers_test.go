package ops_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/kairoscope/kairoscope/engine/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// backing converts float64 data to a fresh slice of dtype dt.
func backing(dt tensor.Dtype, v []float64) any {
	if dt == tensor.Float32 {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return f
	}
	return append([]float64(nil), v...)
}

// input adds an input node of dtype dt bound to a copy of data.
func input(g *G.ExprGraph, dt tensor.Dtype, name string, data []float64, shape ...int) *G.Node {
	if len(data) != tensor.Shape(shape).TotalSize() {
		panic(fmt.Sprintf("input %s: %d values for shape %v", name, len(data), shape))
	}
	v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(backing(dt, data)))
	return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v))
}

// float64s reads a node's value as float64s (a copy), whatever its dtype.
func float64s(t testing.TB, n *G.Node) []float64 {
	t.Helper()
	v := n.Value()
	if v == nil {
		t.Fatalf("node %v has no value", n)
	}
	switch d := v.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		o := make([]float64, len(d))
		for i, x := range d {
			o[i] = float64(x)
		}
		return o
	case float64:
		return []float64{d}
	case float32:
		return []float64{float64(d)}
	}
	t.Fatalf("node %v: unexpected value %T", n, v.Data())
	return nil
}

func scalar(t testing.TB, n *G.Node) float64 {
	t.Helper()
	v := float64s(t, n)
	if len(v) != 1 {
		t.Fatalf("node %v: want a scalar, got %d values", n, len(v))
	}
	return v[0]
}

func run(t testing.TB, m G.VM) {
	t.Helper()
	m.Reset()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
}

// relErr is |got−want| relative to max(|want|, |got|, floor): a relative
// error for ordinary values, an absolute one (scaled by 1/floor) near 0.
func relErr(got, want, floor float64) float64 {
	d := math.Abs(got - want)
	if d == 0 {
		return 0
	}
	return d / math.Max(floor, math.Max(math.Abs(want), math.Abs(got)))
}

// fdCheck compares the analytic gradients (read from grads after one run of
// m) with central differences of the graph's own forward value of cost,
// perturbing each element of each float64 input node in wrt in place. It
// returns the largest relErr (floor 1e-3) and the number of entries checked.
func fdCheck(t *testing.T, m G.VM, cost *G.Node, wrt, grads G.Nodes) (maxRel float64, entries int) {
	t.Helper()
	const h = 1e-6
	run(t, m)
	analytic := make([][]float64, len(grads))
	for i, gn := range grads {
		analytic[i] = float64s(t, gn)
	}
	for i, n := range wrt {
		data := n.Value().Data().([]float64)
		if len(data) != len(analytic[i]) {
			t.Fatalf("%v: %d values, gradient has %d", n, len(data), len(analytic[i]))
		}
		for j := range data {
			orig := data[j]
			data[j] = orig + h
			run(t, m)
			fp := scalar(t, cost)
			data[j] = orig - h
			run(t, m)
			fm := scalar(t, cost)
			data[j] = orig
			fd := (fp - fm) / (2 * h)
			if e := relErr(analytic[i][j], fd, 1e-3); e > maxRel {
				maxRel = e
			}
			entries++
		}
	}
	return maxRel, entries
}

// mlp is the golden-test model: in → hidden... → 3 with ReLU hidden layers,
// ProbLoss on top. The first layer uses DenseNoInputGrad.
type mlp struct {
	g        *G.ExprGraph
	x, r, wt *G.Node
	params   G.Nodes // w1, b1, w2, b2, ...
	out      *G.Node
	loss     *G.Node
	grads    G.Nodes // one per param
}

func buildMLP(t testing.TB, dt tensor.Dtype, n int, sizes []int, x, r, wt []float64, params [][]float64, bceW float64) *mlp {
	t.Helper()
	g := G.NewGraph()
	m := &mlp{g: g,
		x:  input(g, dt, "x", x, n, sizes[0]),
		r:  input(g, dt, "r", r, n),
		wt: input(g, dt, "wt", wt, n),
	}
	h := m.x
	for l := 0; l+1 < len(sizes); l++ {
		w := input(g, dt, fmt.Sprintf("w%d", l+1), params[2*l], sizes[l], sizes[l+1])
		b := input(g, dt, fmt.Sprintf("b%d", l+1), params[2*l+1], sizes[l+1])
		m.params = append(m.params, w, b)
		act := ops.ReLU
		if l+2 == len(sizes) {
			act = ops.Identity
		}
		var err error
		if l == 0 {
			h, err = ops.DenseNoInputGrad(h, w, b, act)
		} else {
			h, err = ops.Dense(h, w, b, act)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	m.out = h
	var err error
	if m.loss, err = ops.ProbLoss(h, m.r, m.wt, bceW); err != nil {
		t.Fatal(err)
	}
	if m.grads, err = G.Grad(m.loss, m.params...); err != nil {
		t.Fatal(err)
	}
	return m
}

// det returns n deterministic values in about [−scale, scale].
func det(n int, seed, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * math.Sin(seed*float64(i+1)+0.3*seed)
	}
	return v
}
