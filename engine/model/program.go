package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/kairoscope/kairoscope/engine/ops"
	"github.com/kairoscope/kairoscope/engine/optim"
)

// program is the host's interpreter of a Schedule, the CPU twin of the cuda
// executor: every node's value lives in a buffer allocated once (the
// inputs' and parameters' are their bound arrays), and every step is one
// call of its kernel in package ops (DenseForward, MatMul, ActGrad, ColSum,
// ProbLossStep), then Adam's step and the epoch's sums. It computes what the
// TapeMachine computes, bit for bit, without the interpreter, without
// allocating (the TapeMachine reallocates every intermediate tensor on
// every step: about 440 KiB a step for the default model) and with the
// loss fused with its gradient.
//
// A program is not safe for concurrent use.
type program struct {
	calls []func()
	bufs  map[*G.Node][]float32
	sums  ops.LossSums // the loss step's sums, from the last run
	epoch ops.LossSums // the sums of the runs since the last resetEpoch (the Metrics step)
}

// run executes one training step: forward, loss, backward, update, metrics.
func (p *program) run() {
	for _, c := range p.calls {
		c()
	}
}

func (p *program) resetEpoch() { p.epoch = ops.LossSums{} }

// newProgram builds the host program of s, updating params (the parameters'
// arrays, in s.Params' order) with adam.
func newProgram(s *Schedule, adam *optim.Adam, params [][]float32) (*program, error) {
	p := &program{bufs: map[*G.Node][]float32{}}
	for _, n := range append(G.Nodes{s.X, s.R, s.WT}, s.Consts...) {
		p.bufs[n], _ = Float32s(n.Value())
	}
	for _, par := range s.Params {
		p.bufs[par.Node], _ = Float32s(par.Node.Value())
	}
	for _, st := range s.Steps {
		if err := p.step(st); err != nil {
			return nil, err
		}
	}
	grads := make([][]float32, len(s.Params))
	for i, par := range s.Params {
		grads[i] = p.bufs[par.Grad]
	}
	p.calls = append(p.calls,
		func() { adam.Step(params, grads) }, // Update
		func() { // Metrics
			p.epoch.Loss += p.sums.Loss
			p.epoch.W += p.sums.W
			p.epoch.NLL += p.sums.NLL
			p.epoch.BCE += p.sums.BCE
			p.epoch.Brier += p.sums.Brier
		})
	return p, nil
}

// step appends st's call.
func (p *program) step(st Step) error {
	in := func(n *G.Node) []float32 { return p.bufs[n] }
	out := func(n *G.Node) []float32 {
		b := make([]float32, n.Shape().TotalSize())
		p.bufs[n] = b
		return b
	}
	switch st := st.(type) {
	case *DenseStep:
		dst, x, w, b := out(st.Out), in(st.X), in(st.W), in(st.B)
		rows, width, outW, act := st.Rows, st.In, st.Width, st.Act
		p.calls = append(p.calls, func() { ops.DenseForward(dst, x, w, b, rows, width, outW, act) })
	case *MatMulStep:
		dst, a, b := out(st.Out), in(st.A), in(st.B)
		tA, tB, m, n, k := st.TransA, st.TransB, st.M, st.N, st.K
		p.calls = append(p.calls, func() { ops.MatMul(dst, a, b, tA, tB, m, n, k) })
	case *ActGradStep:
		dst, dy, y, act := out(st.Out), in(st.DY), in(st.Y), st.Act
		p.calls = append(p.calls, func() { ops.ActGrad(dst, dy, y, act) })
	case *ColSumStep:
		dst, x := out(st.Out), in(st.X)
		p.calls = append(p.calls, func() { ops.ColSum(dst, x) })
	case *LossStep:
		d, o, r, wt := out(st.Grad), in(st.Out), in(st.R), in(st.WT)
		loss := make([]float32, 1)
		p.bufs[st.Loss] = loss
		seed, bceW := float64(st.SeedValue), st.BCEWeight
		p.calls = append(p.calls, func() {
			p.sums = ops.ProbLossStep(d, o, r, wt, seed, bceW)
			loss[0] = 0 // ProbLossOp's value: Σwt·loss/Σwt in float32, 0 without weight
			if p.sums.W != 0 {
				loss[0] = float32(p.sums.Loss / p.sums.W)
			}
		})
	default:
		return fmt.Errorf("model: %w: the host program has no kernel for %T", ErrUnsupported, st)
	}
	return nil
}
