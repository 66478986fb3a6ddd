package worker

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"

	"github.com/kairoscope/kairoscope/schema"
)

// Kinds of job (Spec.Kind).
const (
	KindTrain    = "train"    // walk-forward CV; emits the training schema's messages
	KindForecast = "forecast" // train on the whole history and forecast; emits /ws/predict messages
	// KindTune is a hyperparameter study: Run.Trials walk-forward CVs with
	// lr, hidden and batch size drawn from the search space; emits
	// training_start, hpo_trial per trial, then training_complete or
	// training_error.
	KindTune = "tune"
)

// Spec is one job. A run (train or tune) carries the client's request as it
// was accepted; a forecast carries its dataset and horizon. Zero fields take
// the engine's defaults.
type Spec struct {
	// Run is the request of a train or tune job, as POST /api/runs accepted
	// it (with the server's defaults for its dataset and on_oom filled in).
	Run *schema.RunRequest `json:"run,omitempty"`
	// Forecast is a forecast job's parameters.
	Forecast *Forecast `json:"forecast,omitempty"`
	// Data names the exact bytes the job reads, by content. The server
	// fills it when it accepts the job, so that what the job trains on is
	// the dataset as it was then, whatever is appended or replaced later.
	// nil (a spec written by hand, an old server): the embedded dataset
	// named by Run or Forecast, unchecked.
	Data *Data `json:"data,omitempty"`

	// Reports is the folder a run writes its reports to.
	Reports string `json:"reports,omitempty"`
	// PredictionDeltas asks a train job for a prediction_delta after each
	// epoch.
	PredictionDeltas bool `json:"prediction_deltas,omitempty"`

	// FallbackReason is set by the Runner when a GPU worker could not run
	// the job and the CPU worker took it; training_start carries it.
	FallbackReason string `json:"fallback_reason,omitempty"`

	// OrphanAfterMS, set by a Runner with OrphanAfter, says that the
	// server writes a newline on the worker's descriptor BeatFD at least
	// every OrphanAfterMS/4 milliseconds; a worker that hears none for
	// OrphanAfterMS stops itself (see Open). 0: no beats, no descriptor.
	OrphanAfterMS int64 `json:"orphan_after_ms,omitempty"`
}

// Forecast is what a forecast job predicts.
type Forecast struct {
	Dataset  string `json:"dataset"`
	Horizon  int    `json:"horizon,omitempty"`  // days; 0: 30
	Ensemble int    `json:"ensemble,omitempty"` // nets averaged; 0: the engine's default
}

// Data identifies the content of a dataset: its name and the SHA-256 of its
// file's bytes. A worker on another machine can fetch the same bytes by
// name and hash and check them; the local worker reads Path.
type Data struct {
	Name string `json:"name"` // the dataset's name, as Run or Forecast give it
	Hash string `json:"hash"` // lower-case hex SHA-256 of the file's bytes
	// Path is a file on the worker's machine that holds exactly these
	// bytes, filled in by whoever starts the worker (the server: a copy it
	// keeps until the job ends). Empty: the worker's own embedded dataset
	// Name, whose hash must still match.
	Path string `json:"path,omitempty"`
}

// hashPattern is what Data.Hash looks like.
var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Kind says what the job is: KindTrain, KindTune or KindForecast.
func (s Spec) Kind() string {
	switch {
	case s.Forecast != nil:
		return KindForecast
	case s.Run != nil && s.Run.Kind == schema.RunKindTune:
		return KindTune
	default:
		return KindTrain
	}
}

// Dataset names the dataset the job reads.
func (s Spec) Dataset() string {
	if s.Forecast != nil {
		return s.Forecast.Dataset
	}
	if s.Run != nil {
		return s.Run.Dataset
	}
	return ""
}

// ReadSpec decodes the one spec a worker reads, refusing unknown fields and
// a run request that does not validate. Workers call Open, which also
// watches for the server's beats.
func ReadSpec(r io.Reader) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("worker: reading the job spec: %w", err)
	}
	return s, s.validate()
}

func (s Spec) validate() error {
	if (s.Run == nil) == (s.Forecast == nil) {
		return fmt.Errorf("worker: the job spec needs exactly one of run and forecast")
	}
	if s.Run != nil {
		if err := s.Run.Validate(); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}
	if s.Dataset() == "" {
		return fmt.Errorf("worker: the job spec names no dataset")
	}
	if d := s.Data; d != nil {
		switch {
		case d.Name != s.Dataset():
			return fmt.Errorf("worker: the job spec's data is dataset %q, its %s names %q", d.Name, s.Kind(), s.Dataset())
		case !hashPattern.MatchString(d.Hash):
			return fmt.Errorf("worker: the job spec's data hash %q is not a hex SHA-256", d.Hash)
		}
	}
	if s.OrphanAfterMS < 0 {
		return fmt.Errorf("worker: the job spec's orphan_after_ms is negative (%d)", s.OrphanAfterMS)
	}
	return nil
}
