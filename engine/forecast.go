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
// to step when early stopping ends training sooner.
type Progress func(step, total int)

// Forecast trains on the whole history of s (its last ForecastCalibration+
// horizon days held out for early stopping and calibration) and forecasts
// the next horizon days with direct multi-horizon outputs.
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

	future := make([]features.Row, horizon)
	for h := range future {
		future[h] = features.Row{T: n - 1, H: h + 1}
	}
	fut := newPart(f, sc, future)
	members := max(cfg.Ensemble, 1)
	var calOuts, futOuts []outputs
	done := 0 // epochs run by the members already trained
	for k := 0; k < members; k++ {
		// Each member that stops early shrinks the announced total.
		total := done + (members-k)*cfg.Epochs
		ft, err := fit(ctx, cfg, sc, train, cal, cfg.Seed*1000003+999+uint64(k), func(epoch int, _ model.Trainer, _ model.EpochStats, _ outputs) error {
			if progress != nil {
				progress(done+epoch+1, total)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		done += ft.epochs
		if progress != nil && ft.epochs < cfg.Epochs && k == members-1 {
			progress(done, done)
		}
		co, buf := predict(ft.net, sc, cal, cfg.Model.BCEWeight, nil)
		fo, _ := predict(ft.net, sc, fut, cfg.Model.BCEWeight, buf)
		err = trainerErr(ft.net)
		ft.net.Close()
		if err != nil {
			return nil, err
		}
		calOuts, futOuts = append(calOuts, co), append(futOuts, fo)
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
