package ops_test

import (
	"testing"

	"github.com/kairoscope/kairoscope/engine/ops"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Gorgonia hash-conses nodes: an op applied to the same children with an
// equal hash returns the existing node. Ops that differ in a parameter must
// therefore stay distinct nodes; identical ones may merge.
func TestHashKeepsParametersApart(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("x"), G.WithInit(G.GlorotU(1)))
	w := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("w"), G.WithInit(G.GlorotU(1)))
	b := G.NewVector(g, tensor.Float64, G.WithShape(3), G.WithName("b"), G.WithInit(G.Zeroes()))
	r := G.NewVector(g, tensor.Float64, G.WithShape(4), G.WithName("r"), G.WithInit(G.Zeroes()))
	wt := G.NewVector(g, tensor.Float64, G.WithShape(4), G.WithName("wt"), G.WithInit(G.Ones()))

	relu := G.Must(ops.Dense(x, w, b, ops.ReLU))
	ident := G.Must(ops.Dense(x, w, b, ops.Identity))
	noDX := G.Must(ops.DenseNoInputGrad(x, w, b, ops.ReLU))
	if relu == ident || relu.Op().Hashcode() == ident.Op().Hashcode() {
		t.Error("Dense with ReLU and with Identity on the same inputs merged into one node")
	}
	if relu == noDX {
		t.Error("Dense and DenseNoInputGrad on the same inputs merged into one node")
	}
	if again := G.Must(ops.Dense(x, w, b, ops.ReLU)); again != relu {
		t.Logf("note: an identical Dense was not merged (%p, %p)", again, relu)
	}

	l05 := G.Must(ops.ProbLoss(ident, r, wt, 0.5))
	l10 := G.Must(ops.ProbLoss(ident, r, wt, 1.0))
	if l05 == l10 || l05.Op().Hashcode() == l10.Op().Hashcode() {
		t.Error("ProbLoss with bceW 0.5 and 1.0 on the same inputs merged into one node")
	}
	if l05.Op().(ops.ProbLossOp).BCEWeight() != 0.5 || l10.Op().(ops.ProbLossOp).BCEWeight() != 1.0 {
		t.Errorf("BCEWeight: %v, %v", l05.Op().(ops.ProbLossOp).BCEWeight(), l10.Op().(ops.ProbLossOp).BCEWeight())
	}
	// Weights that differ only in the last bit stay apart too.
	lNext := G.Must(ops.ProbLoss(ident, r, wt, 0.5000000000000001))
	if lNext == l05 {
		t.Error("ProbLoss with bceW 0.5 and its successor float merged into one node")
	}

	// The gradient ops of both losses stay apart as well.
	cost := G.Must(G.Add(l05, l10))
	if _, err := G.Grad(cost, w, b); err != nil {
		t.Fatal(err)
	}
	bce := map[float64]int{}
	for _, n := range g.AllNodes() {
		if op, ok := n.Op().(ops.ProbLossGradOp); ok {
			bce[op.BCEWeight()]++
		}
	}
	if bce[0.5] != 1 || bce[1.0] != 1 {
		t.Errorf("ProbLossGrad nodes by bceW: %v, want one each for 0.5 and 1", bce)
	}
}
