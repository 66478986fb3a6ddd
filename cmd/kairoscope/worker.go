package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/kairoscope/kairoscope/datasets"
	"github.com/kairoscope/kairoscope/engine"
	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/worker"
	"github.com/kairoscope/kairoscope/schema"
)

// Messages of the prediction pipeline, as the seed words them.
const (
	msgLoading     = "Chargement des données..."
	msgForecasting = "Prédiction Kairoscope du futur en cours..."
)

// runWorker runs one job spec read from stdin, writing its messages as JSON
// lines on stdout (the engine/worker protocol). The server starts it; it is
// not meant to be typed.
func runWorker(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "worker", "< spec.json")
	if err := parse(fs, args); err != nil {
		return err
	}
	spec, err := worker.ReadSpec(e.stdin)
	if err != nil {
		return err
	}
	out := &lineWriter{enc: json.NewEncoder(e.stdout)}
	e.log.Info().Str("kind", spec.Kind).Str("dataset", spec.Dataset).Str("data_path", spec.DataPath).Msg("job")
	if spec.Kind == worker.KindForecast {
		err = runForecastJob(ctx, spec, out)
	} else {
		err = runTrainJob(ctx, spec, out)
	}
	if err != nil {
		e.log.Error().Err(err).Msg("job failed")
	}
	return err
}

// lineWriter writes one JSON object per line; the encoder adds the newline.
type lineWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *lineWriter) emit(m any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.enc.Encode(m)
}

func loadSpecData(spec worker.Spec) (*dataset.Series, error) {
	if spec.Dataset != "" {
		return datasets.Load(spec.Dataset)
	}
	return dataset.Load(spec.DataPath, dataset.Options{Target: spec.Target})
}

// specConfig applies a spec's non-zero fields over base.
func specConfig(base engine.Config, spec worker.Spec) engine.Config {
	c := base
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&c.Folds, spec.Folds)
	set(&c.Epochs, spec.Epochs)
	set(&c.Model.Batch, spec.BatchSize)
	set(&c.Horizons, spec.Horizons)
	set(&c.Ensemble, spec.Ensemble)
	if spec.Patience != nil {
		c.Patience = *spec.Patience
	}
	if len(spec.Hidden) > 0 {
		c.Model.Hidden = spec.Hidden
	}
	if spec.LR != 0 {
		c.Model.LR = spec.LR
	}
	if spec.Seed != 0 {
		c.Seed = spec.Seed
	}
	if spec.Reports != "" {
		c.Reports = spec.Reports
	}
	c.PredictionDeltas = spec.PredictionDeltas
	c.FallbackReason = spec.FallbackReason
	return c
}

func runTrainJob(ctx context.Context, spec worker.Spec, out *lineWriter) error {
	s, err := loadSpecData(spec)
	if err != nil {
		out.emit(&schema.TrainingError{Type: schema.TypeTrainingError, Error: err.Error()})
		return err
	}
	_, err = engine.Train(ctx, s, specConfig(engine.Defaults(), spec), out.emit)
	return err
}

func runForecastJob(ctx context.Context, spec worker.Spec, out *lineWriter) error {
	fail := func(err error) error {
		out.emit(&schema.PredictError{Status: schema.StatusError, Message: err.Error()})
		return err
	}
	out.emit(&schema.PredictMessage{Status: schema.StatusMessage, Message: msgLoading})
	s, err := loadSpecData(spec)
	if err != nil {
		return fail(err)
	}
	horizon := spec.Horizon
	if horizon == 0 {
		horizon = 30
	}
	pts, err := engine.Forecast(ctx, s, specConfig(engine.ForecastDefaults(), spec), horizon, func(step, total int) {
		out.emit(&schema.PredictSteps{Status: schema.StatusSteps, Message: msgForecasting,
			StepName: fmt.Sprintf("Etape %d sur %d", step, total), Step: step, TotalStep: total})
	})
	if err != nil {
		return fail(err)
	}
	out.emit(&schema.PredictOutput{Status: schema.StatusOutput, Payload: payload(pts, s.Counts)})
	return nil
}
