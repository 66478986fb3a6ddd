package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// tinyTune is a study that trains for real but briefly.
func tinyTune(dir string) Config {
	cfg := quickConfig(dir)
	cfg.Folds, cfg.Epochs = 2, 1
	return cfg
}

// validated marshals every message and checks it against its JSON Schema.
func validated(t *testing.T, msgs []any) {
	t.Helper()
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
}

func trials(msgs []any) []*schema.HPOTrial {
	var out []*schema.HPOTrial
	for _, m := range msgs {
		if tr, ok := m.(*schema.HPOTrial); ok {
			out = append(out, tr)
		}
	}
	return out
}

func TestTuneBikeReproducible(t *testing.T) {
	s := load(t, "bike.csv")
	run := func() (*TuneSummary, []any, string) {
		dir := t.TempDir()
		var msgs []any
		sum, err := Tune(context.Background(), s, tinyTune(dir), TuneOptions{Trials: 3, Seed: 7}, func(m any) { msgs = append(msgs, m) })
		if err != nil {
			t.Fatal(err)
		}
		return sum, msgs, dir
	}
	a, msgs, dir := run()
	b, _, _ := run()

	t.Run("same seed, same trials and values", func(t *testing.T) {
		if !reflect.DeepEqual(a.Results, b.Results) {
			// Paths differ by folder; compare what the seed fixes.
			for i := range a.Results {
				ra, rb := a.Results[i], b.Results[i]
				if !reflect.DeepEqual(ra.Params, rb.Params) || ra.Value != rb.Value || ra.State != rb.State {
					t.Errorf("trial %d: %+v, then %+v", i, ra, rb)
				}
			}
		}
		if *a.BestTrial != *b.BestTrial || a.BestValue != b.BestValue {
			t.Errorf("best %d (%v), then %d (%v)", *a.BestTrial, a.BestValue, *b.BestTrial, b.BestValue)
		}
	})
	t.Run("messages", func(t *testing.T) {
		validated(t, msgs)
		if len(msgs) != 5 {
			t.Fatalf("%d messages, want training_start, 3 hpo_trial, training_complete: %v", len(msgs), msgs)
		}
		if st, ok := msgs[0].(*schema.TrainingStart); !ok || st.TotalTrials != 3 || st.TotalFolds != 2 || st.TotalEpochs != 1 {
			t.Errorf("first message %#v", msgs[0])
		}
		for k, tr := range trials(msgs) {
			if tr.Trial != k || tr.TotalTrials != 3 || tr.State != schema.TrialComplete || tr.Error != "" {
				t.Errorf("trial %d: %+v", k, tr)
			}
			if got := a.Results[k]; got.Value != tr.Value || !reflect.DeepEqual(got.Params, tr.Params) {
				t.Errorf("trial %d: message %+v, summary %+v", k, tr, got)
			}
		}
		done, ok := msgs[4].(*schema.TrainingComplete)
		if !ok || done.SummaryPath != filepath.Join(dir, "tune_summary.json") || done.FoldsCompleted != 2 {
			t.Fatalf("last message %#v", msgs[4])
		}
	})
	t.Run("reports", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(dir, "tune_summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got TuneSummary
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Results) != 3 || got.Objective != Objective || *got.BestTrial != *a.BestTrial || !reflect.DeepEqual(got.BestParams, a.BestParams) {
			t.Errorf("tune_summary.json: %s", raw)
		}
		for k := range 3 {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("trial_%d", k), "summary.json")); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("params come from the space", func(t *testing.T) {
		sp := DefaultSearchSpace()
		for _, r := range a.Results {
			p := r.Params
			if p.LR < sp.LRMin || p.LR > sp.LRMax || !containsSlice(sp.Hidden, p.Hidden) || !contains(sp.Batch, p.BatchSize) {
				t.Errorf("trial %d: %+v is outside the space", r.Trial, p)
			}
		}
	})
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func containsSlice(xs [][]int, x []int) bool {
	for _, v := range xs {
		if reflect.DeepEqual(v, x) {
			return true
		}
	}
	return false
}

// fakeTrials is an injected trainer: trial k returns outcome k, a value or
// an error, without training.
func fakeTrials(outcomes ...any) func(context.Context, *dataset.Series, Config, Emit) (*Summary, error) {
	k := 0
	return func(ctx context.Context, _ *dataset.Series, cfg Config, _ Emit) (*Summary, error) {
		o := outcomes[k]
		k++
		if err, ok := o.(error); ok {
			return nil, err
		}
		return &Summary{Mean: schema.Metrics{ValLoss: schema.Float(o.(float64))}}, nil
	}
}

func TestTuneBestAndFailedTrials(t *testing.T) {
	s := &dataset.Series{Name: "fake"}
	dir := t.TempDir()
	var msgs []any
	sum, err := Tune(context.Background(), s, tinyTune(dir), TuneOptions{Trials: 6, Train: fakeTrials(
		errors.New("CUDA out of memory"), 3.0, math.NaN(), 1.5, 2.0, 1.5,
	)}, func(m any) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatal(err)
	}
	validated(t, msgs)
	type want struct {
		state string
		value float64 // NaN: null
		best  int     // -1: none yet
	}
	wants := []want{
		{schema.TrialFailed, math.NaN(), -1},
		{schema.TrialComplete, 3, 1},
		{schema.TrialFailed, math.NaN(), 1}, // a NaN loss is a failure, not a best
		{schema.TrialComplete, 1.5, 3},
		{schema.TrialComplete, 2, 3},
		{schema.TrialComplete, 1.5, 3}, // a tie keeps the earlier trial
	}
	got := trials(msgs)
	if len(got) != len(wants) {
		t.Fatalf("%d hpo_trial messages, want %d", len(got), len(wants))
	}
	for k, w := range wants {
		g := got[k]
		sameValue := float64(g.Value) == w.value || math.IsNaN(float64(g.Value)) && math.IsNaN(w.value)
		if g.State != w.state || !sameValue {
			t.Errorf("trial %d: state %s value %v, want %s %v", k, g.State, g.Value, w.state, w.value)
		}
		if (g.State == schema.TrialFailed) != (g.Error != "") {
			t.Errorf("trial %d: state %s with error %q", k, g.State, g.Error)
		}
		switch {
		case w.best < 0 && (g.BestTrial != nil || !math.IsNaN(float64(g.BestValue))):
			t.Errorf("trial %d: best %v (%v) before any trial completed", k, g.BestTrial, g.BestValue)
		case w.best >= 0 && (g.BestTrial == nil || *g.BestTrial != w.best || g.BestValue != got[w.best].Value):
			t.Errorf("trial %d: best %v (%v), want %d", k, g.BestTrial, g.BestValue, w.best)
		}
	}
	if got[0].Error != "CUDA out of memory" {
		t.Errorf("trial 0 error %q", got[0].Error)
	}
	if *sum.BestTrial != 3 || sum.BestValue != 1.5 || !reflect.DeepEqual(*sum.BestParams, sum.Results[3].Params) {
		t.Errorf("summary best %d %v %+v", *sum.BestTrial, sum.BestValue, sum.BestParams)
	}
	if _, ok := msgs[len(msgs)-1].(*schema.TrainingComplete); !ok {
		t.Errorf("last message %#v", msgs[len(msgs)-1])
	}
}

func TestTuneStudyErrors(t *testing.T) {
	s := &dataset.Series{Name: "fake"}
	tests := []struct {
		name     string
		opts     TuneOptions
		wantErr  error
		wantMsgs int // hpo_trial messages before the training_error
	}{
		{"every trial fails", TuneOptions{Trials: 2, Train: fakeTrials(errors.New("a"), errors.New("b"))}, ErrAllTrialsFailed, 2},
		{"too few samples stops at once", TuneOptions{Trials: 3, Train: fakeTrials(fmt.Errorf("bike: %w", ErrTooFewSamples))}, ErrTooFewSamples, 0},
		{"too many trials", TuneOptions{Trials: MaxTrials + 1}, nil, 0},
		{"empty space", TuneOptions{Space: &SearchSpace{LRMin: 1e-3, LRMax: 1e-2}}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var msgs []any
			_, err := Tune(context.Background(), s, tinyTune(dir), tt.opts, func(m any) { msgs = append(msgs, m) })
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			validated(t, msgs)
			if n := len(trials(msgs)); n != tt.wantMsgs {
				t.Errorf("%d hpo_trial messages, want %d", n, tt.wantMsgs)
			}
			if te, ok := msgs[len(msgs)-1].(*schema.TrainingError); !ok || te.Error != err.Error() {
				t.Errorf("last message %#v, want a training_error saying %q", msgs[len(msgs)-1], err)
			}
			if _, err := os.Stat(filepath.Join(dir, "tune_summary.json")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("tune_summary.json after a failed study: %v", err)
			}
		})
	}
}

// Cancelling stops the study in the trial that runs: no later trial starts
// and no tune_summary.json is written.
func TestTuneCancelled(t *testing.T) {
	s := load(t, "bike.csv")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var msgs []any
	trained := 0
	train := func(ctx context.Context, s *dataset.Series, cfg Config, emit Emit) (*Summary, error) {
		trained++
		return Train(ctx, s, cfg, emit)
	}
	_, err := Tune(ctx, s, tinyTune(dir), TuneOptions{Trials: 4, Train: train}, func(m any) {
		msgs = append(msgs, m)
		if _, ok := m.(*schema.HPOTrial); ok {
			cancel() // during the study, before trial 1
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n := len(trials(msgs)); n != 1 || trained != 2 {
		t.Errorf("%d hpo_trial messages and %d trials started, want 1 and 2", n, trained)
	}
	if _, ok := msgs[len(msgs)-1].(*schema.TrainingError); !ok {
		t.Errorf("last message %#v", msgs[len(msgs)-1])
	}
	if _, err := os.Stat(filepath.Join(dir, "tune_summary.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tune_summary.json after cancelling: %v", err)
	}
	validated(t, msgs)
}

// Different seeds draw different trials; the draws never depend on the
// trials' outcomes.
func TestSearchSpaceSeeds(t *testing.T) {
	s := &dataset.Series{Name: "fake"}
	params := func(seed uint64, outcome any) []schema.HPOParams {
		outcomes := []any{outcome, outcome, outcome, outcome}
		sum, err := Tune(context.Background(), s, tinyTune(t.TempDir()), TuneOptions{Trials: 4, Seed: seed, Train: fakeTrials(outcomes...)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []schema.HPOParams
		for _, r := range sum.Results {
			out = append(out, r.Params)
		}
		return out
	}
	a, b := params(1, 1.0), params(2, 1.0)
	if reflect.DeepEqual(a, b) {
		t.Errorf("seeds 1 and 2 drew the same trials: %+v", a)
	}
	if c := params(1, 2.0); !reflect.DeepEqual(a, c) {
		t.Errorf("seed 1 drew %+v, then %+v with other outcomes", a, c)
	}
}

// A worker job of kind tune runs a study on the embedded data.
func TestRunJobTune(t *testing.T) {
	dir := t.TempDir()
	var msgs []any
	spec := worker.Spec{Run: &schema.RunRequest{Kind: schema.RunKindTune, Dataset: "bike", Folds: 2, Epochs: 1, Trials: 2, Seed: 3}, Reports: dir}
	if err := RunJob(context.Background(), spec, Runtime{}, func(m any) { msgs = append(msgs, m) }); err != nil {
		t.Fatal(err)
	}
	validated(t, msgs)
	if n := len(trials(msgs)); n != 2 || len(msgs) != 4 {
		t.Fatalf("%d messages with %d hpo_trial: %v", len(msgs), n, msgs)
	}
	if done, ok := msgs[3].(*schema.TrainingComplete); !ok || done.SummaryPath != filepath.Join(dir, "tune_summary.json") {
		t.Errorf("last message %#v", msgs[3])
	}
}
