package model

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Helpers for reading the model's graph, shared by the host program here
// and the device executor (package cuda), which both compile it.

// Operands returns n's operands in order. *gorgonia.Node does not export
// them; ExprGraph.From (gonum's graph interface) returns them, in operand
// order, duplicates kept.
func Operands(g *G.ExprGraph, n *G.Node) G.Nodes {
	it := g.From(n.ID())
	if it == nil {
		return nil
	}
	out := make(G.Nodes, 0, it.Len())
	for it.Next() {
		out = append(out, it.Node().(*G.Node))
	}
	return out
}

// IsConstant reports whether n is a constant: an op of arity 0 with a
// bound value and no operands, such as the seed gradient gorgonia.Grad adds.
func IsConstant(n *G.Node) bool {
	op := n.Op()
	return op != nil && op.Type() != nil && op.Arity() == 0 && len(Operands(n.Graph(), n)) == 0 && n.Value() != nil
}

// Float32s returns the values of v, a float32 scalar or dense tensor: the
// tensor's own backing array, so writes to it are seen.
func Float32s(v G.Value) ([]float32, bool) {
	switch v := v.(type) {
	case *G.F32:
		return []float32{float32(*v)}, true
	case tensor.Tensor:
		switch d := v.Data().(type) {
		case []float32:
			return d, true
		case float32:
			return []float32{d}, true
		}
	}
	return nil, false
}
