package schema

import (
	"encoding/json"
	"math"
	"strconv"
)

// Message types of the training hub (/ws).
const (
	TypeDatasetReady     = "dataset_ready"
	TypeTrainingStart    = "training_start"
	TypeEpochMetrics     = "epoch_metrics"
	TypeFoldComplete     = "fold_complete"
	TypeTrainingComplete = "training_complete"
	TypeTrainingError    = "training_error"
	TypePredictionDelta  = "prediction_delta"

	// Extensions announced by the seed's "Future Extensions" and one reply.
	TypeBatchProgress = "batch_progress" // extension 1
	TypeHPOTrial      = "hpo_trial"      // extension 2
	TypeNotification  = "notification"   // extension 4
	TypePong          = "pong"           // answer to a client's text "ping"
	// TypeChartUpdate (extension 3) is in chart.go.
)

// Fields the server adds to every /ws message it relays, outside the structs
// of this package (package ws appends them to the encoded JSON). The JSON
// Schemas describe them on every /ws message.
const (
	FieldRunID = "run_id" // the run the message belongs to, a non-empty string
	FieldSeq   = "seq"    // 1, 2, 3, … per run, for replay and gap detection
)

// Float is a metric value. NaN and ±Inf (an AUC with one class, a p-value of
// a degenerate regression) have no JSON form, so they travel as null; every
// client of the seed already handles a missing number.
type Float float64

// MarshalJSON writes the shortest decimal that round-trips, or null.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// DatasetReady is sent when the dataset has been prepared.
type DatasetReady struct {
	Type       string `json:"type"`
	Size       int    `json:"size"`        // modelling samples (rows with features and a target)
	MinSamples int    `json:"min_samples"` // fewer samples than this is an error
	Dataset    string `json:"dataset,omitempty"`
	Rows       int    `json:"rows,omitempty"` // rows of the source file
}

// TrainingStart is sent when training begins.
type TrainingStart struct {
	Type           string `json:"type"`
	UseCV          bool   `json:"use_cv"`
	TotalFolds     int    `json:"total_folds"`
	TotalEpochs    int    `json:"total_epochs"`
	Device         string `json:"device,omitempty"`
	FallbackReason string `json:"fallback_reason,omitempty"`
	// TotalTrials is the size of a hyperparameter study (a tune), whose
	// trials each run TotalFolds folds of at most TotalEpochs epochs and
	// are reported by hpo_trial; absent for a training run.
	TotalTrials int `json:"total_trials,omitempty"`
	// Dataset, DatasetHash and DatasetRows say which version of the data
	// the job trains on: the file it was read from, the SHA-256 of its
	// bytes and its rows. Absent when the job does not know them.
	Dataset     string `json:"dataset,omitempty"`
	DatasetHash string `json:"dataset_hash,omitempty"`
	DatasetRows int    `json:"dataset_rows,omitempty"`
}

// Metrics are the numbers of one epoch, or a fold's final numbers in
// summary.json, under the seed's key names.
type Metrics struct {
	TrainLoss         Float `json:"train_loss"`
	TrainNLL          Float `json:"train_nll"`
	TrainBCE          Float `json:"train_bce"`
	TrainBrier        Float `json:"train_brier"`
	ValLoss           Float `json:"val_loss"`
	ValNLL            Float `json:"val_nll"`
	ValBCE            Float `json:"val_bce"`
	ValBrier          Float `json:"val_brier"`
	ValAUC            Float `json:"val_auc"`
	DirAcc            Float `json:"DirAcc"`
	ECE               Float `json:"ECE"`
	MZIntercept       Float `json:"MZ_intercept"`
	MZSlope           Float `json:"MZ_slope"`
	MZFp              Float `json:"MZ_F_p"`
	PITKSp            Float `json:"PIT_KS_p"`
	ConformalCoverage Float `json:"conformal_coverage"`
	ConformalWidth    Float `json:"conformal_width"`
}

// EpochMetrics is sent at the end of each epoch. FoldID and Epoch are
// 0-indexed; ElapsedSeconds counts from training start.
type EpochMetrics struct {
	Type   string `json:"type"`
	FoldID int    `json:"fold_id"`
	Epoch  int    `json:"epoch"`
	Metrics
	ElapsedSeconds Float `json:"elapsed_seconds"`
}

// FoldComplete is sent when a fold has been trained, calibrated and scored.
// The warnings are null when there is nothing to say.
type FoldComplete struct {
	Type               string  `json:"type"`
	FoldID             int     `json:"fold_id"`
	PredictionsPath    string  `json:"predictions_path"`
	CalibrationMethod  string  `json:"calibration_method"`
	CalibrationWarning *string `json:"calibration_warning"`
	CoverageWarning    *string `json:"coverage_warning"`
}

// TrainingComplete is sent when every fold has completed.
type TrainingComplete struct {
	Type           string `json:"type"`
	FoldsCompleted int    `json:"folds_completed"`
	SummaryPath    string `json:"summary_path"`
}

// TrainingError is sent when training stops on an error.
type TrainingError struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

// PredictionDelta carries a fold's scored predictions after an epoch. A
// fold with more than MaxDeltaRows scored rows sends them in Parts
// messages of at most MaxDeltaRows rows each, in order, numbered by Part
// from 1: one frame stays far below the 1 MiB that common clients accept
// (the seed's Python client among them).
type PredictionDelta struct {
	Type   string `json:"type"`
	FoldID int    `json:"fold_id"`
	Epoch  int    `json:"epoch"`
	Part   int    `json:"part,omitempty"`  // 1 to Parts; not in the seed, always sent
	Parts  int    `json:"parts,omitempty"` // messages this epoch's predictions span; not in the seed, always sent
	// Final marks the fold's final predictions, sent once before its
	// fold_complete: the best epoch's (Epoch) with the fold's calibration,
	// what fold_complete and the predictions CSV score. The deltas sent
	// during training carry p_up_cal uncalibrated (equal to p_up_raw): the
	// calibrator is fitted when the fold ends. Not in the seed.
	Final       bool         `json:"final,omitempty"`
	Predictions []Prediction `json:"predictions"`
}

// MaxDeltaRows is the most predictions one PredictionDelta carries: about
// 400 KB of JSON.
const MaxDeltaRows = 2000

// Prediction is one row of a PredictionDelta.
type Prediction struct {
	Timestamp  string `json:"timestamp"`        // RFC 3339, UTC midnight of the target day
	YTrue      *Float `json:"y_true,omitempty"` // the actual change (up = y_true > 0); not in the seed
	Mu         Float  `json:"mu"`
	Sigma      Float  `json:"sigma"`
	PUpRaw     Float  `json:"p_up_raw"`
	PUpCal     Float  `json:"p_up_cal"`
	ConformalP Float  `json:"conformal_p"`
	PITZ       Float  `json:"pit_z"`
}
