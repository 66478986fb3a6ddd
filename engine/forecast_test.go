package engine

import (
	"context"
	"math"
	"testing"
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
