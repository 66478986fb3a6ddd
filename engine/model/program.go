package model

import (
	"errors"
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kairoscope/kairoscope/engine/ops"
)

// errNoHostKernel: the graph has a node the host program cannot run (an
// op outside package ops, a float64 node, ...). New then runs the graph on
// Gorgonia's TapeMachine instead.
var errNoHostKernel = errors.New("no host kernel")

// program is the training graph compiled for the host, the CPU twin of the
// cuda executor: every node's value lives in a buffer allocated once (the
// inputs' and parameters' are their bound arrays), and every op node is one
// call of its kernel in package ops (DenseForward, MatMul, ActGrad, ColSum,
// ProbLossStep) in the graph's topological order. It computes what the
// TapeMachine computes, bit for bit, without the interpreter, without
// allocating (the TapeMachine reallocates every intermediate tensor on
// every step: about 440 KiB a step for the default model) and with the
// loss fused with its gradient.
//
// A program is not safe for concurrent use.
type program struct {
	calls []func()
	bufs  map[*G.Node][]float32
	sums  ops.LossSums // the loss node's sums, from the last run
}

// run executes one forward and backward pass.
func (p *program) run() {
	for _, c := range p.calls {
		c()
	}
}

// compileProgram compiles g. It returns an error wrapping errNoHostKernel
// when g has a node it cannot run.
func compileProgram(g *G.ExprGraph) (*program, error) {
	order, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("model: sorting the graph: %w", err)
	}
	slices.Reverse(order) // Sort puts the loss first: edges go from a node to its operands
	p := &program{bufs: map[*G.Node][]float32{}}
	// Inputs and constants first: a constant (the gradient's seed) may
	// come after a node that reads it in Sort's order.
	var opNodes G.Nodes
	for _, n := range order {
		switch {
		case n.IsVar() || IsConstant(n):
			v, ok := Float32s(n.Value())
			if !ok {
				return nil, fmt.Errorf("model: %w: input %v holds %T", errNoHostKernel, n, n.Value())
			}
			p.bufs[n] = v
		case n.Op() != nil && n.Op().Type() == nil:
			// A statement (gorgonia.Read): the Net reads the buffers itself.
		default:
			opNodes = append(opNodes, n)
		}
	}
	losses := 0
	for _, n := range opNodes {
		if _, ok := n.Op().(ops.ProbLossOp); ok {
			losses++
		}
	}
	if losses != 1 {
		return nil, fmt.Errorf("model: %w: %d ProbLoss nodes (want 1)", errNoHostKernel, losses)
	}
	c := &compiler{g: g, p: p, pair: pairLosses(g, opNodes)}
	for _, n := range opNodes {
		if err := c.node(n); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type compiler struct {
	g    *G.ExprGraph
	p    *program
	pair map[*G.Node]*G.Node // ProbLoss node ↔ the ProbLossGrad node whose call computes both
}

// node appends n's call; its operands have buffers already.
func (c *compiler) node(n *G.Node) error {
	if _, ok := n.Op().(ops.ProbLossOp); ok && c.pair[n] != nil {
		c.lossBuf(n) // computed by its gradient's call
		return nil
	}
	if n.Dtype() != tensor.Float32 {
		return fmt.Errorf("model: %w: node %v is %v", errNoHostKernel, n, n.Dtype())
	}
	ch := Operands(c.g, n)
	in := make([][]float32, len(ch))
	shapes := make([]tensor.Shape, len(ch))
	for i, x := range ch {
		b, ok := c.p.bufs[x]
		if !ok {
			return fmt.Errorf("model: node %v reads %v before it is computed", n, x)
		}
		in[i], shapes[i] = b, x.Shape()
	}
	switch op := n.Op().(type) {
	case ops.DenseOp:
		x, w, b := in[0], in[1], in[2]
		rows, width, outW := shapes[0][0], shapes[0][1], shapes[1][1]
		out, act := make([]float32, rows*outW), op.Activation()
		c.p.bufs[n] = out
		c.p.calls = append(c.p.calls, func() { ops.DenseForward(out, x, w, b, rows, width, outW, act) })
	case ops.MatMulOp:
		a, b := in[0], in[1]
		m, k := shapes[0][0], shapes[0][1]
		if op.TransA() {
			m, k = k, m
		}
		nn := shapes[1][1]
		if op.TransB() {
			nn = shapes[1][0]
		}
		out, tA, tB := make([]float32, m*nn), op.TransA(), op.TransB()
		c.p.bufs[n] = out
		c.p.calls = append(c.p.calls, func() { ops.MatMul(out, a, b, tA, tB, m, nn, k) })
	case ops.ActGradOp:
		dy, y := in[0], in[1]
		out, act := make([]float32, len(dy)), op.Activation()
		c.p.bufs[n] = out
		c.p.calls = append(c.p.calls, func() { ops.ActGrad(out, dy, y, act) })
	case ops.ColSumOp:
		src := in[0]
		out := make([]float32, shapes[0][1])
		c.p.bufs[n] = out
		c.p.calls = append(c.p.calls, func() { ops.ColSum(out, src) })
	case ops.ProbLossOp:
		o, r, wt, bceW := in[0], in[1], in[2], op.BCEWeight()
		loss := c.lossBuf(n)
		p := c.p
		p.calls = append(p.calls, func() { p.sums = ops.ProbLossStep(nil, o, r, wt, 0, bceW); setLoss(loss, p.sums) })
	case ops.ProbLossGradOp:
		o, r, wt, gv, bceW := in[0], in[1], in[2], in[3], op.BCEWeight()
		if len(gv) != 1 {
			return fmt.Errorf("model: %w: %v: upstream gradient of %d values", errNoHostKernel, n, len(gv))
		}
		d := make([]float32, len(o))
		c.p.bufs[n] = d
		p := c.p
		if loss := c.pair[n]; loss != nil {
			lb := c.lossBuf(loss)
			p.calls = append(p.calls, func() {
				p.sums = ops.ProbLossStep(d, o, r, wt, float64(gv[0]), bceW)
				setLoss(lb, p.sums)
			})
			break
		}
		p.calls = append(p.calls, func() { ops.ProbLossStep(d, o, r, wt, float64(gv[0]), bceW) })
	default:
		return fmt.Errorf("model: %w: node %v (op %v, %T)", errNoHostKernel, n, n.Op(), n.Op())
	}
	return nil
}

// lossBuf is a ProbLoss node's one-value buffer, made on first use.
func (c *compiler) lossBuf(n *G.Node) []float32 {
	if b, ok := c.p.bufs[n]; ok {
		return b
	}
	b := make([]float32, 1)
	c.p.bufs[n] = b
	return b
}

// setLoss stores ProbLossOp's value, Σwt·loss/Σwt in float32 (0 without
// weight).
func setLoss(dst []float32, s ops.LossSums) {
	dst[0] = 0
	if s.W != 0 {
		dst[0] = float32(s.Loss / s.W)
	}
}

// pairLosses pairs each ProbLoss node with a ProbLossGrad node over the
// same operands (out, r, wt) and BCE weight, in both directions, when no op
// node reads the loss (only statements do): the gradient's call then
// computes the loss too, which moves the loss's computation to the
// gradient's place in the order and changes nothing else.
func pairLosses(g *G.ExprGraph, opNodes G.Nodes) map[*G.Node]*G.Node {
	pair := map[*G.Node]*G.Node{}
	for _, loss := range opNodes {
		lop, ok := loss.Op().(ops.ProbLossOp)
		if !ok || readByOp(g, loss) {
			continue
		}
		lc := Operands(g, loss)
		for _, grad := range opNodes {
			gop, ok := grad.Op().(ops.ProbLossGradOp)
			if !ok || gop.BCEWeight() != lop.BCEWeight() || pair[grad] != nil {
				continue
			}
			if gc := Operands(g, grad); len(gc) == 4 && len(lc) == 3 && gc[0] == lc[0] && gc[1] == lc[1] && gc[2] == lc[2] {
				pair[loss], pair[grad] = grad, loss
				break
			}
		}
	}
	return pair
}

// readByOp reports whether an op node (not a statement) reads n.
func readByOp(g *G.ExprGraph, n *G.Node) bool {
	it := g.To(n.ID())
	for it.Next() {
		if op := it.Node().(*G.Node).Op(); op == nil || op.Type() != nil {
			return true
		}
	}
	return false
}
