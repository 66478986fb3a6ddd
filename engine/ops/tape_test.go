package ops_test

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// snapshot runs the machine once and copies the loss and every gradient.
func snapshot(t *testing.T, vm G.VM, m *mlp) [][]float64 {
	t.Helper()
	run(t, vm)
	s := [][]float64{{scalar(t, m.loss)}}
	for _, g := range m.grads {
		s = append(s, float64s(t, g))
	}
	return s
}

func identical(a, b [][]float64) bool {
	for i := range a {
		for j := range a[i] {
			if math.Float64bits(a[i][j]) != math.Float64bits(b[i][j]) {
				return false
			}
		}
	}
	return true
}

// Forward+backward twice in a row (Reset between) gives bit-identical loss
// and gradients; a changed input changes them, and restoring it restores
// them: no op keeps a stale buffer or a cached result between runs.
func TestTapeMachineRerun(t *testing.T) {
	gd := loadGolden(t)
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			m := buildMLP(t, dt, gd.N, gd.sizes(), gd.X, gd.R, gd.Wt, gd.paramData(), gd.BCEWeight)
			vm := G.NewTapeMachine(m.g)
			defer vm.Close()

			first := snapshot(t, vm, m)
			second := snapshot(t, vm, m)
			if !identical(first, second) {
				t.Fatalf("second run differs from the first:\n%v\n%v", first, second)
			}

			// Bump x[0,0] by 0.5 in place (the graph reads the bound tensor).
			x := m.x.Value().(*tensor.Dense)
			orig, err := x.At(0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var bumped any = float64s(t, m.x)[0] + 0.5
			if dt == tensor.Float32 {
				bumped = float32(bumped.(float64))
			}
			if err := x.SetAt(bumped, 0, 0); err != nil {
				t.Fatal(err)
			}
			changed := snapshot(t, vm, m)
			if identical(first, changed) {
				t.Fatal("changing x[0,0] changed neither the loss nor any gradient")
			}
			if err := x.SetAt(orig, 0, 0); err != nil {
				t.Fatal(err)
			}
			if restored := snapshot(t, vm, m); !identical(first, restored) {
				t.Fatal("restoring x[0,0] did not restore the first run's results")
			}
		})
	}
}

// Read gradients from the nodes gorgonia.Grad returns: those are recomputed
// on every run. Gorgonia's BindDualValues instead ADDS each run's gradient
// to the parameter's dual value (Reset does not clear it), so reading
// p.Grad() without zeroing it after each step gives n times the gradient on
// the n-th run. This test pins that behaviour so a Gorgonia upgrade that
// changes it is noticed.
func TestDualValuesAccumulate(t *testing.T) {
	gd := loadGolden(t)
	m := buildMLP(t, tensor.Float64, gd.N, gd.sizes(), gd.X, gd.R, gd.Wt, gd.paramData(), gd.BCEWeight)
	vm := G.NewTapeMachine(m.g, G.BindDualValues(m.params...))
	defer vm.Close()
	b3 := m.params[len(m.params)-1]
	for k := 1; k <= 2; k++ {
		run(t, vm)
		node := float64s(t, m.grads[len(m.grads)-1])
		dv, err := b3.Grad()
		if err != nil {
			t.Fatal(err)
		}
		acc := dv.Data().([]float64)
		for j := range node {
			if math.Abs(acc[j]-float64(k)*node[j]) > 1e-12*math.Abs(node[j]) {
				t.Fatalf("run %d: dual value %v, gradient node %v; want the dual value to hold %d× the node", k, acc, node, k)
			}
		}
	}
}
