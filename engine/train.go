package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/kairoscope/kairoscope/engine/calib"
	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/engine/report"
	"github.com/kairoscope/kairoscope/schema"
)

// Emit receives every message of the training schema, in order, on the
// training goroutine. It must return quickly: renderers that may block (a
// network, a terminal) buffer on their side.
type Emit func(msg any)

// ErrTooFewSamples is returned when a series has fewer modelling samples
// than Config.MinSamples.
var ErrTooFewSamples = errors.New("too few samples")

// Train runs walk-forward cross-validation of the model on s, writes the
// reports and returns the summary. Every message goes to emit; a failure is
// also emitted as training_error before it is returned.
func Train(ctx context.Context, s *dataset.Series, cfg Config, emit Emit) (*Summary, error) {
	if emit == nil {
		emit = func(any) {}
	}
	j := &job{cfg: cfg, series: s, emit: emit, start: time.Now()}
	sum, err := j.run(ctx)
	if err != nil {
		emit(&schema.TrainingError{Type: schema.TypeTrainingError, Error: err.Error()})
		return nil, err
	}
	return sum, nil
}

type job struct {
	cfg    Config
	series *dataset.Series
	frame  *features.Frame
	emit   Emit
	start  time.Time
	stamp  string
	buf    []float32 // forward-pass scratch
}

func (j *job) run(ctx context.Context) (*Summary, error) {
	cfg, s := j.cfg, j.series
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := report.Probe(cfg.Reports); err != nil {
		return nil, err
	}
	fc, err := cfg.FeatureConfig(s)
	if err != nil {
		return nil, err
	}
	if j.frame, err = features.NewFrame(s, fc); err != nil {
		return nil, err
	}
	f := j.frame
	first, last := f.First, f.N()-2 // the last origin with a one-step target
	size := last - first + 1
	if size < cfg.MinSamples {
		return nil, fmt.Errorf("%s: %w: %d rows give %d samples after the %d-day lookback, at least %d are needed (min_samples)",
			s.Name, ErrTooFewSamples, s.Len(), max(size, 0), first, cfg.MinSamples)
	}
	j.emit(&schema.DatasetReady{Type: schema.TypeDatasetReady, Size: size, MinSamples: cfg.MinSamples, Dataset: s.Name, Rows: s.Len()})
	folds, err := features.WalkForward(first, last, cfg.Folds, cfg.CalibFrac)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	j.emit(&schema.TrainingStart{Type: schema.TypeTrainingStart, UseCV: cfg.Folds > 1, TotalFolds: cfg.Folds,
		TotalEpochs: cfg.Epochs, Device: cfg.Device, FallbackReason: cfg.FallbackReason,
		Dataset: s.Name, DatasetHash: cfg.DatasetHash, DatasetRows: s.Len()})
	j.stamp = j.start.Format("20060102_150405")
	sum := newSummary(s, fc, cfg, size)
	for _, fo := range folds {
		fs, err := j.fold(ctx, fo)
		if err != nil {
			return nil, fmt.Errorf("%w (fold %d)", err, fo.ID) // the cause first: a client reads "CUDA out of memory: ..."
		}
		sum.Folds = append(sum.Folds, *fs)
	}
	sum.finish()
	path := filepath.Join(cfg.Reports, "summary.json")
	if err := report.WriteJSON(path, sum); err != nil {
		return nil, err
	}
	j.emit(&schema.TrainingComplete{Type: schema.TypeTrainingComplete, FoldsCompleted: len(sum.Folds), SummaryPath: path})
	return sum, nil
}

func (j *job) elapsed() schema.Float { return schema.Float(time.Since(j.start).Seconds()) }

// batchProgress returns ctx with an EpochTrace that emits batch_progress
// for fold's epoch *epoch: first once an epoch has trained for
// cfg.BatchProgressEvery past its first step, then at most once per that
// interval, never for its last step (epoch_metrics follows). Epochs shorter than the interval,
// the usual case on the CPU, emit none.
func (j *job) batchProgress(ctx context.Context, fold int, epoch *int) context.Context {
	every := j.cfg.BatchProgressEvery
	if every <= 0 {
		return ctx
	}
	var last time.Time
	return model.WithEpochTrace(ctx, &model.EpochTrace{StepDone: func(done, total int) {
		now := time.Now()
		if done == 1 {
			last = now
		}
		if done == total || now.Sub(last) < every {
			return
		}
		last = now
		j.emit(&schema.BatchProgress{Type: schema.TypeBatchProgress, FoldID: fold, Epoch: *epoch, Batch: done, TotalBatches: total})
	}})
}

// fold trains, calibrates and scores one fold. When the device runs out of
// memory it starts the fold again with half the batch, up to
// cfg.OOMRetries times, saying so in an oom_retry notification; later
// folds keep the smaller batch.
func (j *job) fold(ctx context.Context, fo features.Fold) (*FoldSummary, error) {
	for retry := 1; ; retry++ {
		fs, err := j.trainFold(ctx, fo)
		b := j.cfg.Model.Batch
		if err == nil || !errors.Is(err, model.ErrOutOfMemory) || retry > j.cfg.OOMRetries || b < 2 {
			return fs, err
		}
		fold := fo.ID
		j.emit(&schema.Notification{Type: schema.TypeNotification, Level: schema.LevelWarning, Kind: schema.KindOOMRetry, FoldID: &fold,
			Message: fmt.Sprintf("%v; fold %d starts again with batch size %d instead of %d (retry %d of %d)", err, fold, b/2, b, retry, j.cfg.OOMRetries)})
		j.cfg.Model.Batch = b / 2
	}
}

// trainFold is one attempt at fold.
func (j *job) trainFold(ctx context.Context, fo features.Fold) (*FoldSummary, error) {
	cfg, f := j.cfg, j.frame
	trainRows := f.TrainRows(fo)
	x, y := f.Matrix(trainRows)
	sc := features.FitScaler(x, f.NumFeatures(), y)
	train := part{rows: trainRows, x: sc.X(x), ys: sc.Y(y), y: y}
	cal := newPart(f, sc, f.CalibRows(fo))
	calOne := onlyHorizon(cal.rows, 1) // calibration and conformal use one-step rows, like the scored ones
	scored := newPart(f, sc, f.ScoreRows(fo))
	if len(train.rows) < cfg.Model.Batch/4 || len(calOne) < 10 || len(scored.rows) < 10 {
		return nil, fmt.Errorf("too little data: %d training, %d calibration and %d scored rows (use fewer folds)",
			len(train.rows), len(calOne), len(scored.rows))
	}

	seed := cfg.Seed*1000003 + uint64(fo.ID)
	var trainStats []model.EpochStats
	running := 0 // the epoch being trained
	ctx = j.batchProgress(ctx, fo.ID, &running)
	ft, err := fit(ctx, cfg, sc, train, cal, seed, func(epoch int, net model.Trainer, st model.EpochStats, co outputs) error {
		running = epoch + 1
		trainStats = append(trainStats, st)
		so, err := predict(net, sc, scored, cfg.Model.BCEWeight, &j.buf)
		if err != nil {
			return err
		}
		calScores := calib.Scores(pick(cal.y, calOne), pick(co.mu, calOne), pick(co.sigma, calOne))
		q, _ := calib.ConformalQuantile(calScores, cfg.Alpha)
		val := scoredRows(scored, so, calib.Calibrator{}, q)
		m := ValMetrics(val, cfg.Model.BCEWeight)
		setTrain(&m, st, sc, cfg.Model.BCEWeight)
		j.emit(&schema.EpochMetrics{Type: schema.TypeEpochMetrics, FoldID: fo.ID, Epoch: epoch, Metrics: m, ElapsedSeconds: j.elapsed()})
		if cfg.PredictionDeltas {
			for _, d := range j.deltas(fo.ID, epoch, scored, so, val, calScores) {
				j.emit(d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer ft.net.Close()
	fs, err := j.finishFold(fo, ft, sc, cal, calOne, scored)
	if err == nil && ft.bestEpoch >= 0 {
		setTrain(&fs.Metrics, trainStats[ft.bestEpoch], sc, cfg.Model.BCEWeight)
	}
	return fs, err
}

// setTrain fills the train_* metrics from an epoch's numbers, the NLL taken
// back from the scaled target space to the change space.
func setTrain(m *schema.Metrics, st model.EpochStats, sc features.Scaler, bceW float64) {
	m.TrainNLL = schema.Float(st.NLL + math.Log(sc.YScale))
	m.TrainBCE = schema.Float(st.BCE)
	m.TrainBrier = schema.Float(st.Brier)
	m.TrainLoss = m.TrainNLL + schema.Float(bceW)*m.TrainBCE
}

// finishFold calibrates p_up and the intervals on the calibration part,
// scores the scored part, writes the predictions CSV and emits fold_complete.
func (j *job) finishFold(fo features.Fold, ft *fitted, sc features.Scaler, cal part, calOne []int, scored part) (*FoldSummary, error) {
	cfg, net := j.cfg, ft.net
	co, err := predict(net, sc, cal, cfg.Model.BCEWeight, &j.buf)
	if err != nil {
		return nil, err
	}
	so, err := predict(net, sc, scored, cfg.Model.BCEWeight, &j.buf)
	if err != nil {
		return nil, err
	}
	cy, cmu, csig, clogit := pick(cal.y, calOne), pick(co.mu, calOne), pick(co.sigma, calOne), pick(co.logit, calOne)
	cb, _, calWarn := calib.Choose(clogit, ups(cy))
	calScores := calib.Scores(cy, cmu, csig)
	q, _ := calib.ConformalQuantile(calScores, cfg.Alpha)

	var rows []report.Prediction
	add := func(p part, o outputs, idx []int, split string, lo, hi []float64) {
		for k, i := range idx {
			r := p.rows[i]
			z := (p.y[i] - o.mu[i]) / o.sigma[i]
			rows = append(rows, report.Prediction{
				Timestamp: j.frame.Dates[r.T+r.H], Horizon: r.H, YTrue: p.y[i], Mu: o.mu[i], Sigma: o.sigma[i],
				PUpRaw: calib.Sigmoid(o.logit[i]), PUpCal: cb.Prob(o.logit[i]), ConfLow: lo[k], ConfHigh: hi[k],
				ConformalP: calib.ConformalP(math.Abs(z), calScores), PITZ: z, Split: split,
			})
		}
	}
	clo, chi := interval(cmu, csig, q)
	add(cal, co, calOne, report.SplitCalib, clo, chi)
	val := scoredRows(scored, so, cb, q)
	add(scored, so, seq(len(scored.rows)), report.SplitScore, val.Low, val.High)

	path := filepath.Join(cfg.Reports, "predictions", report.PredictionsName(fo.ID, j.start))
	if err := report.WritePredictions(path, rows); err != nil {
		return nil, err
	}
	m := ValMetrics(val, cfg.Model.BCEWeight)
	covWarn := calib.CoverageWarning(float64(m.ConformalCoverage), len(val.Y), cfg.Alpha)
	if cfg.PredictionDeltas {
		epoch := ft.bestEpoch // the epoch whose parameters the net holds
		if epoch < 0 {
			epoch = ft.epochs - 1
		}
		for _, d := range j.deltas(fo.ID, epoch, scored, so, val, calScores) {
			d.Final = true
			j.emit(d)
		}
	}
	j.emit(&schema.FoldComplete{Type: schema.TypeFoldComplete, FoldID: fo.ID, PredictionsPath: path,
		CalibrationMethod: string(cb.Method), CalibrationWarning: calWarn, CoverageWarning: covWarn})
	f := j.frame
	return &FoldSummary{
		FoldID: fo.ID, Metrics: m,
		TrainFrom: day(f.Dates[f.First]), ValFrom: day(f.Dates[fo.ValStart]), ScoreFrom: day(f.Dates[fo.ScoreStart]), ValTo: day(f.Dates[fo.End]),
		TrainRows: len(f.TrainRows(fo)), CalibRows: len(calOne), ScoredRows: len(scored.rows),
		EpochsRun: ft.epochs, BatchSize: cfg.Model.Batch, BestEpoch: ft.bestEpoch, YScale: sc.YScale,
		CalibrationMethod: string(cb.Method), Temperature: cb.T, ConformalQuantile: schema.Float(q),
		CalibrationWarning: calWarn, CoverageWarning: covWarn, PredictionsFile: filepath.Base(path),
	}, nil
}

// scoredRows assembles the scored rows with probabilities from cb and
// intervals mu ± q·sigma.
func scoredRows(p part, o outputs, cb calib.Calibrator, q float64) Scored {
	pr := make([]float64, len(o.logit))
	for i, l := range o.logit {
		pr[i] = cb.Prob(l)
	}
	lo, hi := interval(o.mu, o.sigma, q)
	return Scored{Y: p.y, Mu: o.mu, Sigma: o.sigma, P: pr, Low: lo, High: hi}
}

func (j *job) deltas(fold, epoch int, p part, o outputs, s Scored, calScores []float64) []*schema.PredictionDelta {
	rows := make([]schema.Prediction, len(p.rows))
	for i, r := range p.rows {
		z := (s.Y[i] - s.Mu[i]) / s.Sigma[i]
		y := schema.Float(s.Y[i])
		rows[i] = schema.Prediction{
			Timestamp: j.frame.Dates[r.T+r.H].Format(time.RFC3339), YTrue: &y, Mu: schema.Float(s.Mu[i]), Sigma: schema.Float(s.Sigma[i]),
			PUpRaw: schema.Float(calib.Sigmoid(o.logit[i])), PUpCal: schema.Float(s.P[i]), ConformalP: schema.Float(calib.ConformalP(math.Abs(z), calScores)), PITZ: schema.Float(z),
		}
	}
	parts := max(1, (len(rows)+schema.MaxDeltaRows-1)/schema.MaxDeltaRows)
	ds := make([]*schema.PredictionDelta, parts)
	for k := range ds {
		ds[k] = &schema.PredictionDelta{Type: schema.TypePredictionDelta, FoldID: fold, Epoch: epoch, Part: k + 1, Parts: parts,
			Predictions: rows[k*schema.MaxDeltaRows : min(len(rows), (k+1)*schema.MaxDeltaRows)]}
	}
	return ds
}
