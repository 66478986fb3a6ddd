package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/schema"
	"github.com/kairoscope/kairoscope/worker"
)

// Messages of the prediction pipeline, worded as the seed does.
const (
	msgLoading     = "Chargement des données..."
	msgForecasting = "Prédiction Kairoscope du futur en cours..."
	msgFallback    = "GPU indisponible, prédiction sur le CPU : "
)

// Runtime is what a worker binary brings to a job: where it trains.
type Runtime struct {
	Trainer model.NewTrainer // nil: the CPU
	Device  string           // announced in training_start, e.g. "cpu"
	// Note, when set, is said once before a forecast starts (e.g. which GPU
	// runs it).
	Note string
	// KeepAlive is how often RunWorker writes a keepalive while training
	// steps finish (default worker.KeepAliveEvery).
	KeepAlive time.Duration
}

// RunJob runs one worker job and emits its messages: the training schema
// for a train job, training_start, hpo_trial and training_complete for a
// tune (Tune), the /ws/predict statuses for a forecast. A failure is
// emitted (training_error or error) and returned.
func RunJob(ctx context.Context, spec worker.Spec, rt Runtime, emit Emit) error {
	if spec.Forecast != nil {
		return runForecast(ctx, spec, rt, emit)
	}
	s, hash, err := loadData(spec)
	if err != nil {
		emit(&schema.TrainingError{Type: schema.TypeTrainingError, Error: err.Error()})
		return err
	}
	cfg := runConfig(Defaults(), spec, rt)
	cfg.DatasetHash = hash
	if spec.Kind() == worker.KindTune {
		_, err = Tune(ctx, s, cfg, TuneOptions{Trials: spec.Run.Trials}, emit)
		return err
	}
	_, err = Train(ctx, s, cfg, emit)
	return err
}

// loadData reads the bytes the job was started on: spec.Data's file (or
// embedded dataset), refused unless it has the spec's hash; a spec without
// Data names an embedded dataset. It returns the series and the hash of
// its bytes.
func loadData(spec worker.Spec) (*dataset.Series, string, error) {
	if d := spec.Data; d != nil {
		return datasets.LoadVersion(d.Name, d.Hash, d.Path)
	}
	return datasets.LoadVersion(spec.Dataset(), "", "")
}

func runForecast(ctx context.Context, spec worker.Spec, rt Runtime, emit Emit) error {
	f, fallback := *spec.Forecast, spec.FallbackReason
	fail := func(err error) error {
		emit(&schema.PredictError{Status: schema.StatusError, Message: err.Error()})
		return err
	}
	emit(&schema.PredictMessage{Status: schema.StatusMessage, Message: msgLoading})
	if rt.Note != "" {
		emit(&schema.PredictMessage{Status: schema.StatusMessage, Message: rt.Note})
	}
	if fallback != "" {
		emit(&schema.PredictMessage{Status: schema.StatusMessage, Message: msgFallback + fallback})
	}
	s, hash, err := loadData(spec)
	if err != nil {
		return fail(err)
	}
	horizon := f.Horizon
	if horizon == 0 {
		horizon = 30
	}
	cfg := withRuntime(ForecastDefaults(), rt)
	if f.Ensemble != 0 {
		cfg.Ensemble = f.Ensemble
	}
	pts, err := Forecast(ctx, s, cfg, horizon, func(step, total int) {
		emit(&schema.PredictSteps{Status: schema.StatusSteps, Message: msgForecasting,
			StepName: fmt.Sprintf("Etape %d sur %d", step, total), Step: step, TotalStep: total})
	})
	if err != nil {
		return fail(err)
	}
	emit(&schema.PredictOutput{Status: schema.StatusOutput, Payload: Payload(pts, s.Counts),
		Dataset: s.Name, DatasetHash: hash, DatasetRows: s.Len()})
	return nil
}

// runConfig applies a run spec's request (its non-zero fields) and the
// runtime over base.
func runConfig(base Config, spec worker.Spec, rt Runtime) Config {
	c := withRuntime(base, rt)
	req := spec.Run
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&c.Folds, req.Folds)
	set(&c.Epochs, req.Epochs)
	set(&c.Model.Batch, req.BatchSize)
	set(&c.Horizons, req.Horizons)
	if req.Patience != nil {
		c.Patience = *req.Patience
	}
	if len(req.Hidden) > 0 {
		c.Model.Hidden = req.Hidden
	}
	if req.LR != 0 {
		c.Model.LR = req.LR
	}
	if req.Seed != 0 {
		c.Seed = req.Seed
	}
	if spec.Reports != "" {
		c.Reports = spec.Reports
	}
	c.PredictionDeltas = spec.PredictionDeltas
	if req.OnOOM == schema.OnOOMHalve {
		c.OOMRetries = 3
	}
	c.FallbackReason = spec.FallbackReason
	return c
}

// withRuntime sets where base trains.
func withRuntime(base Config, rt Runtime) Config {
	base.Trainer = rt.Trainer
	if rt.Device != "" {
		base.Device = rt.Device
	}
	return base
}

// Payload turns forecast points into the /ws/predict output objects;
// counts stay JSON integers.
func Payload(pts []Point, counts bool) schema.ForecastPayload {
	items := make(schema.ForecastPayload, len(pts))
	for i, p := range pts {
		items[i] = schema.ForecastItem{
			Date: p.Date.Format("2006-01-02"), PredictedAffluence: number(p.Value, counts),
			ConfLow: number(p.Low, counts), ConfHigh: number(p.High, counts), ConfidenceScore: p.Confidence,
			PUp: schema.Float(p.PUp), Mu: schema.Float(p.Mu), Sigma: schema.Float(p.Sigma),
		}
	}
	return items
}

func number(v float64, counts bool) json.Number {
	if counts {
		return json.Number(fmt.Sprintf("%d", int64(v)))
	}
	return json.Number(fmt.Sprintf("%.6g", v))
}
