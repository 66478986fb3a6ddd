package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/engine/optim"
)

// Outputs is the width of the last layer: mu, s (sigma = softplus(s) + eps)
// and the logit of p_up.
const Outputs = 3

// Config shapes the network and its optimiser.
type Config struct {
	Hidden    []int   // hidden layer widths (default 64, 64)
	LR        float64 // Adam learning rate (default 1e-3)
	Batch     int     // rows per step; the last batch of an epoch is padded with zero-weight rows
	BCEWeight float64 // w in NLL + w·BCE (default 0.5)
	// EpochRows caps the rows an epoch trains on: each epoch shuffles every
	// row and trains on the first EpochRows of that order, a fresh random
	// subset each epoch (0 = all rows). A forecast of a long series has 30
	// nearly alike rows per day (one per horizon); capping its epochs keeps
	// their cost that of a short series' (README, Performance).
	EpochRows int
	// TapeMachine runs the training steps on Gorgonia's TapeMachine instead
	// of the compiled host program (see Exec): the same numbers, bit for
	// bit, slower; for comparison and as the fallback for a graph the host
	// program cannot run.
	TapeMachine bool
}

// Net is the MLP as a Gorgonia graph of fixed batch size, with its Adam
// state. The graph computes the loss and its gradient; a training step runs
// it as a host program (program.go: each op node one call of its kernel in
// package ops, nothing allocated) or, with Config.TapeMachine, on
// Gorgonia's TapeMachine. Evaluation runs the same ops' CPU kernels outside
// the graph on any number of rows.
//
// A Net is not safe for concurrent use.
type Net struct {
	cfg    Config
	in     int
	g      *G.ExprGraph
	prog   *program // the compiled step, or nil: the TapeMachine runs it
	vm     G.VM     // only without prog
	exec   string   // Exec's answer
	outN   *G.Node  // the last layer's output [Batch, 3]
	lossN  *G.Node
	gradN  []*G.Node // the parameters' gradients, in params order
	xN     *G.Node   // the batch inputs' nodes
	rN     *G.Node
	wtN    *G.Node
	x      *tensor.Dense // [Batch, in] batch input, bound into the graph
	r, wt  *tensor.Dense // [Batch] targets and row weights
	params []*G.Node     // w1, b1, w2, b2, ..., w_out, b_out
	data   [][]float32   // the parameters' backing arrays, updated in place
	loss   G.Value
	out    G.Value
	grads  []G.Value
	gbuf   [][]float32 // the gradients' arrays of the current step
	adam   *optim.Adam
	// evaluation scratch, grown on demand
	act [2][]float32
}

// New builds the graph for in features, initialised like PyTorch's Linear
// (U(±1/√fan_in) for weights and biases) from seed.
func New(in int, cfg Config, seed uint64) (*Net, error) {
	if in < 1 || cfg.Batch < 1 || len(cfg.Hidden) == 0 {
		return nil, fmt.Errorf("model: need inputs, a batch size and hidden layers (got in=%d batch=%d hidden=%v)", in, cfg.Batch, cfg.Hidden)
	}
	for _, h := range cfg.Hidden {
		if h < 1 {
			return nil, fmt.Errorf("model: hidden width %d must be positive", h)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x6b616972))
	n := &Net{cfg: cfg, in: in, g: G.NewGraph()}
	b := cfg.Batch
	n.x = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(b, in))
	n.r = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(b))
	n.wt = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(b))
	x := G.NewMatrix(n.g, tensor.Float32, G.WithShape(b, in), G.WithName("x"), G.WithValue(n.x))
	r := G.NewVector(n.g, tensor.Float32, G.WithShape(b), G.WithName("r"), G.WithValue(n.r))
	wt := G.NewVector(n.g, tensor.Float32, G.WithShape(b), G.WithName("wt"), G.WithValue(n.wt))
	n.xN, n.rN, n.wtN = x, r, wt

	h, fanIn := x, in
	widths := append(append([]int(nil), cfg.Hidden...), Outputs)
	for i, width := range widths {
		bound := 1 / math.Sqrt(float64(fanIn))
		w := n.param(fmt.Sprintf("w%d", i+1), rng, bound, fanIn, width)
		bias := n.param(fmt.Sprintf("b%d", i+1), rng, bound, width)
		act := ops.ReLU
		if i == len(widths)-1 {
			act = ops.Identity
		}
		dense := ops.Dense
		if i == 0 {
			dense = ops.DenseNoInputGrad // the data needs no gradient
		}
		var err error
		if h, err = dense(h, w, bias, act); err != nil {
			return nil, fmt.Errorf("model: layer %d: %w", i+1, err)
		}
		fanIn = width
	}
	loss, err := ops.ProbLoss(h, r, wt, cfg.BCEWeight)
	if err != nil {
		return nil, fmt.Errorf("model: loss: %w", err)
	}
	gradNodes, err := G.Grad(loss, n.params...)
	if err != nil {
		return nil, fmt.Errorf("model: gradient: %w", err)
	}
	G.Read(loss, &n.loss)
	G.Read(h, &n.out)
	n.grads = make([]G.Value, len(gradNodes))
	n.gbuf = make([][]float32, len(gradNodes))
	for i, gn := range gradNodes {
		G.Read(gn, &n.grads[i])
	}
	n.outN, n.lossN, n.gradN = h, loss, gradNodes
	sizes := make([]int, len(n.data))
	for i, d := range n.data {
		sizes[i] = len(d)
	}
	n.adam = optim.NewAdam(cfg.LR, sizes)
	if err := n.compile(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Net) param(name string, rng *rand.Rand, bound float64, shape ...int) *G.Node {
	size := 1
	for _, s := range shape {
		size *= s
	}
	data := make([]float32, size)
	for i := range data {
		data[i] = float32((2*rng.Float64() - 1) * bound)
	}
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	var node *G.Node
	if len(shape) == 2 {
		node = G.NewMatrix(n.g, tensor.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(t))
	} else {
		node = G.NewVector(n.g, tensor.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(t))
	}
	n.params = append(n.params, node)
	n.data = append(n.data, data)
	return node
}

// compile builds the host program from the graph's schedule, or the
// TapeMachine when cfg asks for it or the schedule cannot express the graph.
func (n *Net) compile() error {
	if !n.cfg.TapeMachine {
		s, err := n.Lower()
		var p *program
		if err == nil {
			p, err = newProgram(s, n.adam, n.data)
		}
		switch {
		case err == nil:
			n.prog, n.exec = p, ExecHost
			return nil
		case !errors.Is(err, ErrUnsupported):
			return err
		}
		n.exec = ExecTapeMachine + " (host program: " + err.Error() + ")"
	} else {
		n.exec = ExecTapeMachine
	}
	n.vm = G.NewTapeMachine(n.g)
	return nil
}

// Lower lowers the net's training graph, as it is now, into a Schedule
// (Lower): the host program's and the device executor's one reading of the
// graph.
func (n *Net) Lower() (*Schedule, error) {
	return Lower(n.g, Roles{X: n.xN, R: n.rN, WT: n.wtN, Params: n.params})
}

// What Exec reports.
const (
	ExecHost        = "host program"
	ExecTapeMachine = "gorgonia TapeMachine"
)

// Exec says what runs the training steps: ExecHost, or ExecTapeMachine
// (followed by why, when the host program could not run the graph).
func (n *Net) Exec() string { return n.exec }

// Close releases the machine.
func (n *Net) Close() error {
	if n.vm == nil {
		return nil
	}
	return n.vm.Close()
}

// Graph is the training graph (forward, loss and backward), for executors
// that run it elsewhere.
func (n *Net) Graph() *G.ExprGraph { return n.g }

// In is the number of input features.
func (n *Net) In() int { return n.in }

// Params returns the parameters' backing arrays (w1, b1, ...); they are
// live: writing them changes the model.
func (n *Net) Params() [][]float32 { return n.data }

// Snapshot copies the parameters. It never fails.
func (n *Net) Snapshot() ([][]float32, error) {
	s := make([][]float32, len(n.data))
	for i, d := range n.data {
		s[i] = append([]float32(nil), d...)
	}
	return s, nil
}

// Restore writes a snapshot back; a snapshot of another shape is an error.
func (n *Net) Restore(s [][]float32) error {
	if len(s) != len(n.data) {
		return fmt.Errorf("model: Restore: %d arrays for %d parameters", len(s), len(n.data))
	}
	for i, d := range n.data {
		if len(s[i]) != len(d) {
			return fmt.Errorf("model: Restore: parameter %d has %d values, the snapshot %d", i, len(d), len(s[i]))
		}
	}
	for i, d := range n.data {
		copy(d, s[i])
	}
	return nil
}

// Step runs one optimiser step on a full batch already written into the
// batch buffers (see Batch) and returns the loss before the update. On the
// host program it allocates nothing.
func (n *Net) Step() (float64, error) {
	if n.prog != nil {
		n.prog.run() // forward, backward, Adam and the epoch's sums
		return float64(n.prog.bufs[n.lossN][0]), nil
	}
	defer n.vm.Reset()
	if err := n.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("model: step: %w", err)
	}
	for i, g := range n.grads {
		n.gbuf[i] = g.Data().([]float32)
	}
	n.adam.Step(n.data, n.gbuf)
	return float64(n.loss.Data().(float32)), nil
}

// Batch returns the buffers of the next step: x [Batch·in], r and wt [Batch].
func (n *Net) Batch() (x, r, wt []float32) {
	return n.x.Float32s(), n.r.Float32s(), n.wt.Float32s()
}

// LastOutputs returns the [Batch, 3] outputs of the last Step.
func (n *Net) LastOutputs() []float32 {
	if n.prog != nil {
		return n.prog.bufs[n.outN]
	}
	return n.out.Data().([]float32)
}

// Forward writes the [rows, 3] outputs for x [rows, in] into dst, running
// the ops' CPU kernels on the current parameters. It never fails.
func (n *Net) Forward(dst, x []float32, rows int) error {
	src, width := x, n.in
	nl := len(n.data) / 2
	for l := 0; l < nl; l++ {
		w, b := n.data[2*l], n.data[2*l+1]
		outW := len(b)
		act, out := ops.ReLU, dst
		if l < nl-1 {
			buf := &n.act[l%2]
			if cap(*buf) < rows*outW {
				*buf = make([]float32, rows*outW)
			}
			out = (*buf)[:rows*outW]
		} else {
			act = ops.Identity
		}
		ops.DenseForward(out, src, w, b, rows, width, outW, act)
		src, width = out, outW
	}
	return nil
}
