package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/kairoscope/kairoscope/schema"
)

// progress shows a training run: a bar over all epochs of all folds on a
// terminal, one plain line per epoch otherwise (logs, CI, pipes).
type progress struct {
	w             io.Writer
	bar           *progressbar.ProgressBar
	folds, epochs int
	done          int
}

func newProgress(w io.Writer, folds, epochs int) *progress {
	p := &progress{w: w, folds: folds, epochs: epochs}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(folds*epochs, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("training"), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *progress) observe(msg any) {
	switch m := msg.(type) {
	case *schema.TrainingStart:
		p.folds, p.epochs = m.TotalFolds, m.TotalEpochs
	case *schema.BatchProgress: // only long epochs send it; the plain lines stay one per epoch
		if p.bar != nil {
			p.bar.Describe(fmt.Sprintf("fold %d/%d epoch %d  batch %d/%d", m.FoldID+1, p.folds, m.Epoch+1, m.Batch, m.TotalBatches))
		}
	case *schema.EpochMetrics:
		p.done++
		if p.bar != nil {
			p.bar.Describe(fmt.Sprintf("fold %d/%d epoch %d  val_loss %.4f  AUC %.3f", m.FoldID+1, p.folds, m.Epoch+1, m.ValLoss, m.ValAUC))
			p.bar.Set(p.done)
			return
		}
		fmt.Fprintf(p.w, "fold %d/%d epoch %d/%d  train_loss %.4f  val_loss %.4f  val_auc %.3f  coverage %.2f  %.1fs\n",
			m.FoldID+1, p.folds, m.Epoch+1, p.epochs, m.TrainLoss, m.ValLoss, m.ValAUC, m.ConformalCoverage, m.ElapsedSeconds)
	case *schema.FoldComplete:
		// Early stopping skipped the fold's remaining epochs: the total shrinks.
		p.done = (m.FoldID + 1) * p.epochs
		if p.bar != nil {
			p.bar.Set(p.done)
			return
		}
		fmt.Fprintf(p.w, "fold %d/%d complete: calibration %s, predictions %s\n", m.FoldID+1, p.folds, m.CalibrationMethod, m.PredictionsPath)
		for _, w := range []*string{m.CalibrationWarning, m.CoverageWarning} {
			if w != nil {
				fmt.Fprintf(p.w, "  warning: %s\n", *w)
			}
		}
	case *schema.TrainingComplete:
		if p.bar == nil {
			fmt.Fprintf(p.w, "training complete: %d folds, summary %s\n", m.FoldsCompleted, m.SummaryPath)
		}
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
