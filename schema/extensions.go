package schema

// Levels of a Notification.
const (
	LevelInfo    = "info"
	LevelWarning = "warning"
)

// Kinds of Notification Kairoscope sends. Kind is open: clients must show
// the Message of a kind they do not know.
const (
	KindProgress50         = "progress_50"         // half of all epochs of all folds are done
	KindBestAUC            = "best_auc"            // the run reached its best validation AUC so far
	KindEarlyStop          = "early_stop"          // a fold stopped before its last epoch
	KindCalibrationWarning = "calibration_warning" // a fold_complete carried a calibration warning
	KindCoverageWarning    = "coverage_warning"    // a fold_complete carried a coverage warning
	KindOOMRetry           = "oom_retry"           // the device ran out of memory: the fold starts again with half the batch
	// KindRetry: the run starts again as a new attempt (its agent was lost
	// or stopped); the messages that follow carry the new "attempt".
	KindRetry = "retry"
)

// Pong answers a client's text "ping" on /ws. The seed's clients call
// JSON.parse on every frame, so the answer is a JSON object, never a bare
// "pong".
type Pong struct {
	Type string `json:"type"` // TypePong
}

// Notification is the seed's extension 4 ("User Notifications"): a training
// milestone or a warning, worded for a person. Kind says what happened for
// programs; Message says it for people. FoldID and Epoch (0-indexed, as in
// epoch_metrics) are absent when the notice is about the whole run; Value is
// the number the notice is about (the AUC of best_auc, the coverage of
// coverage_warning), absent when there is none, null when it is NaN.
type Notification struct {
	Type    string `json:"type"`  // TypeNotification
	Level   string `json:"level"` // LevelInfo or LevelWarning
	Kind    string `json:"kind"`  // one of the Kind constants, or a newer kind
	Message string `json:"message"`
	FoldID  *int   `json:"fold_id,omitempty"`
	Epoch   *int   `json:"epoch,omitempty"`
	Value   *Float `json:"value,omitempty"`
}

// BatchProgress is the seed's extension 1 ("Per-Batch Progress"): progress
// inside an epoch. FoldID and Epoch are 0-indexed as in epoch_metrics; Batch
// counts the minibatches done so far in this epoch, from 1 to TotalBatches,
// so Batch == TotalBatches means the epoch's training pass is over (its
// epoch_metrics follows once validation is scored).
type BatchProgress struct {
	Type         string `json:"type"` // TypeBatchProgress
	FoldID       int    `json:"fold_id"`
	Epoch        int    `json:"epoch"`
	Batch        int    `json:"batch"`
	TotalBatches int    `json:"total_batches"`
}

// States of an HPOTrial.
const (
	TrialComplete = "complete" // the trial's cross-validation ran; Value is its score
	TrialFailed   = "failed"   // the trial stopped on an error (Error); the study goes on
)

// HPOTrial is the seed's extension 2 ("Hyperparameter Trial Updates"): one
// finished trial of a hyperparameter study (`kairoscope tune`, or a run of
// kind "tune"), sent once per trial, in trial order. Trial is 0-indexed, as
// fold_id and epoch are, and TotalTrials repeats the study's size so a
// client that joins late can draw it.
//
// Value is the trial's objective, the mean val_loss over its folds (lower
// is better); it is null when the trial failed. BestTrial and BestValue are
// the best complete trial so far, this one included; both are null while
// no trial has completed. ElapsedSeconds counts from the study's start.
type HPOTrial struct {
	Type           string    `json:"type"` // TypeHPOTrial
	Trial          int       `json:"trial"`
	TotalTrials    int       `json:"total_trials"`
	State          string    `json:"state"` // TrialComplete or TrialFailed
	Params         HPOParams `json:"params"`
	Value          Float     `json:"value"`
	Error          string    `json:"error,omitempty"` // why a failed trial failed
	BestTrial      *int      `json:"best_trial"`
	BestValue      Float     `json:"best_value"`
	ElapsedSeconds Float     `json:"elapsed_seconds"`
}

// HPOParams are the hyperparameters a trial tried, under the names
// RunRequest uses for them.
type HPOParams struct {
	LR        float64 `json:"lr"`
	Hidden    []int   `json:"hidden"`
	BatchSize int     `json:"batch_size"`
}
