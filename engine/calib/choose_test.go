package calib

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// draw returns n rows whose true logit is z ~ N(0, 1.5²) and whose model
// logit is scale·z: scale 1 is calibrated, scale 3 overconfident.
func draw(rng *rand.Rand, n int, scale float64) (logits []float64, up []bool) {
	logits, up = make([]float64, n), make([]bool, n)
	for i := range logits {
		z := 1.5 * rng.NormFloat64()
		logits[i], up[i] = scale*z, rng.Float64() < Sigmoid(z)
	}
	return logits, up
}

// Selection on 200 held-out rows is noisy, so the Choose properties are
// checked over 20 seeds, with the pass rates measured on 200 seeds:
// overconfident logits chose a non-raw method and beat raw out of sample in
// 199/200; calibrated logits chose raw or temperature in 182/200 (isotonic
// otherwise, when it happened to score lower on the later half).
const chooseSeeds = 20

func TestChooseOverconfident(t *testing.T) {
	for seed := range uint64(chooseSeeds) {
		rng := rand.New(rand.NewPCG(seed, 1))
		logits, up := draw(rng, 400, 3)
		c, scores, warn := Choose(logits, up)
		if warn != nil {
			t.Fatalf("seed %d: unexpected warning: %s", seed, *warn)
		}
		if c.Method == Raw {
			t.Errorf("seed %d: chose raw for logits 3× too large; held-out Brier scores %v", seed, scores)
			continue
		}
		if c.Method == Temperature && (c.T < 2 || c.T > 4.5) {
			t.Errorf("seed %d: T = %.3g, want about 3", seed, c.T)
		}
		// Fresh rows from the same process: calibration must help out of sample.
		testLogits, testUp := draw(rng, 4000, 3)
		raw, cal := brier(Calibrator{}, testLogits, testUp), brier(c, testLogits, testUp)
		if cal >= raw {
			t.Errorf("seed %d: %s has held-out Brier %.4f, raw %.4f: calibration did not help", seed, c.Method, cal, raw)
		}
	}
}

func TestChooseCalibrated(t *testing.T) {
	simple := 0
	for seed := range uint64(chooseSeeds) {
		rng := rand.New(rand.NewPCG(seed, 2))
		logits, up := draw(rng, 400, 1)
		c, scores, warn := Choose(logits, up)
		if warn != nil {
			t.Fatalf("seed %d: unexpected warning: %s", seed, *warn)
		}
		if len(scores) != len(Methods()) {
			t.Errorf("seed %d: scores has %d methods, want %d: %v", seed, len(scores), len(Methods()), scores)
		}
		if c.Method == Raw || c.Method == Temperature {
			simple++
		}
		// The standard error of log T is about 0.1 at 400 rows.
		if T := FitTemperature(logits, up); math.Abs(math.Log(T)) > 0.35 {
			t.Errorf("seed %d: T = %.3g on calibrated logits, want about 1", seed, T)
		}
	}
	if simple < chooseSeeds*8/10 {
		t.Errorf("raw or temperature chosen for %d of %d calibrated samples, want at least 80%%", simple, chooseSeeds)
	}
}

func TestChooseTieGoesToSimplest(t *testing.T) {
	// Constant logits and alternating labels: every method predicts 0.5 on
	// the later half, so all four scores are equal.
	logits, up := make([]float64, 40), make([]bool, 40)
	for i := range up {
		up[i] = i%2 == 0
	}
	c, scores, _ := Choose(logits, up)
	if c.Method != Raw {
		t.Errorf("chose %s on a four-way tie %v; want raw", c.Method, scores)
	}
}

func TestChooseThinData(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	few, fewUp := draw(rng, MinCalibrationRows-1, 3)
	oneSided, oneSidedUp := draw(rng, 200, 3)
	nUp := 0
	for i := range oneSidedUp {
		oneSidedUp[i] = i%50 == 0 // 4 up rows, 196 down
		if oneSidedUp[i] {
			nUp++
		}
	}
	for _, tc := range []struct {
		name   string
		logits []float64
		up     []bool
		want   string // must appear in the warning
	}{
		{"few rows", few, fewUp, "has 39 rows"},
		{"few up rows", oneSided, oneSidedUp, "(4 up, 196 down)"},
	} {
		c, scores, warn := Choose(tc.logits, tc.up)
		if c.Method != Raw || scores != nil {
			t.Errorf("%s: got method %s, scores %v; want raw and no scores", tc.name, c.Method, scores)
		}
		if warn == nil || !strings.Contains(*warn, tc.want) {
			t.Errorf("%s: warning %v, want one containing %q", tc.name, warn, tc.want)
		}
	}
}
