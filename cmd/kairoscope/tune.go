package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/kairoscope/kairoscope/engine"
	"github.com/kairoscope/kairoscope/schema"
)

func runTune(ctx context.Context, e *env, args []string) error {
	cfg := engine.Defaults()
	fs := newFlags(e, "tune", "--data FILE|bike [--trials N] [--folds K] [--epochs E] [--seed S] [--reports DIR]")
	sp := engine.DefaultSearchSpace()
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: kairoscope tune --data FILE|bike [--trials N] [--folds K] [--epochs E] [--seed S] [--reports DIR]\n\n%s\n\n", commands()["tune"].summary)
		fmt.Fprintf(e.stderr, "Random search: each trial draws lr log-uniformly from [%g, %g], hidden widths from %v\n", sp.LRMin, sp.LRMax, sp.Hidden)
		fmt.Fprintf(e.stderr, "and the batch size from %v, then cross-validates with them (reports in DIR/trial_<k>/).\n", sp.Batch)
		fmt.Fprintf(e.stderr, "A trial's score is its %s.\n", engine.Objective)
		fmt.Fprintf(e.stderr, "DIR/tune_summary.json lists every trial and the best. The same seed and data give the same trials and scores.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var data, target string
	fs.StringVar(&data, "data", "", "CSV series (date,value or date,open,high,low,close[,volume]), or an embedded dataset: bike, sp500, transit (required)")
	fs.StringVar(&target, "target", "", "target column (default close for OHLCV files, else value)")
	trials := fs.Int("trials", engine.DefaultTrials, fmt.Sprintf("trials to run, 1 to %d", engine.MaxTrials))
	fs.IntVar(&cfg.Folds, "folds", 3, "walk-forward cross-validation folds per trial")
	fs.IntVar(&cfg.Epochs, "epochs", 10, "maximum epochs per fold; early stopping may stop sooner")
	fs.IntVar(&cfg.Patience, "patience", cfg.Patience, "epochs without a better validation loss before stopping (0 = never stop early)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the draws and of every trial's training")
	fs.StringVar(&cfg.Reports, "reports", "reports/tune", "folder for tune_summary.json and each trial's trial_<k>/")
	events := fs.String("events", "", "write the study's messages (training_start, hpo_trial, training_complete) as JSON lines to FILE, or - for stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if data == "" {
		return usageError{fmt.Errorf("--data is required")}
	}
	if *trials < 1 || *trials > engine.MaxTrials {
		return usageError{fmt.Errorf("--trials: want 1 to %d, got %d", engine.MaxTrials, *trials)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	s, hash, err := loadData(data, target)
	if err != nil {
		return err
	}
	cfg.DatasetHash = hash
	ev, err := openEvents(*events, e)
	if err != nil {
		return err
	}
	defer ev.close()
	out := ev.out
	e.log.Info().Str("data", data).Int("rows", s.Len()).Int("trials", *trials).Msg("tuning")
	sum, err := engine.Tune(ctx, s, cfg, engine.TuneOptions{Trials: *trials}, ev.emit(func(m any) { tuneLine(out, m) }))
	if err != nil {
		return err
	}
	tuneTable(out, sum)
	return nil
}

// tuneLine prints one line per trial, and one at the start.
func tuneLine(w io.Writer, m any) {
	switch m := m.(type) {
	case *schema.TrainingStart:
		fmt.Fprintf(w, "tuning: %d trials of %d folds x %d epochs\n", m.TotalTrials, m.TotalFolds, m.TotalEpochs)
	case *schema.HPOTrial:
		width := len(fmt.Sprint(m.TotalTrials))
		head := fmt.Sprintf("[%*d/%d] trial %*d  lr=%.2e hidden=%-10s batch=%-3d", width, m.Trial+1, m.TotalTrials, width, m.Trial, m.Params.LR, hidden(m.Params.Hidden), m.Params.BatchSize)
		best := "none yet"
		if m.BestTrial != nil {
			best = fmt.Sprintf("%.4f (trial %d)", float64(m.BestValue), *m.BestTrial)
		}
		if m.State == schema.TrialFailed {
			fmt.Fprintf(w, "%s  FAILED: %s  best %s  %.0fs\n", head, m.Error, best, float64(m.ElapsedSeconds))
			return
		}
		fmt.Fprintf(w, "%s  val_loss %.4f  best %s  %.0fs\n", head, float64(m.Value), best, float64(m.ElapsedSeconds))
	}
}

// tuneTable prints every trial, best first marked, and where the summary is.
func tuneTable(w io.Writer, sum *engine.TuneSummary) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "trial\tlr\thidden\tbatch\tval_loss\t")
	for _, r := range sum.Results {
		val := "failed"
		if !math.IsNaN(float64(r.Value)) {
			val = fmt.Sprintf("%.4f", float64(r.Value))
		}
		mark := ""
		if sum.BestTrial != nil && r.Trial == *sum.BestTrial {
			mark = "best"
		}
		fmt.Fprintf(tw, "%d\t%.2e\t%s\t%d\t%s\t%s\n", r.Trial, r.Params.LR, hidden(r.Params.Hidden), r.Params.BatchSize, val, mark)
	}
	tw.Flush()
	b := sum.BestParams
	fmt.Fprintf(w, "\nbest: trial %d, val_loss %.4f (lower is better): --lr %g --hidden %s --batch-size %d\n",
		*sum.BestTrial, float64(sum.BestValue), b.LR, hidden(b.Hidden), b.BatchSize)
}

func hidden(h []int) string {
	s := make([]string, len(h))
	for i, v := range h {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}
