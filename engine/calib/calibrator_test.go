package calib

import (
	"math"
	"testing"
)

func TestCalibratorZeroValueIsSigmoid(t *testing.T) {
	for _, z := range []float64{-800, -3, 0, 0.7, 800} {
		if got, want := (Calibrator{}).Prob(z), Sigmoid(z); got != want {
			t.Errorf("Prob(%g) = %g, want %g", z, got, want)
		}
	}
}

func TestSigmoidExtremes(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{{-1000, 0}, {0, 0.5}, {1000, 1}, {math.Inf(-1), 0}, {math.Inf(1), 1}} {
		if got := Sigmoid(tc.x); got != tc.want {
			t.Errorf("Sigmoid(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if d := Sigmoid(2) + Sigmoid(-2) - 1; math.Abs(d) > 1e-15 {
		t.Errorf("Sigmoid(2)+Sigmoid(-2)-1 = %g", d)
	}
}

func TestProbUnknownMethodPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Prob with an unknown method did not panic")
		}
	}()
	Calibrator{Method: "platt"}.Prob(0)
}
