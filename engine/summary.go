package engine

import (
	"reflect"
	"time"

	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/schema"
)

// Summary is summary.json: the job's settings and every fold's final
// metrics under the training schema's names. It holds nothing that changes
// between two runs with the same seed and data (no times, no paths with
// timestamps beyond the predictions file names), so such runs compare equal.
type Summary struct {
	Dataset string `json:"dataset"`
	// DatasetHash is the SHA-256 of the data's file: with Rows, the
	// version of the data the run trained on. Absent when unknown.
	DatasetHash string         `json:"dataset_hash,omitempty"`
	Rows        int            `json:"rows"`
	Samples     int            `json:"samples"`
	Target      string         `json:"target"`
	Frequency   string         `json:"frequency"`
	Transform   string         `json:"transform"`
	Horizons    int            `json:"horizons"`
	Config      SummaryConfig  `json:"config"`
	Folds       []FoldSummary  `json:"folds"`
	Mean        schema.Metrics `json:"mean"` // average of the folds' metrics
}

// SummaryConfig echoes the settings that shaped the numbers.
type SummaryConfig struct {
	Folds     int     `json:"folds"`
	Epochs    int     `json:"epochs"`
	Patience  int     `json:"patience"`
	Batch     int     `json:"batch_size"`
	Hidden    []int   `json:"hidden"`
	LR        float64 `json:"lr"`
	BCEWeight float64 `json:"bce_weight"`
	Window    int     `json:"window"`
	Holidays  bool    `json:"holidays"`
	Seed      uint64  `json:"seed"`
	CalibFrac float64 `json:"calib_frac"`
	Alpha     float64 `json:"alpha"`
}

// FoldSummary is one fold's outcome. Its val_* and diagnostic metrics are
// computed on the rows of its predictions CSV whose split is "score", with
// p = p_up_cal and the conformal interval conf_low..conf_high; its train_*
// metrics are those of the best epoch, whose weights the fold kept.
type FoldSummary struct {
	FoldID int `json:"fold_id"`
	schema.Metrics
	TrainFrom          string       `json:"train_from"`
	ValFrom            string       `json:"val_from"`
	ScoreFrom          string       `json:"score_from"`
	ValTo              string       `json:"val_to"`
	TrainRows          int          `json:"train_rows"`
	CalibRows          int          `json:"calib_rows"`
	ScoredRows         int          `json:"scored_rows"`
	EpochsRun          int          `json:"epochs_run"`
	BatchSize          int          `json:"batch_size"` // the config's, or less after an out-of-memory retry
	BestEpoch          int          `json:"best_epoch"`
	YScale             float64      `json:"target_scale"`
	CalibrationMethod  string       `json:"calibration_method"`
	Temperature        float64      `json:"temperature,omitempty"`
	ConformalQuantile  schema.Float `json:"conformal_quantile"`
	CalibrationWarning *string      `json:"calibration_warning"`
	CoverageWarning    *string      `json:"coverage_warning"`
	PredictionsFile    string       `json:"predictions_file"`
}

func newSummary(s *dataset.Series, fc features.Config, c Config, samples int) *Summary {
	return &Summary{
		Dataset: s.Name, DatasetHash: c.DatasetHash, Rows: s.Len(), Samples: samples, Target: s.Target, Frequency: s.Freq.String(),
		Transform: fc.Transform.String(), Horizons: fc.Horizons,
		Config: SummaryConfig{Folds: c.Folds, Epochs: c.Epochs, Patience: c.Patience, Batch: c.Model.Batch,
			Hidden: c.Model.Hidden, LR: c.Model.LR, BCEWeight: c.Model.BCEWeight, Window: c.Window, Holidays: c.Holidays,
			Seed: c.Seed, CalibFrac: c.CalibFrac, Alpha: c.Alpha},
	}
}

// finish averages the folds' metrics field by field (NaN where any fold's
// value is NaN: an average that silently skipped a fold would mislead).
func (s *Summary) finish() {
	mean := reflect.ValueOf(&s.Mean).Elem()
	for i := 0; i < mean.NumField(); i++ {
		var sum float64
		for _, f := range s.Folds {
			sum += reflect.ValueOf(f.Metrics).Field(i).Float()
		}
		mean.Field(i).SetFloat(sum / float64(len(s.Folds)))
	}
}

func day(t time.Time) string { return t.Format("2006-01-02") }

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
