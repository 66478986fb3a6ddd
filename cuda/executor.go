package cuda

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	G "gorgonia.org/gorgonia"

	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/engine/optim"
)

// NewTrainer returns a model.NewTrainer whose trainers run each fold's graph
// on dev: it builds the CPU net with model.New (so the initial parameters are
// the CPU path's) and compiles its graph (Compile). The trainers share dev
// and do not close it.
func NewTrainer(dev Device) model.NewTrainer {
	return func(in int, cfg model.Config, seed uint64) (model.Trainer, error) {
		net, err := model.New(in, cfg, seed)
		if err != nil {
			return nil, err
		}
		defer net.Close() // the executor keeps the graph, not the TapeMachine
		e, err := Compile(dev, net, cfg)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

// Executor runs a model.Net's training graph on a Device: a model.Trainer.
//
// Compile interprets the net's schedule (model.Net.Lower, the same lowering
// of the graph the host program runs): every node a device buffer of its
// shape, every step its launches (Steps lists them): DenseStep → one Sgemm
// and one bias_act; MatMulStep → one Sgemm; ActGradStep → relu_grad;
// ColSumStep → col_sum; LossStep → fill + prob_loss (the loss node's buffer
// holds the five weighted sums, the loss being acc[0]/acc[1]) +
// prob_loss_grad. A graph the schedule cannot express, or a step the
// kernels do not cover (an activation other than ReLU), is an
// ErrNotImplemented error: nothing runs on the CPU behind the caller's
// back. A training step is the batch gathers, those launches, the Update
// step (one adam_update) and the Metrics step (one add_into of the step's
// sums into the epoch's). The parameters, their gradients and Adam's
// moments each lie end to end in one slab (paramSlab), so that one
// adam_update covers them all.
//
// Parameters, Adam's moments and a fold's data stay on the device. An epoch
// copies the shuffled row order in (rows int32s), never waits for the
// device, and copies the five epoch sums out at its end: that copy is its one
// host sync.
//
// The first device error is kept: every later call, Close included,
// returns it.
//
// An Executor is not safe for concurrent use.
type Executor struct {
	dev   Device
	cfg   model.Config
	in    int
	batch int
	g     *G.ExprGraph

	bufs     map[*G.Node]*buffer
	owned    []Ptr // every buffer but the data and Forward's
	x, r     *buffer
	wt       *buffer
	params   []param
	slab     paramSlab
	stepAcc  Ptr    // the ProbLoss node's sums, zeroed every step
	epochAcc Ptr    // the epoch's sums
	train    []step // one training step; the first two are the gathers
	fwd      []layer

	adam *optim.Adam
	t    int // Adam steps taken

	// the fold's data, uploaded when Epoch sees new arrays
	hostX, hostY   []float32
	dX, dY, dPerm  Ptr
	perm32         []int32
	accHost        [accLen]float32
	fRows          int // rows Forward's buffers hold
	fX             Ptr
	fH             []Ptr
	err            error // the first error Forward, Snapshot or Restore could not return
	closed         bool
	adamStep, last int // indices in train: the first adam_update, add_into
}

var _ model.Trainer = (*Executor)(nil)

// param is one parameter on the device and its gradient, slices of the
// slab at the same offset.
type param struct {
	node *G.Node
	name string
	n    int
	w, g Ptr
}

// paramSlab is one allocation of 4·n floats: every parameter end to end,
// then their gradients, Adam's first moments and second moments in the
// same order.
type paramSlab struct {
	n          int
	w, g, m, v Ptr
}

// layer is one DenseOp of the forward pass, for Forward.
type layer struct {
	w, b    Ptr
	in, out int
	relu    int32
}

// Compile builds the device program of net's graph on dev and copies net's
// current parameters to the device; cfg must be the one net was built with
// (model.Net does not export it; LR and Batch come from it). Later changes
// to net's parameters do not reach the executor, and the executor never
// writes net. On error everything allocated is freed.
func Compile(dev Device, net *model.Net, cfg model.Config) (*Executor, error) {
	e := &Executor{dev: dev, cfg: cfg, in: net.In(), g: net.Graph(), bufs: map[*G.Node]*buffer{},
		adam: optim.NewAdam(cfg.LR, nil)}
	if err := e.compile(net); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// alloc allocates floats float32s that Close frees.
func (e *Executor) alloc(floats int, what string) (Ptr, error) {
	p, err := e.dev.Alloc(int64(floats) * floatBytes)
	if err != nil {
		return 0, fmt.Errorf("%w (allocating %s: %d floats)", err, what, floats)
	}
	e.owned = append(e.owned, p)
	return p, nil
}

func (e *Executor) compile(net *model.Net) error {
	sch, err := net.Lower()
	if err != nil {
		return fmt.Errorf("cuda: %w: %w", ErrNotImplemented, err)
	}
	c := &compiler{e: e, bufs: e.bufs, names: map[string]int{}}
	c.display = c.displayNames(sch)
	host := net.Params()
	if len(host) != len(sch.Params) {
		return fmt.Errorf("cuda: the net has %d parameters, its schedule %d", len(host), len(sch.Params))
	}
	if err := e.placeParams(c, sch, host); err != nil {
		return err
	}
	for _, n := range append(G.Nodes{sch.X, sch.R, sch.WT}, sch.Consts...) {
		vals, _ := model.Float32s(n.Value())
		b, err := c.alloc(n, len(vals))
		if err != nil {
			return err
		}
		if model.IsConstant(n) {
			if err := e.dev.CopyIn(b.ptr, vals); err != nil {
				return fmt.Errorf("%w (copying constant %s in)", err, b.name)
			}
		}
	}
	e.x, e.r, e.wt = c.bufs[sch.X], c.bufs[sch.R], c.bufs[sch.WT]
	e.params = make([]param, len(sch.Params))
	for i, p := range sch.Params {
		b, err := c.alloc(p.Node, len(host[i]))
		if err != nil {
			return err
		}
		e.params[i] = param{node: p.Node, name: b.name, n: len(host[i]), w: b.ptr, g: c.placed[p.Grad]}
		if err := e.dev.CopyIn(b.ptr, host[i]); err != nil {
			return fmt.Errorf("%w (copying parameter %s in)", err, b.name)
		}
	}
	if len(e.x.shape) != 2 {
		return fmt.Errorf("cuda: the batch input x has shape %v, want [batch, in]", e.x.shape)
	}
	e.batch = e.x.shape[0]
	if e.batch != e.cfg.Batch || e.x.shape[1] != e.in {
		return fmt.Errorf("cuda: the graph's batch is %v, the config says %d rows of %d features", e.x.shape, e.cfg.Batch, e.in)
	}
	for _, st := range sch.Steps {
		if err := c.step(st); err != nil {
			return err
		}
	}
	return e.finish(c, sch)
}

// placeParams allocates the parameter slab and places in it the buffers of
// the parameters (in the schedule's order, which is the net's) and of
// their gradients, which c.alloc then hands out instead of allocating.
func (e *Executor) placeParams(c *compiler, sch *model.Schedule, host [][]float32) error {
	offsets := make([]int, len(host))
	for i, h := range host {
		offsets[i] = e.slab.n
		e.slab.n += len(h)
	}
	base, err := e.alloc(4*e.slab.n, "the parameters, their gradients and Adam's moments")
	if err != nil {
		return err
	}
	at := func(k int) Ptr { return base + Ptr(k*e.slab.n*floatBytes) }
	e.slab.w, e.slab.g, e.slab.m, e.slab.v = at(0), at(1), at(2), at(3)
	c.placed = map[*G.Node]Ptr{}
	for i, p := range sch.Params {
		off := Ptr(offsets[i] * floatBytes)
		c.placed[p.Node] = e.slab.w + off
		c.placed[p.Grad] = e.slab.g + off
	}
	return nil
}

// finish zeroes Adam's state, records the forward chain for Forward and
// lays out the training step: the batch gathers, c.prog (the schedule's
// steps), the Update step (one adam_update over the slab) and the Metrics
// step (one add_into of the step's sums into the epoch's).
func (e *Executor) finish(c *compiler, sch *model.Schedule) error {
	e.stepAcc = c.bufs[sch.Loss.Loss].ptr
	var err error
	if e.epochAcc, err = e.alloc(accLen, "the epoch's loss sums"); err != nil {
		return err
	}
	s := e.slab
	grid, block := elementwise(2 * s.n)
	if err := e.dev.Launch("fill", grid, block, s.m, float32(0), int32(2*s.n)); err != nil { // m and v, end to end
		return fmt.Errorf("%w (zeroing Adam's moments)", err)
	}
	for _, d := range sch.Dense {
		l := layer{w: c.bufs[d.W].ptr, b: c.bufs[d.B].ptr, in: d.In, out: d.Width}
		switch d.Act {
		case ops.ReLU:
			l.relu = 1
		case ops.Identity:
		default:
			return notImplemented("Forward: dense activation %v", d.Act)
		}
		e.fwd = append(e.fwd, l)
	}
	if e.fwd[len(e.fwd)-1].out != model.Outputs {
		return notImplemented("Forward: the last dense layer is %d wide, not %d", e.fwd[len(e.fwd)-1].out, model.Outputs)
	}

	x, r, wt := e.x, e.r, e.wt
	grid, block = elementwise(e.batch * e.in)
	e.train = append(e.train,
		launch("gather_rows", grid, block,
			fmt.Sprintf("%v = X[perm[s : s+%d]] (rows past the data: 0)", x, e.batch),
			x.ptr, Ptr(0), Ptr(0), int32(e.batch), int32(e.in), int32(0)))
	grid, block = elementwise(e.batch)
	e.train = append(e.train,
		launch("gather_targets", grid, block,
			fmt.Sprintf("%v, %v = Y[perm[s : s+%d]], 1 (rows past the data: 0, 0)", r, wt, e.batch),
			r.ptr, wt.ptr, Ptr(0), Ptr(0), int32(e.batch), int32(0)))
	e.train = append(e.train, c.prog...)
	e.adamStep = len(e.train)
	names := make([]string, len(e.params))
	for i, p := range e.params {
		names[i] = p.name
	}
	grid, block = elementwise(s.n)
	e.train = append(e.train, launch("adam_update", grid, block,
		fmt.Sprintf("%s -= Adam(their gradients) [%d]", strings.Join(names, ", "), s.n),
		s.w, s.g, s.m, s.v, float32(0), float32(e.adam.Beta1), float32(e.adam.Beta2), float32(e.adam.Eps),
		float32(0), int32(s.n)))
	e.last = len(e.train)
	e.train = append(e.train, launch("add_into", 1, 32,
		fmt.Sprintf("epoch[%d] += %s[%d]", accLen, c.bufs[sch.Loss.Loss].name, accLen), e.epochAcc, e.stepAcc, int32(accLen)))
	return nil
}

// Steps returns the training step as compiled, one line per device op in
// launch order: the two batch gathers, the graph's program, one adam_update
// per parameter and the add_into of the step's sums into the epoch's. Each
// line is the kernel (or "sgemm") and what it computes.
func (e *Executor) Steps() []string {
	lines := make([]string, len(e.train))
	for i := range e.train {
		lines[i] = e.train[i].line()
	}
	return lines
}

// fail keeps err, when not nil, as the executor's first device error, and
// returns it: a CUDA error leaves the context unusable, so every later call
// returns that first error (usable).
func (e *Executor) fail(err error) error {
	if e.err == nil {
		e.err = err
	}
	return err
}

func (e *Executor) usable() error {
	if e.closed {
		return errors.New("cuda: the executor is closed")
	}
	return e.err
}

// Epoch runs one shuffled pass over x [rows, in] and y [rows], drawing the
// order from rng exactly as (*model.Net).Epoch does (its first
// Config.EpochRows rows when set), so both see the same batches. x and y are copied to the device only when they are not the
// arrays of the previous Epoch (same array and length: the engine passes a
// fold's training data unchanged every epoch; do not modify them in place
// between epochs). ctx is checked before every batch; a cancelled epoch
// returns ctx's error. An EpochTrace in ctx hears of each step once it is
// queued.
func (e *Executor) Epoch(ctx context.Context, x, y []float32, rng *rand.Rand) (model.EpochStats, error) {
	var st model.EpochStats
	if err := e.usable(); err != nil {
		return st, err
	}
	rows, in, b := len(y), e.in, e.batch
	if len(x) != rows*in {
		return st, fmt.Errorf("cuda: x has %d values, want %d rows × %d", len(x), rows, in)
	}
	perm := rng.Perm(rows)
	if rows == 0 {
		return st, nil
	}
	if err := e.upload(x, y); err != nil {
		return st, err
	}
	for i, p := range perm {
		e.perm32[i] = int32(p)
	}
	rows = model.EpochRowsOf(e.cfg, rows) // the steps run over the order's first rows, as on the CPU
	if err := e.dev.CopyInInt32(e.dPerm, e.perm32); err != nil {
		return st, fmt.Errorf("%w (copying the epoch's row order in)", err)
	}
	if err := e.dev.Launch("fill", 1, 32, e.epochAcc, float32(0), int32(accLen)); err != nil {
		return st, fmt.Errorf("%w (zeroing the epoch's sums)", err)
	}
	gr, gt := &e.train[0], &e.train[1]
	gr.args[1], gt.args[2] = e.dX, e.dY
	for start := 0; start < rows; start += b {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		valid := int32(min(b, rows-start))
		idx := e.dPerm + Ptr(start*floatBytes)
		gr.args[2], gr.args[5] = idx, valid
		gt.args[3], gt.args[5] = idx, valid
		e.t++
		stepSize, bc2Sqrt := e.adam.StepScalars(e.t)
		for i := e.adamStep; i < e.last; i++ {
			e.train[i].args[4], e.train[i].args[8] = float32(stepSize), float32(bc2Sqrt)
		}
		for i := range e.train {
			if err := e.train[i].run(e.dev); err != nil {
				return st, fmt.Errorf("%w (training step %d, device op %d: %s)", err, st.Steps+1, i+1, e.train[i].line())
			}
		}
		st.Steps++
		model.StepDone(ctx, st.Steps, (rows+b-1)/b)
	}
	acc := e.accHost[:]
	if err := e.dev.CopyOut(acc, e.epochAcc); err != nil {
		return st, fmt.Errorf("%w (copying the epoch's sums out)", err)
	}
	n := float64(rows)
	st.NLL, st.BCE, st.Brier = float64(acc[2])/n, float64(acc[3])/n, float64(acc[4])/n
	st.Loss = st.NLL + e.cfg.BCEWeight*st.BCE
	if sum := float64(acc[0]); math.IsNaN(sum) || math.IsInf(sum, 0) {
		return st, fmt.Errorf("cuda: training diverged (the epoch's loss sum is %v after %d steps); lower the learning rate", sum, st.Steps)
	}
	return st, nil
}

// upload puts x and y on the device unless they are already there.
func (e *Executor) upload(x, y []float32) error {
	if e.dX != 0 && sameArray(x, e.hostX) && sameArray(y, e.hostY) {
		return nil
	}
	e.freeData()
	rows := len(y)
	what := fmt.Sprintf("the fold's training data: %d rows × %d features", rows, e.in)
	var err error
	for _, a := range []struct {
		p *Ptr
		n int
	}{{&e.dX, len(x)}, {&e.dY, rows}, {&e.dPerm, rows}} {
		if *a.p, err = e.dev.Alloc(int64(a.n) * floatBytes); err != nil {
			e.freeData()
			return fmt.Errorf("%w (allocating %s)", err, what)
		}
	}
	if err := e.dev.CopyIn(e.dX, x); err != nil {
		e.freeData()
		return fmt.Errorf("%w (copying %s in)", err, what)
	}
	if err := e.dev.CopyIn(e.dY, y); err != nil {
		e.freeData()
		return fmt.Errorf("%w (copying %s in)", err, what)
	}
	e.hostX, e.hostY = x, y
	e.perm32 = make([]int32, rows)
	return nil
}

func (e *Executor) freeData() error {
	var errs []error
	for _, p := range []*Ptr{&e.dX, &e.dY, &e.dPerm} {
		errs = append(errs, e.dev.Free(*p))
		*p = 0
	}
	e.hostX, e.hostY = nil, nil
	return errors.Join(errs...)
}

// Forward writes the [rows, 3] outputs for x [rows, in] into dst: the dense
// layers only, on device buffers kept for the largest rows seen, with one
// copy in and one copy out. It panics, like (*model.Net).Forward, when dst
// or x is too short.
func (e *Executor) Forward(dst, x []float32, rows int) error {
	if len(x) < rows*e.in || len(dst) < rows*model.Outputs {
		panic(fmt.Sprintf("cuda: Forward: %d rows need %d inputs and %d outputs, got %d and %d",
			rows, rows*e.in, rows*model.Outputs, len(x), len(dst)))
	}
	if rows <= 0 {
		return nil
	}
	if err := e.usable(); err != nil {
		return err
	}
	return e.fail(e.forward(dst[:rows*model.Outputs], x[:rows*e.in], rows))
}

func (e *Executor) forward(dst, x []float32, rows int) error {
	if rows > e.fRows {
		if err := e.freeForward(); err != nil {
			return err
		}
		sizes := []int{rows * e.in}
		for _, l := range e.fwd {
			sizes = append(sizes, rows*l.out)
		}
		ptrs := make([]Ptr, len(sizes))
		for i, n := range sizes {
			p, err := e.dev.Alloc(int64(n) * floatBytes)
			if err != nil {
				for _, q := range ptrs[:i] {
					e.dev.Free(q)
				}
				return fmt.Errorf("%w (allocating Forward's buffers for %d rows)", err, rows)
			}
			ptrs[i] = p
		}
		e.fX, e.fH, e.fRows = ptrs[0], ptrs[1:], rows
	}
	if err := e.dev.CopyIn(e.fX, x); err != nil {
		return fmt.Errorf("%w (Forward: copying %d rows in)", err, rows)
	}
	src := e.fX
	for i, l := range e.fwd {
		out := e.fH[i]
		g := rowMajorGemm(false, false, rows, l.out, l.in, src, l.w, out)
		if err := e.dev.Sgemm(g.transA, g.transB, g.m, g.n, g.k, 1, g.a, g.lda, g.b, g.ldb, 0, g.c, g.ldc); err != nil {
			return fmt.Errorf("%w (Forward: layer %d)", err, i+1)
		}
		grid, block := elementwise(rows * l.out)
		if err := e.dev.Launch("bias_act", grid, block, out, l.b, int32(rows), int32(l.out), l.relu); err != nil {
			return fmt.Errorf("%w (Forward: layer %d)", err, i+1)
		}
		src = out
	}
	if err := e.dev.CopyOut(dst, src); err != nil {
		return fmt.Errorf("%w (Forward: copying %d outputs out)", err, rows)
	}
	return nil
}

func (e *Executor) freeForward() error {
	errs := []error{e.dev.Free(e.fX)}
	for _, p := range e.fH {
		errs = append(errs, e.dev.Free(p))
	}
	e.fX, e.fH, e.fRows = 0, nil, 0
	return errors.Join(errs...)
}

// Snapshot copies the parameters (w1, b1, ...) to the host, in one copy
// of the slab.
func (e *Executor) Snapshot() ([][]float32, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	all := make([]float32, e.slab.n)
	if err := e.dev.CopyOut(all, e.slab.w); err != nil {
		return nil, e.fail(fmt.Errorf("%w (Snapshot: copying the parameters out)", err))
	}
	s := make([][]float32, len(e.params))
	for i, p := range e.params {
		s[i], all = all[:p.n:p.n], all[p.n:]
	}
	return s, nil
}

// Restore copies a Snapshot back to the device. Adam's state is kept, as
// (*model.Net).Restore keeps it.
func (e *Executor) Restore(s [][]float32) error {
	if err := e.usable(); err != nil {
		return err
	}
	if len(s) != len(e.params) {
		return fmt.Errorf("cuda: Restore: %d arrays for %d parameters", len(s), len(e.params))
	}
	for i, p := range e.params {
		if len(s[i]) != p.n {
			return fmt.Errorf("cuda: Restore: %s has %d values, the snapshot %d", p.name, p.n, len(s[i]))
		}
	}
	if err := e.dev.CopyIn(e.slab.w, slices.Concat(s...)); err != nil {
		return e.fail(fmt.Errorf("%w (Restore: copying the parameters in)", err))
	}
	return nil
}

// NodeValue copies the current device value of graph node n out (a host
// sync), as a dense row-major array of n's shape; for the ProbLoss node it
// is the loss acc[0]/acc[1] of the last step. For tests and debugging.
func (e *Executor) NodeValue(n *G.Node) ([]float32, error) {
	if e.closed {
		return nil, errors.New("cuda: the executor is closed")
	}
	b, ok := e.bufs[n]
	if !ok {
		return nil, fmt.Errorf("cuda: node %v is not in the compiled program", n)
	}
	v := make([]float32, b.n)
	if err := e.dev.CopyOut(v, b.ptr); err != nil {
		return nil, fmt.Errorf("%w (copying %s out)", err, b.name)
	}
	if b.acc {
		var loss float32
		if v[1] != 0 {
			loss = v[0] / v[1]
		}
		return []float32{loss}, nil
	}
	return v, nil
}

// Close frees the executor's device memory (not the device, which the
// caller owns) and returns the freeing errors joined with the error kept
// by Forward, Snapshot or Restore, if any. Closing twice is a no-op.
func (e *Executor) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	errs := []error{e.err, e.freeData(), e.freeForward()}
	for _, p := range e.owned {
		errs = append(errs, e.dev.Free(p))
	}
	e.owned = nil
	return errors.Join(errs...)
}
