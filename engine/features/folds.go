package features

import "fmt"

// Fold is one walk-forward split over origins, in time order:
//
//	train origins [first, ValStart), with every target index ≤ ValStart
//	calibration origins [ValStart, ScoreStart), targets ≤ ScoreStart
//	scored origins [ScoreStart, End), one-step targets ≤ End
//
// A target index ≤ ValStart means the training part sees no value after the
// first validation origin: the validation targets never reach training.
type Fold struct {
	ID                        int
	ValStart, ScoreStart, End int
}

// WalkForward splits origins [first, last] (last is the final origin with a
// one-step target) into k expanding-window folds: the range is cut into k+1
// blocks; fold i trains on blocks 0..i and validates on block i+1. Each
// validation block's first calibFrac (by origins) calibrates, the rest is
// scored.
func WalkForward(first, last, k int, calibFrac float64) ([]Fold, error) {
	n := last - first + 1
	if k < 1 {
		return nil, fmt.Errorf("folds: need at least 1 fold, got %d", k)
	}
	block := n / (k + 1)
	if block < 20 {
		return nil, fmt.Errorf("folds: %d samples make blocks of %d for %d folds; need at least 20 per block (use fewer folds or more data)", n, block, k)
	}
	folds := make([]Fold, k)
	for i := range folds {
		start := first + (i+1)*block
		end := start + block
		if i == k-1 {
			end = last + 1
		}
		score := start + int(float64(end-start)*calibFrac+0.5)
		folds[i] = Fold{ID: i, ValStart: start, ScoreStart: score, End: end}
	}
	return folds, nil
}

// TrainRows are the rows fold fo trains on: all horizons, targets ≤ ValStart.
func (f *Frame) TrainRows(fo Fold) []Row {
	return f.Rows(f.First, fo.ValStart, fo.ValStart, f.AllHorizons())
}

// CalibRows are the calibration part's rows at every horizon, with targets
// inside the calibration part (early stopping watches their loss).
func (f *Frame) CalibRows(fo Fold) []Row {
	return f.Rows(fo.ValStart, fo.ScoreStart, fo.ScoreStart, f.AllHorizons())
}

// ScoreRows are the scored one-step rows.
func (f *Frame) ScoreRows(fo Fold) []Row {
	return f.Rows(fo.ScoreStart, fo.End, fo.End, []int{1})
}
