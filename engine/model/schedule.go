package model

import (
	"errors"
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kairoscope/kairoscope/engine/ops"
)

// ErrUnsupported is matched (errors.Is) by Lower's error when the graph has
// something the schedule cannot express: an op outside package ops, a node
// that is not float32, a statement other than gorgonia.Read, a loss without
// its gradient, an input that is not the net's. The host program then runs
// the graph on the TapeMachine; a device refuses it (ErrNotImplemented).
var ErrUnsupported = errors.New("graph not supported by the schedule")

// Schedule is the training graph lowered, once, into device-neutral steps:
// what a training step computes and in which order, with the shapes and
// flags each step needs, read off Gorgonia's nodes. The host program
// (program.go) and the device executor (package cuda) are two interpreters
// of it; neither walks the graph itself.
//
// A training step is: the batch (X, R, WT) loaded by the interpreter, then
// Steps in order (forward, the fused loss and its gradient, backward), then
// Update (Adam over Params with their gradients), then Metrics (the loss's
// sums added into the epoch's, which the interpreter reads back once an
// epoch).
type Schedule struct {
	X, R, WT *G.Node   // the batch: x [batch, in], targets r [batch], row weights wt [batch]
	Params   []Param   // in the net's order (w1, b1, w2, ...)
	Consts   []*G.Node // constants the steps read (the gradient's seed), float32
	Steps    []Step    // forward, loss, backward: each step's operands are computed by earlier steps or are inputs
	Loss     *LossStep // the one loss, also in Steps
	// Dense is the forward pass as a chain of dense layers from X to the
	// loss's input, for inference on any number of rows.
	Dense []*DenseStep
	// Update and Metrics end every training step.
	Update  AdamStep
	Metrics MetricsStep
	// Order is every node the schedule touches, inputs first, then each
	// step's output in step order (a loss step: its gradient, then the loss).
	Order G.Nodes
}

// Param is a parameter and the node of its gradient.
type Param struct {
	Node, Grad *G.Node
}

// Phase says which part of a training step a Step belongs to.
type Phase int

const (
	Forward   Phase = iota // from the batch to the loss's input
	LossPhase              // the loss and its gradient
	Backward               // the gradients
)

// Step is one op of a training step.
type Step interface {
	// Output is the node the step writes (a LossStep: the gradient node;
	// its Loss node is written too).
	Output() *G.Node
	// Inputs are the nodes it reads.
	Inputs() G.Nodes
	Phase() Phase
}

// DenseStep is ops.DenseOp: Out [Rows, Width] = act(X [Rows, In] · W [In, Width] + B [Width]).
type DenseStep struct {
	Out, X, W, B    *G.Node
	Rows, In, Width int
	Act             ops.Activation
}

// MatMulStep is ops.MatMulOp: Out [M, N] = op(A)·op(B), op(A) M×K (A stored
// K×M when TransA), op(B) K×N (B stored N×K when TransB).
type MatMulStep struct {
	Out, A, B      *G.Node
	M, N, K        int
	TransA, TransB bool
}

// ActGradStep is ops.ActGradOp: Out = DY ⊙ act'(z), read off the forward
// output Y = act(z); Size elements.
type ActGradStep struct {
	Out, DY, Y *G.Node
	Act        ops.Activation
	Size       int
}

// ColSumStep is ops.ColSumOp: Out [Cols] = Σ_rows X [Rows, Cols].
type ColSumStep struct {
	Out, X     *G.Node
	Rows, Cols int
}

// LossStep is ops.ProbLossOp fused with its ops.ProbLossGradOp over the
// same operands: Loss = Σwt·(nll + w·bce)/Σwt of Out [Rows, 3], R and WT,
// and Grad [Rows, 3] = Seed·∂Loss/∂Out, with the loss's sums (ops.LossSums)
// kept for the epoch's statistics.
type LossStep struct {
	Loss, Grad *G.Node
	Out, R, WT *G.Node
	Seed       *G.Node // the constant upstream gradient (gorgonia.Grad's 1)
	SeedValue  float32
	Rows       int
	BCEWeight  float64
}

// AdamStep updates every parameter with its gradient (one Adam step).
type AdamStep struct{ Params []Param }

// MetricsStep adds the loss step's sums into the epoch's.
type MetricsStep struct{ Loss *LossStep }

func (s *DenseStep) Output() *G.Node   { return s.Out }
func (s *MatMulStep) Output() *G.Node  { return s.Out }
func (s *ActGradStep) Output() *G.Node { return s.Out }
func (s *ColSumStep) Output() *G.Node  { return s.Out }
func (s *LossStep) Output() *G.Node    { return s.Grad }

func (s *DenseStep) Inputs() G.Nodes   { return G.Nodes{s.X, s.W, s.B} }
func (s *MatMulStep) Inputs() G.Nodes  { return G.Nodes{s.A, s.B} }
func (s *ActGradStep) Inputs() G.Nodes { return G.Nodes{s.DY, s.Y} }
func (s *ColSumStep) Inputs() G.Nodes  { return G.Nodes{s.X} }
func (s *LossStep) Inputs() G.Nodes    { return G.Nodes{s.Out, s.R, s.WT, s.Seed} }

func (s *DenseStep) Phase() Phase   { return Forward }
func (s *MatMulStep) Phase() Phase  { return Backward }
func (s *ActGradStep) Phase() Phase { return Backward }
func (s *ColSumStep) Phase() Phase  { return Backward }
func (s *LossStep) Phase() Phase    { return LossPhase }

// Roles names the graph's inputs: the batch and the parameters, in order.
type Roles struct {
	X, R, WT *G.Node
	Params   []*G.Node
}

// Lower lowers the training graph g, whose inputs are roles, into a
// Schedule. Every op node becomes one step in a topological order, except
// the loss and its gradient, which become one LossStep where the first of
// the two comes. It requires exactly one ProbLoss node, read by no op node,
// and exactly one ProbLossGrad node over its operands with a constant
// scalar seed; every parameter's gradient computed; the forward pass a chain
// of dense layers over the parameters; float32 throughout. Otherwise the
// error matches ErrUnsupported and names the node.
func Lower(g *G.ExprGraph, roles Roles) (*Schedule, error) {
	order, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("model: sorting the graph: %w", err)
	}
	slices.Reverse(order) // Sort puts the loss first: edges go from a node to its operands
	s := &Schedule{X: roles.X, R: roles.R, WT: roles.WT}
	if roles.X == nil || roles.R == nil || roles.WT == nil {
		return nil, unsupported("the graph's batch inputs x, r and wt are not all given")
	}
	inputs := map[*G.Node]bool{roles.X: true, roles.R: true, roles.WT: true}
	for _, p := range roles.Params {
		inputs[p] = true
	}
	// Inputs and constants first: a constant (the gradient's seed) may come
	// after a node that reads it in Sort's order.
	var opNodes G.Nodes
	for _, n := range order {
		switch {
		case n.IsVar():
			if !inputs[n] {
				return nil, unsupported("graph input %v is neither a batch input nor a parameter of the net", n)
			}
			if _, ok := Float32s(n.Value()); !ok {
				return nil, unsupported("input %v holds %T, not float32", n, n.Value())
			}
		case IsConstant(n):
			if _, ok := Float32s(n.Value()); !ok {
				return nil, unsupported("constant %v holds %T, not float32", n, n.Value())
			}
			s.Consts = append(s.Consts, n)
		case isStatement(n):
			if !isRead(g, n) {
				return nil, unsupported("statement %v (%v): only gorgonia.Read is supported", n, n.Op())
			}
		default:
			opNodes = append(opNodes, n)
		}
	}
	s.Order = append(G.Nodes{roles.X, roles.R, roles.WT}, roles.Params...)
	s.Order = append(s.Order, s.Consts...)

	if err := s.pairLoss(g, opNodes); err != nil {
		return nil, err
	}
	done := map[*G.Node]bool{}
	for _, n := range s.Order {
		done[n] = true
	}
	for _, n := range opNodes {
		if done[n] {
			continue // the loss node, computed with its gradient
		}
		if n.Dtype() != tensor.Float32 {
			return nil, unsupported("node %v is %v, not float32", n, n.Dtype())
		}
		st, err := s.step(g, n)
		if err != nil {
			return nil, err
		}
		for _, in := range st.Inputs() {
			if !done[in] {
				return nil, fmt.Errorf("model: node %v reads %v before it is computed", n, in)
			}
		}
		s.Steps = append(s.Steps, st)
		s.Order = append(s.Order, st.Output())
		done[st.Output()] = true
		if ls, ok := st.(*LossStep); ok {
			s.Order = append(s.Order, ls.Loss)
			done[ls.Loss] = true
		}
	}
	computed := map[*G.Node]bool{}
	for _, st := range s.Steps {
		computed[st.Output()] = true
	}
	for _, p := range roles.Params {
		d := p.Deriv()
		if d == nil || !computed[d] {
			return nil, unsupported("parameter %v has no computed gradient (build the graph with gorgonia.Grad)", p)
		}
		s.Params = append(s.Params, Param{Node: p, Grad: d})
	}
	if err := s.chain(); err != nil {
		return nil, err
	}
	s.Update = AdamStep{Params: s.Params}
	s.Metrics = MetricsStep{Loss: s.Loss}
	return s, nil
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("model: %w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// isStatement: a statement's op (gorgonia.Read's "print", Let, ...) has no
// type; Gorgonia exports no other test.
func isStatement(n *G.Node) bool { op := n.Op(); return op != nil && op.Type() == nil }

// isRead: gorgonia.Read, the one statement accepted (the TapeMachine copies
// a value out there; the interpreters read their buffers themselves).
func isRead(g *G.ExprGraph, n *G.Node) bool {
	return n.Op().String() == "print" && len(Operands(g, n)) == 1
}

// pairLoss finds the loss and its gradient and makes s.Loss.
func (s *Schedule) pairLoss(g *G.ExprGraph, opNodes G.Nodes) error {
	var losses, grads G.Nodes
	for _, n := range opNodes {
		switch n.Op().(type) {
		case ops.ProbLossOp:
			losses = append(losses, n)
		case ops.ProbLossGradOp:
			grads = append(grads, n)
		}
	}
	if len(losses) != 1 || len(grads) != 1 {
		return unsupported("%d ProbLoss and %d ProbLossGrad nodes (want one differentiated loss)", len(losses), len(grads))
	}
	loss, grad := losses[0], grads[0]
	lop, gop := loss.Op().(ops.ProbLossOp), grad.Op().(ops.ProbLossGradOp)
	lc, gc := Operands(g, loss), Operands(g, grad)
	if lop.BCEWeight() != gop.BCEWeight() || len(lc) != 3 || len(gc) != 4 || lc[0] != gc[0] || lc[1] != gc[1] || lc[2] != gc[2] {
		return unsupported("%v is not the gradient of %v (other operands or BCE weight)", grad, loss)
	}
	if readByOp(g, loss) {
		return unsupported("an op reads the loss %v: only a constant seed gradient is supported", loss)
	}
	seed := gc[3]
	sv, ok := Float32s(seed.Value())
	if !IsConstant(seed) || !ok || len(sv) != 1 {
		return unsupported("%v: the upstream gradient %v is not a constant float32 scalar", grad, seed)
	}
	out := gc[0]
	if len(out.Shape()) != 2 || out.Shape()[1] != Outputs {
		return unsupported("the loss reads %v of shape %v, want [batch, %d]", out, out.Shape(), Outputs)
	}
	s.Loss = &LossStep{Loss: loss, Grad: grad, Out: out, R: gc[1], WT: gc[2], Seed: seed, SeedValue: sv[0],
		Rows: out.Shape()[0], BCEWeight: lop.BCEWeight()}
	return nil
}

// step lowers one op node.
func (s *Schedule) step(g *G.ExprGraph, n *G.Node) (Step, error) {
	ch := Operands(g, n)
	switch op := n.Op().(type) {
	case ops.DenseOp:
		x, w := ch[0].Shape(), ch[1].Shape()
		return &DenseStep{Out: n, X: ch[0], W: ch[1], B: ch[2], Rows: x[0], In: x[1], Width: w[1], Act: op.Activation()}, nil
	case ops.MatMulOp:
		a, b := ch[0].Shape(), ch[1].Shape()
		m, k, nn := a[0], a[1], b[1]
		if op.TransA() {
			m, k = k, m
		}
		if op.TransB() {
			nn = b[0]
		}
		return &MatMulStep{Out: n, A: ch[0], B: ch[1], M: m, N: nn, K: k, TransA: op.TransA(), TransB: op.TransB()}, nil
	case ops.ActGradOp:
		return &ActGradStep{Out: n, DY: ch[0], Y: ch[1], Act: op.Activation(), Size: n.Shape().TotalSize()}, nil
	case ops.ColSumOp:
		x := ch[0].Shape()
		return &ColSumStep{Out: n, X: ch[0], Rows: x[0], Cols: x[1]}, nil
	case ops.ProbLossGradOp, ops.ProbLossOp: // the one pair (pairLoss), where the first of the two comes
		return s.Loss, nil
	}
	return nil, unsupported("node %v (op %v, %T) has no step", n, n.Op(), n.Op())
}

// chain checks that the forward pass is a chain of dense layers from X to
// the loss's input, each over parameters, and records it.
func (s *Schedule) chain() error {
	isParam := func(n *G.Node) bool {
		return slices.ContainsFunc(s.Params, func(p Param) bool { return p.Node == n })
	}
	prev := s.X
	for _, st := range s.Steps {
		d, ok := st.(*DenseStep)
		if !ok {
			continue
		}
		if d.X != prev || !isParam(d.W) || !isParam(d.B) {
			return unsupported("the forward pass is not a chain of dense layers over parameters (at %v)", d.Out)
		}
		s.Dense = append(s.Dense, d)
		prev = d.Out
	}
	if len(s.Dense) == 0 || s.Loss.Out != prev {
		return unsupported("the loss does not read the last dense layer's output")
	}
	return nil
}

// readByOp reports whether an op node (not a statement) reads n.
func readByOp(g *G.ExprGraph, n *G.Node) bool {
	it := g.To(n.ID())
	for it.Next() {
		if m := it.Node().(*G.Node); !isStatement(m) {
			return true
		}
	}
	return false
}
