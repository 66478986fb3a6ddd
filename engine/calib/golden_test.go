package calib

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/golden.json with /usr/bin/python3 before comparing")

// Tolerances against the reference libraries.
const (
	// FitTemperature takes scipy's own bounded-Brent steps, but the loss
	// differs in its last bits (numpy sums pairwise) and is flat to rounding
	// within ~1e-8 of the optimum, so the searches stop ~1e-8 apart (max
	// seen 6e-8). 1e-6 relative is what the engine needs.
	tolT = 1e-6
	// Isotonic fits are the same arithmetic as sklearn's; allow a few ulps.
	tolIso = 1e-12
	// Conformal quantiles are order statistics: exact.
)

type goldenFile struct {
	Cases []struct {
		Name     string    `json:"name"`
		Logits   []float64 `json:"logits"`
		Up       []bool    `json:"up"`
		T        float64   `json:"T"`
		Isotonic struct {
			X           []float64 `json:"x"`
			Y           []float64 `json:"y"`
			ThresholdsX []float64 `json:"thresholds_x"`
			ThresholdsY []float64 `json:"thresholds_y"`
			Pred        []float64 `json:"pred"`
			Grid        []float64 `json:"grid"`
			PredGrid    []float64 `json:"pred_grid"`
		} `json:"isotonic"`
	} `json:"cases"`
	Conformal []struct {
		N      int       `json:"n"`
		Alpha  float64   `json:"alpha"`
		K      int       `json:"k"`
		Scores []float64 `json:"scores"`
		Q      *float64  `json:"q"` // null when k > n
	} `json:"conformal"`
}

func loadGolden(t *testing.T) goldenFile {
	t.Helper()
	if *update {
		cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "gen_golden.py"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("regenerating golden values: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatalf("reading golden values (regenerate with -update): %v", err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("decoding testdata/golden.json: %v", err)
	}
	if len(g.Cases) == 0 || len(g.Conformal) == 0 {
		t.Fatalf("testdata/golden.json has %d cases and %d conformal cases; want some of each", len(g.Cases), len(g.Conformal))
	}
	return g
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

func TestGoldenTemperature(t *testing.T) {
	var worst float64
	for _, c := range loadGolden(t).Cases {
		if len(c.Logits) != len(c.Up) {
			t.Fatalf("%s: %d logits but %d labels", c.Name, len(c.Logits), len(c.Up))
		}
		got := FitTemperature(c.Logits, c.Up)
		e := relErr(got, c.T)
		worst = math.Max(worst, e)
		if e > tolT {
			t.Errorf("%s: T = %.12g, scipy %.12g (rel. error %.2g > %g)", c.Name, got, c.T, e, tolT)
		}
	}
	t.Logf("max relative error of T vs scipy: %.3g", worst)
}

func TestGoldenIsotonic(t *testing.T) {
	var worst float64
	for _, c := range loadGolden(t).Cases {
		g := c.Isotonic
		if len(g.X) != len(g.Y) || len(g.Pred) != len(g.X) || len(g.PredGrid) != len(g.Grid) ||
			len(g.ThresholdsX) != len(g.ThresholdsY) {
			t.Fatalf("%s: golden isotonic arrays have inconsistent lengths", c.Name)
		}
		f := FitIsotonic(g.X, g.Y)
		if len(f.X) != len(g.ThresholdsX) {
			t.Errorf("%s: %d thresholds, sklearn has %d", c.Name, len(f.X), len(g.ThresholdsX))
			continue
		}
		check := func(what string, i int, got, want float64) {
			e := math.Abs(got - want)
			worst = math.Max(worst, e)
			if e > tolIso {
				t.Errorf("%s: %s[%d] = %.17g, sklearn %.17g", c.Name, what, i, got, want)
			}
		}
		for i := range f.X {
			check("thresholds_x", i, f.X[i], g.ThresholdsX[i])
			check("thresholds_y", i, f.Y[i], g.ThresholdsY[i])
		}
		for i, x := range g.X {
			check("pred", i, f.Predict(x), g.Pred[i])
		}
		for i, x := range g.Grid {
			check("pred_grid", i, f.Predict(x), g.PredGrid[i])
		}
	}
	t.Logf("max absolute error of isotonic vs sklearn: %.3g", worst)
}

func TestGoldenConformalQuantile(t *testing.T) {
	for _, c := range loadGolden(t).Conformal {
		if len(c.Scores) != c.N {
			t.Fatalf("n=%d: %d scores", c.N, len(c.Scores))
		}
		q, ok := ConformalQuantile(c.Scores, c.Alpha)
		switch {
		case c.Q == nil && (ok || !math.IsInf(q, 1)):
			t.Errorf("n=%d alpha=%g (k=%d > n): got %v, %v; want +Inf, false", c.N, c.Alpha, c.K, q, ok)
		case c.Q != nil && (!ok || q != *c.Q):
			t.Errorf("n=%d alpha=%g k=%d: got %v, %v; want %v, true", c.N, c.Alpha, c.K, q, ok, *c.Q)
		}
	}
}
