package schema

import (
	"cmp"
	"fmt"
	"strconv"
)

// What a run request costs. Every field of a RunRequest is bounded, but
// their product is not: 50 trials × 20 folds × 1,000 epochs, or eight
// 4,096-wide layers, are each valid and would hold a worker for days. Cost
// estimates the work of a request, before it is queued, as
//
//	trials × folds × epochs × samples × weights
//
// the multiply-adds of the forward passes of a run that never stops early:
// samples are the dataset's (day, horizon) pairs, rows × horizons, an
// upper bound of any fold's training set; weights are the network's
// multiply-adds per sample, from CostFeatures inputs through the hidden
// layers to the 3 outputs. A tune counts the largest network of its search
// space. A field left out counts as the engine's default (a test in package
// engine keeps these constants equal to them). On the 2-core development
// machine (OpenBLAS) a cost of 1.5e10 takes about a second.
const (
	CostFeatures       = 40 // model inputs, about (the engine's feature count varies a little)
	CostDefaultFolds   = 5
	CostDefaultEpochs  = 25
	CostDefaultTrials  = 8
	CostDefaultHorizon = 30 // targets per origin of a value series; OHLCV series have 1
)

var (
	// CostDefaultHidden is the engine's default network.
	CostDefaultHidden = []int{64, 64}
	// CostTuneHidden is the largest network of the engine's search space.
	CostTuneHidden = []int{128, 128}
)

// ErrRunTooCostly is matched by the error for a request whose Cost exceeds
// the server's limit (HTTP 400); it also matches ErrInvalidRunRequest.
var ErrRunTooCostly = fmt.Errorf("%w: too costly", ErrInvalidRunRequest)

// RunCost is a request's estimated cost and its factors.
type RunCost struct {
	Trials, Folds, Epochs, Samples, Weights int
}

// Total is the product of the factors.
func (c RunCost) Total() float64 {
	return float64(c.Trials) * float64(c.Folds) * float64(c.Epochs) * float64(c.Samples) * float64(c.Weights)
}

func (c RunCost) String() string {
	return fmt.Sprintf("%d trials × %d folds × %d epochs × %d samples × %d weights = %s",
		c.Trials, c.Folds, c.Epochs, c.Samples, c.Weights, strconv.FormatFloat(c.Total(), 'g', 3, 64))
}

// Cost estimates r on a dataset of rows rows (ohlcv: one target per day).
func (r RunRequest) Cost(rows int, ohlcv bool) RunCost {
	horizons := r.Horizons
	if horizons == 0 {
		horizons = CostDefaultHorizon
		if ohlcv {
			horizons = 1
		}
	}
	hidden := r.Hidden
	if len(hidden) == 0 {
		hidden = CostDefaultHidden
	}
	trials := 1
	if r.Kind == RunKindTune {
		trials, hidden = cmp.Or(r.Trials, CostDefaultTrials), CostTuneHidden
	}
	return RunCost{Trials: trials, Folds: cmp.Or(r.Folds, CostDefaultFolds), Epochs: cmp.Or(r.Epochs, CostDefaultEpochs),
		Samples: rows * horizons, Weights: weights(hidden)}
}

// weights counts a network's multiply-adds per sample.
func weights(hidden []int) int {
	n, in := 0, CostFeatures
	for _, h := range hidden {
		n += in * h
		in = h
	}
	return n + in*3
}

// CheckCost returns nil when r's cost on the dataset is within limit, else
// a *RequestError (field "cost") matching ErrRunTooCostly that gives the
// estimate, the limit and what to change.
func (r RunRequest) CheckCost(rows int, ohlcv bool, limit float64) error {
	c := r.Cost(rows, ohlcv)
	if c.Total() <= limit {
		return nil
	}
	return &RequestError{Field: "cost", Err: ErrRunTooCostly, Msg: fmt.Sprintf(
		"%s exceeds the server's limit of %s (--max-run-cost; the estimate is trials × folds × epochs × samples × weights, where samples are the dataset's rows × horizons): "+
			"ask for fewer trials, folds or epochs, a smaller network, or fewer horizons", c, strconv.FormatFloat(limit, 'g', 3, 64))}
}
