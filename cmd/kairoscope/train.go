package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/engine"
	"github.com/kairoscope/kairoscope/engine/dataset"
)

// modelFlags binds the flags shared by train, predict and backtest.
type modelFlags struct {
	data, target, hidden, holidays string
}

func addModelFlags(fs *flag.FlagSet, cfg *engine.Config) *modelFlags {
	m := &modelFlags{}
	fs.StringVar(&m.data, "data", "", "CSV series (date,value or date,open,high,low,close[,volume]), or an embedded dataset: bike, sp500, transit (required)")
	fs.StringVar(&m.target, "target", "", "target column (default close for OHLCV files, else value)")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "maximum epochs per model; early stopping may stop sooner")
	fs.IntVar(&cfg.Patience, "patience", cfg.Patience, "epochs without a better validation loss before stopping (0 = never stop early)")
	fs.IntVar(&cfg.Model.Batch, "batch-size", cfg.Model.Batch, "rows per optimiser step")
	m.hidden = "64,64"
	fs.StringVar(&m.hidden, "hidden", m.hidden, "hidden layer widths, comma-separated")
	fs.Float64Var(&cfg.Model.LR, "lr", cfg.Model.LR, "Adam learning rate")
	fs.Float64Var(&cfg.Model.BCEWeight, "bce-weight", cfg.Model.BCEWeight, "weight of the p_up cross-entropy in the loss")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed: the same seed and data give identical reports")
	fs.IntVar(&cfg.Window, "window", cfg.Window, "past one-step changes used as features")
	fs.StringVar(&cfg.Transform, "transform", "auto", "model space: auto (log1p for counts, log for positive values), identity, log, log1p")
	m.holidays = "us"
	fs.StringVar(&m.holidays, "holidays", m.holidays, "holiday features: us (US federal) or none")
	fs.IntVar(&cfg.MinSamples, "min-samples", cfg.MinSamples, "fewer modelling samples than this is an error")
	fs.Float64Var(&cfg.Alpha, "alpha", cfg.Alpha, "conformal miscoverage: 0.1 gives 90% intervals")
	return m
}

// apply finishes cfg from the parsed flags and loads the series.
func (m *modelFlags) apply(cfg *engine.Config) (*dataset.Series, error) {
	if m.data == "" {
		return nil, usageError{errors.New("--data is required")}
	}
	h, err := intList(m.hidden)
	if err != nil {
		return nil, usageError{fmt.Errorf("--hidden: %w", err)}
	}
	cfg.Model.Hidden = h
	switch m.holidays {
	case "us":
		cfg.Holidays = true
	case "none":
		cfg.Holidays = false
	default:
		return nil, usageError{fmt.Errorf("--holidays: want us or none, got %q", m.holidays)}
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	s, hash, err := loadData(m.data, m.target)
	cfg.DatasetHash = hash
	return s, err
}

// loadData reads a CSV file, or an embedded dataset when path names one and
// no such file exists, and returns the SHA-256 of its bytes (which the
// reports record) with the series.
func loadData(path, target string) (*dataset.Series, string, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) && slices.Contains(datasets.Names(), path) {
		if target != "" {
			return nil, "", usageError{fmt.Errorf("--target does not apply to the embedded dataset %q", path)}
		}
		return datasets.LoadVersion(path, "", "")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	s, err := dataset.Read(bytes.NewReader(b), filepath.Base(path), dataset.Options{Target: target})
	var de *dataset.Error
	if errors.As(err, &de) {
		de.File = path // as the user named it, so they can find it
	}
	sum := sha256.Sum256(b)
	return s, hex.EncodeToString(sum[:]), err
}

func runTrain(ctx context.Context, e *env, args []string) error {
	cfg := engine.Defaults()
	fs := newFlags(e, "train", "--data FILE [--reports DIR] [--folds K] [--epochs N] [--events -]")
	mf := addModelFlags(fs, &cfg)
	fs.StringVar(&cfg.Reports, "reports", cfg.Reports, "folder for predictions/*.csv and summary.json")
	fs.IntVar(&cfg.Folds, "folds", cfg.Folds, "walk-forward cross-validation folds")
	fs.IntVar(&cfg.Horizons, "horizons", 0, "targets per origin (0 = 1 for OHLCV returns, 30 for value series)")
	fs.Float64Var(&cfg.CalibFrac, "calib-frac", cfg.CalibFrac, "share of each validation block used for calibration; the rest is scored")
	events := fs.String("events", "", "write every training message as JSON lines to FILE, or - for stdout")
	deltas := fs.Bool("prediction-deltas", false, "also emit prediction_delta messages after each epoch")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg.PredictionDeltas = *deltas
	s, err := mf.apply(&cfg)
	if err != nil {
		return err
	}
	ev, err := openEvents(*events, e)
	if err != nil {
		return err
	}
	defer ev.close()
	prog := newProgress(ev.out, cfg.Folds, cfg.Epochs)
	e.log.Info().Str("data", mf.data).Int("rows", s.Len()).Str("frequency", s.Freq.String()).Str("target", s.Target).Msg("training")
	sum, err := engine.Train(ctx, s, cfg, ev.emit(prog.observe))
	prog.finish()
	if err != nil {
		return err
	}
	e.log.Info().Str("summary", cfg.Reports+"/summary.json").Float64("mean_val_auc", float64(sum.Mean.ValAUC)).
		Float64("mean_conformal_coverage", float64(sum.Mean.ConformalCoverage)).Msg("training complete")
	return nil
}

// openEvents opens the --events destination.
// events is where a command's messages go: the JSON lines of --events (a
// file, or - for stdout), and its own lines for people, which go to stderr
// when stdout carries the JSON lines.
type events struct {
	enc   *json.Encoder // nil without --events
	out   io.Writer     // the lines for people
	close func() error
}

func openEvents(dst string, e *env) (*events, error) {
	ev := &events{out: e.stdout, close: func() error { return nil }}
	switch dst {
	case "":
	case "-":
		ev.enc, ev.out = json.NewEncoder(e.stdout), e.stderr
	default:
		f, err := os.Create(dst)
		if err != nil {
			return nil, fmt.Errorf("--events: %w", err)
		}
		ev.enc, ev.close = json.NewEncoder(f), f.Close
	}
	return ev, nil
}

// emit writes each message as a JSON line, if asked, then shows it.
func (ev *events) emit(show func(any)) func(any) {
	return func(m any) {
		if ev.enc != nil {
			ev.enc.Encode(m)
		}
		show(m)
	}
}
