package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/report"
	"github.com/kairoscope/kairoscope/schema"
)

// repoData holds the embedded datasets' files: the tests read only data
// inside the repository.
const repoData = "../datasets/"

func load(t testing.TB, name string) *dataset.Series {
	t.Helper()
	s, err := dataset.Load(repoData+name, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quickConfig(dir string) Config {
	cfg := Defaults()
	cfg.Reports, cfg.Folds, cfg.Epochs = dir, 3, 4
	cfg.BatchProgressEvery = 0 // TestTrainBatchProgress turns it on
	return cfg
}

func train(t *testing.T, s *dataset.Series, cfg Config) (*Summary, []any) {
	t.Helper()
	var msgs []any
	sum, err := Train(context.Background(), s, cfg, func(m any) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatal(err)
	}
	return sum, msgs
}

func TestTrainBike(t *testing.T) {
	dir := t.TempDir()
	sum, msgs := train(t, load(t, "bike.csv"), quickConfig(dir))

	t.Run("messages in schema order", func(t *testing.T) {
		if _, ok := msgs[0].(*schema.DatasetReady); !ok {
			t.Fatalf("first message %T", msgs[0])
		}
		if st, ok := msgs[1].(*schema.TrainingStart); !ok || st.TotalFolds != 3 || st.TotalEpochs != 4 || !st.UseCV {
			t.Fatalf("second message %#v", msgs[1])
		}
		fold, epoch, folds := 0, 0, 0
		for _, m := range msgs[2 : len(msgs)-1] {
			switch m := m.(type) {
			case *schema.EpochMetrics:
				if m.FoldID != fold || m.Epoch != epoch {
					t.Fatalf("epoch_metrics fold %d epoch %d, want %d %d", m.FoldID, m.Epoch, fold, epoch)
				}
				if m.ElapsedSeconds <= 0 || math.IsNaN(float64(m.ValAUC)) || m.TrainLoss != m.TrainNLL+0.5*m.TrainBCE {
					t.Fatalf("epoch metrics %+v", m)
				}
				epoch++
			case *schema.FoldComplete:
				if m.FoldID != fold {
					t.Fatalf("fold_complete %d, want %d", m.FoldID, fold)
				}
				if _, err := os.Stat(m.PredictionsPath); err != nil {
					t.Fatal(err)
				}
				fold, epoch, folds = fold+1, 0, folds+1
			default:
				t.Fatalf("unexpected %T mid-run", m)
			}
		}
		done, ok := msgs[len(msgs)-1].(*schema.TrainingComplete)
		if !ok || done.FoldsCompleted != 3 || folds != 3 || done.SummaryPath != filepath.Join(dir, "summary.json") {
			t.Fatalf("last message %#v after %d folds", msgs[len(msgs)-1], folds)
		}
	})

	t.Run("summary recomputes from the predictions", func(t *testing.T) {
		var onDisk Summary
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &onDisk); err != nil {
			t.Fatal(err)
		}
		for _, fs := range onDisk.Folds {
			rows, err := report.ReadPredictions(filepath.Join(dir, "predictions", fs.PredictionsFile))
			if err != nil {
				t.Fatal(err)
			}
			var s Scored
			calib := 0
			for _, r := range rows {
				if r.Split == report.SplitCalib {
					calib++
					continue
				}
				s.Y, s.Mu, s.Sigma = append(s.Y, r.YTrue), append(s.Mu, r.Mu), append(s.Sigma, r.Sigma)
				s.P, s.Low, s.High = append(s.P, r.PUpCal), append(s.Low, r.ConfLow), append(s.High, r.ConfHigh)
			}
			if len(s.Y) != fs.ScoredRows || calib != fs.CalibRows {
				t.Fatalf("fold %d: %d scored and %d calib rows in the CSV, summary says %d and %d", fs.FoldID, len(s.Y), calib, fs.ScoredRows, fs.CalibRows)
			}
			got := ValMetrics(s, onDisk.Config.BCEWeight)
			want := fs.Metrics
			for _, m := range msgs { // train_* are the best epoch's
				if em, ok := m.(*schema.EpochMetrics); ok && em.FoldID == fs.FoldID && em.Epoch == fs.BestEpoch &&
					(em.TrainLoss != want.TrainLoss || em.TrainBrier != want.TrainBrier) {
					t.Errorf("fold %d: summary train_loss %v, best epoch %d sent %v", fs.FoldID, want.TrainLoss, fs.BestEpoch, em.TrainLoss)
				}
			}
			got.TrainLoss, got.TrainNLL, got.TrainBCE, got.TrainBrier = want.TrainLoss, want.TrainNLL, want.TrainBCE, want.TrainBrier
			if !sameMetrics(got, want) {
				t.Errorf("fold %d: recomputed\n%+v\nsummary\n%+v", fs.FoldID, got, want)
			}
		}
		if !sameMetrics(onDisk.Mean, sum.Mean) {
			t.Error("summary.json differs from the returned summary")
		}
	})

	t.Run("same seed gives identical reports", func(t *testing.T) {
		dir2 := t.TempDir()
		sum2, _ := train(t, load(t, "bike.csv"), quickConfig(dir2))
		// The file names carry the run's start time, as the schema asks; all
		// else is byte for byte the same.
		stamp := regexp.MustCompile(`_\d{8}_\d{6}\.csv`)
		a, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
		b, _ := os.ReadFile(filepath.Join(dir2, "summary.json"))
		if len(a) == 0 || !bytes.Equal(stamp.ReplaceAll(a, nil), stamp.ReplaceAll(b, nil)) {
			t.Error("summary.json differs between two runs with the same seed")
		}
		for i, fs := range sum.Folds {
			a, _ := os.ReadFile(filepath.Join(dir, "predictions", fs.PredictionsFile))
			b, _ := os.ReadFile(filepath.Join(dir2, "predictions", sum2.Folds[i].PredictionsFile))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("fold %d predictions differ between runs", fs.FoldID)
			}
		}
	})
}

// sameMetrics compares field by field, NaN equal to NaN.
func sameMetrics(a, b schema.Metrics) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := 0; i < va.NumField(); i++ {
		x, y := va.Field(i).Float(), vb.Field(i).Float()
		if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
			return false
		}
	}
	return true
}

func TestTrainOHLCVReturns(t *testing.T) {
	s := load(t, "sp500.csv")
	s = head(s, 1500)
	cfg := quickConfig(t.TempDir())
	cfg.Epochs = 2
	sum, _ := train(t, s, cfg)
	if sum.Horizons != 1 || sum.Transform != "log" || sum.Target != "close" || sum.Frequency != "business-day" {
		t.Errorf("summary %+v", sum)
	}
}

func TestTrainRefusesTooFewSamples(t *testing.T) {
	s := head(load(t, "bike.csv"), 200)
	var last any
	_, err := Train(context.Background(), s, quickConfig(t.TempDir()), func(m any) { last = m })
	if !errors.Is(err, ErrTooFewSamples) {
		t.Fatalf("err = %v", err)
	}
	if e, ok := last.(*schema.TrainingError); !ok || e.Error != err.Error() {
		t.Errorf("last message %#v", last)
	}
}

func TestTrainCancelledLeavesNoSummary(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Train(ctx, load(t, "bike.csv"), quickConfig(dir), func(m any) {
		if _, ok := m.(*schema.EpochMetrics); ok {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.json")); !os.IsNotExist(err) {
		t.Error("a cancelled run left a summary.json")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// With a short enough interval every step but an epoch's first (the clock
// starts when it ends) and last reports batch_progress, numbered like the epoch_metrics that follows it, and each
// message is valid against its JSON Schema.
func TestTrainBatchProgress(t *testing.T) {
	cfg := quickConfig(t.TempDir())
	cfg.Folds, cfg.Epochs, cfg.Model.Batch = 2, 2, 64
	cfg.BatchProgressEvery = time.Nanosecond
	_, msgs := train(t, load(t, "bike.csv"), cfg)
	var pending []*schema.BatchProgress
	var seen int
	for _, m := range msgs {
		switch m := m.(type) {
		case *schema.BatchProgress:
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(b); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			pending = append(pending, m)
		case *schema.EpochMetrics:
			if len(pending) == 0 {
				t.Fatalf("fold %d epoch %d: no batch_progress before its epoch_metrics", m.FoldID, m.Epoch)
			}
			total := pending[0].TotalBatches
			if len(pending) != total-2 {
				t.Errorf("fold %d epoch %d: %d batch_progress messages, want %d (all steps but the first and last)", m.FoldID, m.Epoch, len(pending), total-2)
			}
			for i, p := range pending {
				if p.FoldID != m.FoldID || p.Epoch != m.Epoch || p.Batch != i+2 || p.TotalBatches != total {
					t.Errorf("batch_progress %+v before epoch_metrics of fold %d epoch %d, want batch %d", p, m.FoldID, m.Epoch, i+2)
				}
			}
			seen += len(pending)
			pending = nil
		}
	}
	if seen == 0 {
		t.Error("no batch_progress")
	}
}

// A fold's predictions reach clients whole: prediction_delta parts of at
// most schema.MaxDeltaRows rows, numbered 1 to parts, that add up to the
// fold's scored rows, each valid against its JSON Schema.
func TestTrainPredictionDeltaParts(t *testing.T) {
	cfg := quickConfig(t.TempDir())
	cfg.Folds, cfg.Epochs, cfg.PredictionDeltas = 1, 1, true
	cfg.CalibFrac = 0.1 // more scored rows than one part holds
	sum, msgs := train(t, load(t, "sp500.csv"), cfg)
	var parts, final []*schema.PredictionDelta
	rows := 0
	for _, m := range msgs {
		if d, ok := m.(*schema.PredictionDelta); ok && d.Final {
			final = append(final, d)
		} else if ok {
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(b); err != nil {
				t.Fatalf("part %d: %v", d.Part, err)
			}
			parts = append(parts, d)
			rows += len(d.Predictions)
		}
	}
	want := sum.Folds[0].ScoredRows
	if want <= schema.MaxDeltaRows {
		t.Fatalf("%d scored rows: the test needs more than %d", want, schema.MaxDeltaRows)
	}
	if rows != want {
		t.Errorf("the parts carry %d rows, want the fold's %d scored rows", rows, want)
	}
	for i, d := range parts {
		if d.Part != i+1 || d.Parts != len(parts) || len(d.Predictions) > schema.MaxDeltaRows || d.Epoch != 0 {
			t.Errorf("part %d: %d of %d, %d rows, epoch %d", i+1, d.Part, d.Parts, len(d.Predictions), d.Epoch)
		}
	}
	t.Logf("%d rows in %d parts", rows, len(parts))

	// The final delta is the predictions CSV's scored rows, calibrated.
	csv, err := report.ReadPredictions(filepath.Join(cfg.Reports, "predictions", sum.Folds[0].PredictionsFile))
	if err != nil {
		t.Fatal(err)
	}
	var scoredCSV []report.Prediction
	for _, r := range csv {
		if r.Split == report.SplitScore {
			scoredCSV = append(scoredCSV, r)
		}
	}
	var got []schema.Prediction
	for i, d := range final {
		if d.Part != i+1 || d.Parts != len(final) || d.Epoch != sum.Folds[0].BestEpoch {
			t.Errorf("final part %d: %d of %d, epoch %d (best %d)", i+1, d.Part, d.Parts, d.Epoch, sum.Folds[0].BestEpoch)
		}
		got = append(got, d.Predictions...)
	}
	if len(got) != len(scoredCSV) {
		t.Fatalf("final delta: %d rows, the CSV scores %d", len(got), len(scoredCSV))
	}
	for i, r := range scoredCSV {
		g := got[i]
		if float64(g.PUpCal) != r.PUpCal || float64(g.Mu) != r.Mu || float64(g.Sigma) != r.Sigma || float64(*g.YTrue) != r.YTrue {
			t.Fatalf("row %d: delta %+v, CSV %+v", i, g, r)
		}
	}
	if last := msgs[len(msgs)-2]; !isFoldComplete(last) {
		t.Errorf("before training_complete: %T, want fold_complete", last)
	}
}

func isFoldComplete(m any) bool { _, ok := m.(*schema.FoldComplete); return ok }
