package worker

import (
	"encoding/json"
	"fmt"
	"io"
)

// Kinds of job.
const (
	KindTrain    = "train"    // walk-forward CV; emits the training schema's messages
	KindForecast = "forecast" // train on the whole history and forecast; emits /ws/predict messages
	// KindTune is a hyperparameter study (engine.Tune): Trials walk-forward
	// CVs with lr, hidden and batch size drawn from the search space (the
	// spec's own LR, Hidden and BatchSize are not used); emits
	// training_start, hpo_trial per trial, then training_complete or
	// training_error.
	KindTune = "tune"
)

// Spec is one job. Zero fields take the engine's defaults.
type Spec struct {
	Kind     string `json:"kind"`
	Dataset  string `json:"dataset,omitempty"`   // an embedded dataset name, or
	DataPath string `json:"data_path,omitempty"` // a CSV file on the server (never from a client)
	Target   string `json:"target,omitempty"`
	Reports  string `json:"reports,omitempty"`

	Folds     int     `json:"folds,omitempty"`
	Epochs    int     `json:"epochs,omitempty"`
	Patience  *int    `json:"patience,omitempty"`
	BatchSize int     `json:"batch_size,omitempty"`
	Hidden    []int   `json:"hidden,omitempty"`
	LR        float64 `json:"lr,omitempty"`
	Seed      uint64  `json:"seed,omitempty"`
	Horizons  int     `json:"horizons,omitempty"`
	Horizon   int     `json:"horizon,omitempty"` // forecast days
	Ensemble  int     `json:"ensemble,omitempty"`
	Trials    int     `json:"trials,omitempty"` // a tune's trials; 0: the engine's default
	// PredictionDeltas asks for prediction_delta messages after each epoch.
	PredictionDeltas bool `json:"prediction_deltas,omitempty"`
	// OnOOM "halve" retries a fold that ran out of device memory with half
	// the batch, up to 3 times; "" or "fail" ends the job.
	OnOOM string `json:"on_oom,omitempty"`

	// FallbackReason is set by the Runner when a GPU worker could not run
	// the job and the CPU worker took it; training_start carries it.
	FallbackReason string `json:"fallback_reason,omitempty"`
}

// ReadSpec decodes the one spec a worker reads, refusing unknown fields.
func ReadSpec(r io.Reader) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("worker: reading the job spec: %w", err)
	}
	if s.Kind != KindTrain && s.Kind != KindForecast && s.Kind != KindTune {
		return s, fmt.Errorf("worker: unknown job kind %q (want %s, %s or %s)", s.Kind, KindTrain, KindForecast, KindTune)
	}
	if (s.Dataset == "") == (s.DataPath == "") {
		return s, fmt.Errorf("worker: the job spec needs exactly one of dataset and data_path")
	}
	return s, nil
}
