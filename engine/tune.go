package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/report"
	"github.com/kairoscope/kairoscope/schema"
)

// Objective names what a tune minimises, as tune_summary.json states it.
const Objective = "mean val_loss over the walk-forward folds (lower is better)"

// DefaultTrials is how many trials a tune runs when TuneOptions.Trials is 0.
const DefaultTrials = 8

// MaxTrials bounds TuneOptions.Trials (and a run request's trials).
const MaxTrials = schema.MaxTrials

// ErrAllTrialsFailed is returned by Tune when no trial completed.
var ErrAllTrialsFailed = errors.New("every trial failed")

// SearchSpace is where a tune samples its trials: the learning rate
// log-uniformly in [LRMin, LRMax], the hidden widths and the batch size
// uniformly from their lists. DefaultSearchSpace is the one place the
// documented space is written down.
type SearchSpace struct {
	LRMin  float64 `json:"lr_min"`
	LRMax  float64 `json:"lr_max"`
	Hidden [][]int `json:"hidden"`
	Batch  []int   `json:"batch_size"`
}

// DefaultSearchSpace is the space `kairoscope tune` and runs of kind tune
// search: lr log-uniform in [1e-4, 1e-2]; hidden one of [32,32], [64,64],
// [128,128], [64,64,64]; batch size one of 64, 128, 256.
func DefaultSearchSpace() SearchSpace {
	return SearchSpace{
		LRMin: 1e-4, LRMax: 1e-2,
		Hidden: [][]int{{32, 32}, {64, 64}, {128, 128}, {64, 64, 64}},
		Batch:  []int{64, 128, 256},
	}
}

func (sp SearchSpace) validate() error {
	switch {
	case !(sp.LRMin > 0 && sp.LRMin <= sp.LRMax):
		return fmt.Errorf("search space: need 0 < lr_min <= lr_max, got %v and %v", sp.LRMin, sp.LRMax)
	case len(sp.Hidden) == 0 || len(sp.Batch) == 0:
		return fmt.Errorf("search space: hidden and batch_size need at least one choice each")
	}
	return nil
}

// sample draws one trial's parameters. The draws are made in a fixed order
// from r, so a seed fixes every trial's parameters whatever the trials'
// outcomes.
func (sp SearchSpace) sample(r *rand.Rand) schema.HPOParams {
	lo, hi := math.Log(sp.LRMin), math.Log(sp.LRMax)
	lr := math.Exp(lo + r.Float64()*(hi-lo))
	h := slices.Clone(sp.Hidden[r.IntN(len(sp.Hidden))])
	b := sp.Batch[r.IntN(len(sp.Batch))]
	return schema.HPOParams{LR: lr, Hidden: h, BatchSize: b}
}

// TuneOptions shape a study. The zero value runs DefaultTrials trials of
// DefaultSearchSpace, drawn with the base configuration's seed.
type TuneOptions struct {
	Trials int          // 1..MaxTrials; 0: DefaultTrials
	Seed   uint64       // seeds the draws of the parameters; 0: the base Config's Seed
	Space  *SearchSpace // nil: DefaultSearchSpace
	// Train runs one trial; nil is engine.Train. Tests inject failures here.
	Train func(ctx context.Context, s *dataset.Series, cfg Config, emit Emit) (*Summary, error)
}

// TrialResult is one trial in tune_summary.json.
type TrialResult struct {
	Trial       int              `json:"trial"`
	State       string           `json:"state"` // schema.TrialComplete or schema.TrialFailed
	Params      schema.HPOParams `json:"params"`
	Value       schema.Float     `json:"value"` // the objective; null when failed
	Error       string           `json:"error,omitempty"`
	SummaryPath string           `json:"summary_path,omitempty"` // the trial's summary.json, when it completed
}

// TuneSummary is tune_summary.json: the study's settings, every trial and
// the best. Like summary.json it holds no times, so two studies with the
// same seed and data compare equal.
type TuneSummary struct {
	Dataset     string            `json:"dataset"`
	DatasetHash string            `json:"dataset_hash,omitempty"` // SHA-256 of the data's file
	Objective   string            `json:"objective"`
	Seed        uint64            `json:"seed"`
	Trials      int               `json:"trials"`
	Folds       int               `json:"folds"`
	Epochs      int               `json:"epochs"`
	Space       SearchSpace       `json:"space"`
	Results     []TrialResult     `json:"results"`
	BestTrial   *int              `json:"best_trial"`
	BestValue   schema.Float      `json:"best_value"`
	BestParams  *schema.HPOParams `json:"best_params"`
}

// Tune runs a random search over opts.Space: opts.Trials trials, each a
// walk-forward cross-validation (Train) of base with the trial's lr, hidden
// widths and batch size, its reports under base.Reports/trial_<k>/ (k from
// 0). A trial's score is the mean val_loss over its folds: lower is better.
//
// The trials' own messages are not passed on: emit receives a
// training_start (with total_trials), one hpo_trial per trial, and at the
// end a training_complete whose summary_path is
// base.Reports/tune_summary.json (written atomically) and whose
// folds_completed is the folds of the best trial. A trial that fails (an
// error, or a loss that is not a number) is reported as failed and the study
// goes on; a dataset too small for any trial (ErrTooFewSamples), a
// cancelled ctx, or every trial failing (ErrAllTrialsFailed) ends the study
// with a training_error, which is also returned.
//
// The same seed, data and base give the same trials and values.
func Tune(ctx context.Context, s *dataset.Series, base Config, opts TuneOptions, emit Emit) (*TuneSummary, error) {
	if emit == nil {
		emit = func(any) {}
	}
	sum, err := tune(ctx, s, base, opts, emit)
	if err != nil {
		emit(&schema.TrainingError{Type: schema.TypeTrainingError, Error: err.Error()})
		return nil, err
	}
	return sum, nil
}

func tune(ctx context.Context, s *dataset.Series, base Config, opts TuneOptions, emit Emit) (*TuneSummary, error) {
	start := time.Now()
	if opts.Trials == 0 {
		opts.Trials = DefaultTrials
	}
	if opts.Trials < 1 || opts.Trials > MaxTrials {
		return nil, fmt.Errorf("invalid tune: trials must be from 1 to %d, got %d", MaxTrials, opts.Trials)
	}
	space := DefaultSearchSpace()
	if opts.Space != nil {
		space = *opts.Space
	}
	if err := space.validate(); err != nil {
		return nil, fmt.Errorf("invalid tune: %w", err)
	}
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := report.Probe(base.Reports); err != nil {
		return nil, err
	}
	if opts.Seed == 0 {
		opts.Seed = base.Seed
	}
	train := opts.Train
	if train == nil {
		train = Train
	}
	draws := rand.New(rand.NewPCG(opts.Seed, 0x6b6169726f73)) // a fixed stream per seed
	sum := &TuneSummary{Dataset: s.Name, DatasetHash: base.DatasetHash, Objective: Objective, Seed: opts.Seed, Trials: opts.Trials,
		Folds: base.Folds, Epochs: base.Epochs, Space: space, BestValue: schema.Float(math.NaN())}
	emit(&schema.TrainingStart{Type: schema.TypeTrainingStart, UseCV: base.Folds > 1, TotalFolds: base.Folds,
		TotalEpochs: base.Epochs, Device: base.Device, FallbackReason: base.FallbackReason, TotalTrials: opts.Trials,
		Dataset: s.Name, DatasetHash: base.DatasetHash, DatasetRows: s.Len()})

	for k := range opts.Trials {
		params := space.sample(draws)
		cfg := base
		cfg.Model.LR, cfg.Model.Hidden, cfg.Model.Batch = params.LR, params.Hidden, params.BatchSize
		cfg.Reports = filepath.Join(base.Reports, fmt.Sprintf("trial_%d", k))
		cfg.PredictionDeltas = false // nobody sees a trial's messages
		cfg.BatchProgressEvery = 0

		res := TrialResult{Trial: k, State: schema.TrialComplete, Params: params, Value: schema.Float(math.NaN())}
		ts, err := train(ctx, s, cfg, nil)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tune cancelled in trial %d: %w", k, ctx.Err())
		}
		if errors.Is(err, ErrTooFewSamples) {
			return nil, err // no trial can do better: the data, not the parameters
		}
		switch {
		case err != nil:
			res.State, res.Error = schema.TrialFailed, err.Error()
		case math.IsNaN(float64(ts.Mean.ValLoss)) || math.IsInf(float64(ts.Mean.ValLoss), 0):
			res.State, res.Error = schema.TrialFailed, "the mean validation loss is not a number (the trial diverged)"
		default:
			res.Value = ts.Mean.ValLoss
			res.SummaryPath = filepath.Join(cfg.Reports, "summary.json")
			if sum.BestTrial == nil || res.Value < sum.BestValue {
				best, p := k, params
				sum.BestTrial, sum.BestValue, sum.BestParams = &best, res.Value, &p
			}
		}
		sum.Results = append(sum.Results, res)
		msg := &schema.HPOTrial{Type: schema.TypeHPOTrial, Trial: k, TotalTrials: opts.Trials, State: res.State,
			Params: params, Value: res.Value, Error: res.Error, BestValue: sum.BestValue,
			ElapsedSeconds: schema.Float(time.Since(start).Seconds())}
		if sum.BestTrial != nil {
			b := *sum.BestTrial
			msg.BestTrial = &b
		}
		emit(msg)
	}
	if sum.BestTrial == nil {
		return nil, fmt.Errorf("%w (%d trials; the last: %s)", ErrAllTrialsFailed, opts.Trials, sum.Results[len(sum.Results)-1].Error)
	}
	path := filepath.Join(base.Reports, "tune_summary.json")
	if err := report.WriteJSON(path, sum); err != nil {
		return nil, err
	}
	emit(&schema.TrainingComplete{Type: schema.TypeTrainingComplete, FoldsCompleted: base.Folds, SummaryPath: path})
	return sum, nil
}
