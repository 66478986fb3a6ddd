package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kairoscope/kairoscope/engine/ops"
)

// EpochStats are one epoch's training numbers in the model's target space,
// averaged over the real (non-padding) rows of the epoch's steps, each taken
// from the forward pass of its step as PyTorch loops usually report them.
type EpochStats struct {
	Loss, NLL, BCE, Brier float64
	Steps                 int
}

// Epoch runs one pass over x [rows, in] and y [rows] in an order shuffled by
// rng (over its first Config.EpochRows rows when that is set: see
// EpochRowsOf). It stops early with ctx's error when ctx is cancelled, and
// calls the StepDone hook of an EpochTrace in ctx after every step.
func (n *Net) Epoch(ctx context.Context, x, y []float32, rng *rand.Rand) (EpochStats, error) {
	rows, in, b := len(y), n.in, n.cfg.Batch
	if len(x) != rows*in {
		return EpochStats{}, fmt.Errorf("model: x has %d values, want %d rows × %d", len(x), rows, in)
	}
	perm := rng.Perm(rows)
	rows = EpochRowsOf(n.cfg, rows)
	bx, br, bw := n.Batch()
	trace, steps := ContextEpochTrace(ctx), (rows+b-1)/b
	var st EpochStats
	if n.prog != nil {
		n.prog.resetEpoch()
	}
	for start := 0; start < rows; start += b {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		real := min(b, rows-start)
		for k := 0; k < b; k++ {
			if k < real {
				i := perm[start+k]
				copy(bx[k*in:(k+1)*in], x[i*in:(i+1)*in])
				br[k], bw[k] = y[i], 1
			} else { // padding: any finite row, weight 0
				clear(bx[k*in : (k+1)*in])
				br[k], bw[k] = 0, 0
			}
		}
		loss, err := n.Step()
		if err != nil {
			return st, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return st, fmt.Errorf("model: training diverged (loss %v at step %d); lower the learning rate", loss, st.Steps)
		}
		trace.stepDone(start/b+1, steps)
		if n.prog != nil { // the schedule's Metrics step sums the loss over the real rows (weight 1)
			st.Steps++
			continue
		}
		out := n.LastOutputs()
		for k := 0; k < real; k++ {
			nll, bce := ops.RowLoss(float64(out[3*k]), float64(out[3*k+1]), float64(out[3*k+2]), float64(br[k]))
			p := ops.Sigmoid(float64(out[3*k+2]))
			if br[k] > 0 {
				p -= 1
			}
			st.NLL += nll
			st.BCE += bce
			st.Brier += p * p
		}
		st.Steps++
	}
	if n.prog != nil {
		st.NLL, st.BCE, st.Brier = n.prog.epoch.NLL, n.prog.epoch.BCE, n.prog.epoch.Brier
	}
	if rows > 0 {
		st.NLL /= float64(rows)
		st.BCE /= float64(rows)
		st.Brier /= float64(rows)
		st.Loss = st.NLL + n.cfg.BCEWeight*st.BCE
	}
	return st, nil
}

// EpochRowsOf is how many of rows an epoch trains on under cfg: all of
// them, or cfg.EpochRows when that is set and fewer.
func EpochRowsOf(cfg Config, rows int) int {
	if cfg.EpochRows > 0 {
		return min(rows, cfg.EpochRows)
	}
	return rows
}

// EarlyStopping watches a validation loss and says when it has not improved
// by MinDelta for Patience epochs in a row.
type EarlyStopping struct {
	Patience  int
	MinDelta  float64
	Best      float64
	BestEpoch int
	bad       int
}

// NewEarlyStopping starts with no best epoch.
func NewEarlyStopping(patience int, minDelta float64) *EarlyStopping {
	return &EarlyStopping{Patience: patience, MinDelta: minDelta, Best: math.Inf(1), BestEpoch: -1}
}

// Observe records epoch's loss: improved when it is the best so far, stop
// when patience has run out. A NaN loss never improves.
func (e *EarlyStopping) Observe(epoch int, loss float64) (improved, stop bool) {
	if loss < e.Best-e.MinDelta {
		e.Best, e.BestEpoch, e.bad = loss, epoch, 0
		return true, false
	}
	e.bad++
	return false, e.Patience > 0 && e.bad >= e.Patience
}
