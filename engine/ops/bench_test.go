package ops

import (
	"math/rand"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkDenseStep times forward + backward of one hidden layer of the
// default model, 256×40 → 64 with ReLU, float32, given an upstream gradient
// dy (dx, dw and db are all computed):
//
//	fused/tape      this package's ops on Gorgonia's TapeMachine (what the engine runs)
//	fused/direct    the same five ops' Do called in sequence, without the VM
//	gorgonia/tape   the plain Gorgonia graph: Mul, BroadcastAdd, Rectify and their gradients
func BenchmarkDenseStep(b *testing.B) {
	const n, in, out = 256, 40, 64
	rng := rand.New(rand.NewSource(1))
	randT := func(shape ...int) *tensor.Dense {
		d := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))
		for i := range d.Float32s() {
			d.Float32s()[i] = float32(rng.NormFloat64())
		}
		return d
	}
	xv, wv, bv, dyv := randT(n, in), randT(in, out), randT(out), randT(n, out)

	type layer func(x, w, bias *gorgonia.Node) (*gorgonia.Node, error)
	tape := func(b *testing.B, f layer) {
		g := gorgonia.NewGraph()
		x := gorgonia.NodeFromAny(g, xv, gorgonia.WithName("x"))
		w := gorgonia.NodeFromAny(g, wv, gorgonia.WithName("w"))
		bias := gorgonia.NodeFromAny(g, bv, gorgonia.WithName("b"))
		dy := gorgonia.NodeFromAny(g, dyv, gorgonia.WithName("dy"))
		y, err := f(x, w, bias)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gorgonia.Backpropagate(gorgonia.Nodes{y}, gorgonia.Nodes{dy}, gorgonia.Nodes{x, w, bias}); err != nil {
			b.Fatal(err)
		}
		m := gorgonia.NewTapeMachine(g)
		defer m.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m.Reset()
			if err := m.RunAll(); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("fused/tape", func(b *testing.B) {
		tape(b, func(x, w, bias *gorgonia.Node) (*gorgonia.Node, error) { return Dense(x, w, bias, ReLU) })
	})
	b.Run("fused/direct", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			y, err := DenseOp{act: ReLU}.Do(xv, wv, bv)
			if err != nil {
				b.Fatal(err)
			}
			dz, _ := ActGradOp{act: ReLU}.Do(dyv, y)
			_, _ = MatMulOp{transB: true}.Do(dz, wv)
			_, _ = MatMulOp{transA: true}.Do(xv, dz)
			_, _ = ColSumOp{}.Do(dz)
		}
	})
	b.Run("gorgonia/tape", func(b *testing.B) {
		tape(b, func(x, w, bias *gorgonia.Node) (*gorgonia.Node, error) {
			xw, err := gorgonia.Mul(x, w)
			if err != nil {
				return nil, err
			}
			z, err := gorgonia.BroadcastAdd(xw, bias, nil, []byte{0})
			if err != nil {
				return nil, err
			}
			return gorgonia.Rectify(z)
		})
	})
}
