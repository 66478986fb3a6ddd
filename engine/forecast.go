package engine

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/kairoscope/kairoscope/engine/calib"
	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/engine/model"
)

// ForecastCalibration is how many origins before the end of the history
// (beyond the horizon) are held out to stop training early and to fit the
// conformal quantile and p_up's calibration. Every horizon gets at least
// this many calibration rows.
const ForecastCalibration = 60

// Point is one forecast day, in the series' own unit.
type Point struct {
	Date       time.Time
	Value      float64 // median forecast
	Low, High  float64 // conformal interval at 1 − alpha
	PUp        float64 // calibrated P(value on Date > last observed value)
	Mu, Sigma  float64 // predicted change from the last value, and its spread, in model space
	Confidence string  // High, Medium or Low: see ConfidenceScore
}

// Progress reports training progress: step of total epochs. total shrinks
// as early stopping ends training sooner, and ends equal to step.
type Progress func(step, total int)

// Forecast forecasts the next horizon days of s with direct multi-horizon
// outputs. Each ensemble member trains on the history without its last
// ForecastCalibration+horizon days, which stop training early and fit the
// calibration of p_up and the conformal intervals; with cfg.ForecastRefit
// it then trains again on the whole history for the epochs early stopping
// chose, and forecasts with that net and the calibration fitted before.
// On the bike backtest (README) refitting scored sCRPS 0.940 on average
// over seeds 1 to 6, against 0.995 without.
func Forecast(ctx context.Context, s *dataset.Series, cfg Config, horizon int, progress Progress) ([]Point, error) {
	if horizon < 1 {
		return nil, fmt.Errorf("horizon must be at least 1, got %d", horizon)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	cfg.Horizons = horizon
	fc, err := cfg.FeatureConfig(s)
	if err != nil {
		return nil, err
	}
	f, err := features.NewFrame(s, fc)
	if err != nil {
		return nil, err
	}
	n := f.N()
	c0 := n - 1 - horizon - ForecastCalibration // first calibration origin
	if c0-f.First < max(cfg.MinSamples/2, 2*ForecastCalibration) {
		return nil, fmt.Errorf("%s: %w: %d rows are too few to train and calibrate a %d-day forecast (need %d)",
			s.Name, ErrTooFewSamples, n, horizon, f.First+1+horizon+ForecastCalibration+max(cfg.MinSamples/2, 2*ForecastCalibration))
	}
	trainRows := f.Rows(f.First, c0, c0, f.AllHorizons())
	x, y := f.Matrix(trainRows)
	sc := features.FitScaler(x, f.NumFeatures(), y)
	train := part{rows: trainRows, x: sc.X(x), ys: sc.Y(y), y: y}
	cal := newPart(f, sc, f.Rows(c0, n-1, n-1, f.AllHorizons()))
	var all part // the whole history, to refit on
	if cfg.ForecastRefit {
		rows := f.Rows(f.First, n-1, n-1, f.AllHorizons())
		ax, ay := f.Matrix(rows)
		all = part{rows: rows, x: sc.X(ax), ys: sc.Y(ay), y: ay}
	}

	future := make([]features.Row, horizon)
	for h := range future {
		future[h] = features.Row{T: n - 1, H: h + 1}
	}
	fut := newPart(f, sc, future)
	members := max(cfg.Ensemble, 1)
	perMember := cfg.Epochs // the most epochs a member may take
	if cfg.ForecastRefit {
		perMember *= 2
	}
	var calOuts, futOuts []outputs
	var buf []float32                   // predict's
	done, total := 0, members*perMember // epochs run, and announced
	onEpoch := func(epoch int, _ model.Trainer, _ model.EpochStats, _ outputs) error {
		if progress != nil {
			progress(done+epoch+1, total)
		}
		return nil
	}
	for k := 0; k < members; k++ {
		seed := cfg.Seed*1000003 + 999 + uint64(k)
		ft, err := fit(ctx, cfg, sc, train, cal, seed, onEpoch)
		if err != nil {
			return nil, err
		}
		done += ft.epochs
		co, err := predict(ft.net, sc, cal, cfg.Model.BCEWeight, &buf)
		var fo outputs
		if err == nil {
			fo, err = predict(ft.net, sc, fut, cfg.Model.BCEWeight, &buf)
		}
		ft.net.Close()
		if err != nil {
			return nil, err
		}
		// What is left: this member's refit, known now, and the other
		// members' most. Early stopping only ever shrinks it.
		refit := 0
		if cfg.ForecastRefit {
			refit = max(ft.bestEpoch+1, 1)
		}
		total = done + refit + (members-k-1)*perMember
		if refit > 0 {
			rc := cfg
			rc.Epochs, rc.Patience = refit, 0
			// No held-out part: the net keeps its last epoch's parameters.
			rf, err := fit(ctx, rc, sc, all, part{}, seed, onEpoch)
			if err != nil {
				return nil, err
			}
			done += rf.epochs
			fo, err = predict(rf.net, sc, fut, cfg.Model.BCEWeight, &buf)
			rf.net.Close()
			if err != nil {
				return nil, err
			}
		}
		calOuts, futOuts = append(calOuts, co), append(futOuts, fo)
	}
	if progress != nil && done < total {
		progress(done, done)
	}
	co, fo := mixture(calOuts), mixture(futOuts)
	cb, _, _ := calib.Choose(co.logit, ups(cal.y))
	q := horizonQuantiles(cal, co, horizon, cfg.Alpha)

	last := f.Z[n-1]
	pts := make([]Point, horizon)
	for h := range pts {
		mu, sg := fo.mu[h], fo.sigma[h]
		p := Point{Date: f.Dates[n+h], Mu: mu, Sigma: sg, PUp: cb.Prob(fo.logit[h]),
			Value: fc.Transform.Invert(last + mu),
			Low:   fc.Transform.Invert(last + mu - q[h]*sg), High: fc.Transform.Invert(last + mu + q[h]*sg)}
		if s.Counts { // affluence: non-negative whole counts, the interval widened outward
			p.Value = math.Max(0, math.Round(p.Value))
			p.Low, p.High = math.Max(0, math.Floor(p.Low)), math.Max(0, math.Ceil(p.High))
		}
		p.Confidence = ConfidenceScore(p)
		pts[h] = p
	}
	return pts, nil
}

// mixture combines ensemble members as an equal-weight mixture of their
// Gaussians: the mean of the means, the variance of the mixture, and the
// logit of the mean probability.
func mixture(outs []outputs) outputs {
	if len(outs) == 1 {
		return outs[0]
	}
	n, k := len(outs[0].mu), float64(len(outs))
	m := outputs{mu: make([]float64, n), sigma: make([]float64, n), logit: make([]float64, n)}
	for i := 0; i < n; i++ {
		var mu, m2, p float64
		for _, o := range outs {
			mu += o.mu[i] / k
			m2 += (o.sigma[i]*o.sigma[i] + o.mu[i]*o.mu[i]) / k
			p += calib.Sigmoid(o.logit[i]) / k
		}
		m.mu[i], m.sigma[i] = mu, math.Sqrt(math.Max(m2-mu*mu, 0))
		m.logit[i] = math.Log(p) - math.Log1p(-p)
	}
	return m
}

// horizonQuantiles gives each horizon its conformal quantile of the
// normalised residuals, pooled over horizons h−2..h+2: one horizon alone has
// about ForecastCalibration rows, too few for a stable 90% quantile, and
// neighbouring horizons err alike.
func horizonQuantiles(cal part, o outputs, horizon int, alpha float64) []float64 {
	q := make([]float64, horizon)
	for h := 1; h <= horizon; h++ {
		var scores []float64
		for i, r := range cal.rows {
			if r.H >= h-2 && r.H <= h+2 {
				scores = append(scores, math.Abs(cal.y[i]-o.mu[i])/o.sigma[i])
			}
		}
		q[h-1], _ = calib.ConformalQuantile(scores, alpha)
	}
	return q
}

// ConfidenceScore grades a forecast day by the half-width of its interval
// relative to the forecast: High up to 25%, Medium up to 50%, Low beyond (or
// when the forecast is zero).
func ConfidenceScore(p Point) string {
	if p.Value == 0 {
		return "Low"
	}
	switch r := (p.High - p.Low) / (2 * math.Abs(p.Value)); {
	case r <= 0.25:
		return "High"
	case r <= 0.5:
		return "Medium"
	}
	return "Low"
}
