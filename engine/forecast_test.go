package engine

import (
	"context"
	"math"
	"testing"

	"github.com/kairoscope/kairoscope/engine/calib"
	"github.com/kairoscope/kairoscope/engine/dataset"
	"github.com/kairoscope/kairoscope/engine/features"
)

func TestForecastCounts(t *testing.T) {
	s := load(t, "bike.csv")
	cfg := ForecastDefaults()
	cfg.Ensemble, cfg.Epochs = 2, 5
	var steps, totals []int
	pts, err := Forecast(context.Background(), s, cfg, 30, func(step, total int) { steps, totals = append(steps, step), append(totals, total) })
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 30 {
		t.Fatalf("%d points", len(pts))
	}
	// Progress: 2 members × (5 epochs + a refit of 1 to 5), one step at a
	// time, towards a total that never grows and ends reached.
	n := len(steps)
	if n < 12 || n > 20 || totals[0] != 20 || steps[n-1] != totals[n-1] {
		t.Fatalf("steps %v of totals %v", steps, totals)
	}
	for i := 1; i < n; i++ {
		if steps[i] != steps[i-1]+1 || totals[i] > totals[i-1] {
			t.Fatalf("steps %v of totals %v", steps, totals)
		}
	}
	last := s.Dates[s.Len()-1]
	for h, p := range pts {
		if !p.Date.Equal(last.AddDate(0, 0, h+1)) {
			t.Errorf("day %d dated %s", h+1, p.Date)
		}
		for _, v := range []float64{p.Value, p.Low, p.High} {
			if v < 0 || v != math.Trunc(v) {
				t.Errorf("day %d: %v is not a non-negative count", h+1, v)
			}
		}
		if !(p.Low <= p.Value && p.Value <= p.High) || p.PUp < 0 || p.PUp > 1 || p.Sigma <= 0 {
			t.Errorf("day %d: %+v", h+1, p)
		}
		if c := p.Confidence; c != "High" && c != "Medium" && c != "Low" {
			t.Errorf("confidence %q", c)
		}
	}
}

// The forecast must beat what forecasters compare against on the shared
// bike data (R's auto.arima on log1p: sCRPS 1.037, coverage 0.93; the
// weekly seasonal naive: 1.110, 0.78) with a 90% interval that covers
// between 85% and 95% of the days.
func TestBacktestBeatsClassicalMethods(t *testing.T) {
	bt, err := RunBacktest(context.Background(), load(t, "bike.csv"), ForecastDefaults(), 30, 180, 30, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bt.Origins) != 6 || bt.Origins[0] != 731-180 {
		t.Fatalf("origins %v", bt.Origins)
	}
	t.Logf("sCRPS %.3f coverage %.3f; seasonal naive %.3f %.3f", bt.SCRPS, bt.Coverage, bt.NaiveSCRPS, bt.NaiveCoverage)
	if bt.SCRPS >= 1.037 || bt.SCRPS >= bt.NaiveSCRPS {
		t.Errorf("sCRPS %.3f does not beat auto.arima's 1.037 and the seasonal naive's %.3f", bt.SCRPS, bt.NaiveSCRPS)
	}
	if bt.Coverage < 0.85 || bt.Coverage > 0.95 {
		t.Errorf("coverage %.3f outside [0.85, 0.95]", bt.Coverage)
	}
	if math.Abs(bt.NaiveSCRPS-1.110) > 0.01 || math.Abs(bt.NaiveCoverage-0.78) > 0.02 {
		t.Errorf("seasonal naive scored %.3f/%.3f, reference 1.110/0.78: the scoring drifted", bt.NaiveSCRPS, bt.NaiveCoverage)
	}
}

// calRows is a calibration part like a forecast's: origins 0..89, every
// horizon 1..30 whose target is at most day 90, mu 0 and sigma 1, the
// target a small deterministic wobble plus extra(row).
func calRows(extra func(features.Row) float64) (part, outputs) {
	var p part
	var o outputs
	for t := 0; t < 90; t++ {
		for h := 1; h <= 30 && t+h <= 90; h++ {
			r := features.Row{T: t, H: h}
			p.rows = append(p.rows, r)
			p.y = append(p.y, 0.3*math.Sin(float64(7*t+3*h))+extra(r))
			o.mu, o.sigma = append(o.mu, 0), append(o.sigma, 1)
		}
	}
	return p, o
}

// After a level shift inside the calibration window the straddling rows
// (origin before, target after) would set the long horizons' quantile; the
// newest days set it instead, once the shift is about 40 days old for a
// sharp one (the recency weights of 7 days' half-life sum to about 10
// origins, and the new point weighs 1 more). A shock among the newest days leaves the
// equal-weight quantile in charge. Without either, the quantile is the
// plain one of horizons h±2.
func TestHorizonQuantilesFollowTheNewestLevel(t *testing.T) {
	calm, co := calRows(func(features.Row) float64 { return 0 })
	base := horizonQuantiles(calm, co, 30, 0.1)
	for h, q := range base {
		if q > 0.3 || q <= 0 {
			t.Fatalf("calm: q[%d] = %v, want the wobble's (≤ 0.3)", h+1, q)
		}
	}
	shift, so := calRows(func(r features.Row) float64 {
		if r.T < 45 && r.T+r.H >= 45 { // a sharp fall 45 days before the newest origin
			return -5
		}
		return 0
	})
	var straddle []float64
	for i, r := range shift.rows {
		if r.H >= 28 {
			straddle = append(straddle, math.Abs(shift.y[i]))
		}
	}
	plain, _ := calib.ConformalQuantile(straddle, 0.1)
	if got := horizonQuantiles(shift, so, 30, 0.1); got[29] > 0.3 || plain < 4 {
		t.Errorf("level shift: q[30] = %v (the equal-weight quantile %v), want the newest days' (≤ 0.3)", got[29], plain)
	}
	shock, ko := calRows(func(r features.Row) float64 {
		if r.T >= 86 {
			return 5
		}
		return 0
	})
	got := horizonQuantiles(shock, ko, 30, 0.1)
	for h := range got {
		if got[h] > 0.3 {
			t.Errorf("recent shock: q[%d] = %v, want the equal-weight quantile (≤ 0.3)", h+1, got[h])
		}
	}
}

// On the generated footfall series, whose level falls by 65% within three
// weeks 200 days before its end and stays there, the forecast beats the
// weekly seasonal naive (README, Forecast quality) with coverage inside
// 0.85–0.95.
func TestBacktestFollowsALevelShift(t *testing.T) {
	s, err := dataset.Load("../benchmarks/data/footfall_shift.csv", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bt, err := RunBacktest(context.Background(), s, ForecastDefaults(), 30, 180, 30, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sCRPS %.3f coverage %.3f; seasonal naive %.3f %.3f", bt.SCRPS, bt.Coverage, bt.NaiveSCRPS, bt.NaiveCoverage)
	if bt.SCRPS >= bt.NaiveSCRPS {
		t.Errorf("sCRPS %.3f does not beat the seasonal naive's %.3f", bt.SCRPS, bt.NaiveSCRPS)
	}
	if bt.Coverage < 0.85 || bt.Coverage > 0.95 {
		t.Errorf("coverage %.3f outside [0.85, 0.95]", bt.Coverage)
	}
}
