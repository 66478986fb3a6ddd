package calib

import (
	"fmt"
	"math"
)

// MinCalibrationRows is the fewest calibration rows Choose will calibrate
// on. Below it, halves of under 20 rows make the held-out Brier scores too
// noisy to tell the methods apart, so p_up stays raw.
const MinCalibrationRows = 40

// minRowsPerClass is the fewest up rows and the fewest down rows Choose
// needs: with fewer, temperature and isotonic fits are driven by a handful
// of rows.
const minRowsPerClass = 5

// tieTolerance is how much lower a more flexible method's held-out Brier
// score must be to beat a simpler one; smaller gaps are rounding, not skill.
const tieTolerance = 1e-12

// Choose picks the calibration method for one fold from its calibration part
// (rows in time order) and returns it refitted on all those rows.
//
// Fitting and scoring on the same rows would always favour isotonic, which
// can follow noise. So each method is fitted on the earlier half of the rows
// and scored by its Brier score on the later half, which also respects time
// order. The lowest score wins; ties go to the simpler method (see Methods).
// scores holds each method's held-out Brier score.
//
// When the data is too thin (fewer than MinCalibrationRows rows, or fewer
// than 5 up or 5 down rows) nothing is fitted: c is Raw, scores is nil and
// warning says why, with the counts. Otherwise warning is nil.
//
// It panics when logits and up differ in length.
func Choose(logits []float64, up []bool) (c Calibrator, scores map[Method]float64, warning *string) {
	mustSameLen("Choose", len(logits), len(up))
	n, nUp := len(logits), 0
	for _, u := range up {
		if u {
			nUp++
		}
	}
	if nDown := n - nUp; n < MinCalibrationRows || nUp < minRowsPerClass || nDown < minRowsPerClass {
		msg := fmt.Sprintf("p_up left uncalibrated (raw): the calibration part has %d rows (%d up, %d down), "+
			"and calibrating needs at least %d rows with at least %d of each; use a longer series or fewer folds",
			n, nUp, nDown, MinCalibrationRows, minRowsPerClass)
		return Calibrator{Method: Raw}, nil, &msg
	}

	h := n / 2
	scores = make(map[Method]float64, 4)
	best, bestScore := Raw, math.Inf(1)
	for _, m := range Methods() {
		s := brier(fit(m, logits[:h], up[:h]), logits[h:], up[h:])
		scores[m] = s
		if s < bestScore-tieTolerance {
			best, bestScore = m, s
		}
	}
	return fit(best, logits, up), scores, nil
}

// fit fits method m on the rows.
func fit(m Method, logits []float64, up []bool) Calibrator {
	c := Calibrator{Method: m}
	if m == Temperature || m == TempIsotonic {
		c.T = FitTemperature(logits, up)
	}
	if m == Isotonic || m == TempIsotonic {
		t := 1.0
		if m == TempIsotonic {
			t = c.T
		}
		p, y := make([]float64, len(logits)), make([]float64, len(logits))
		for i, z := range logits {
			p[i], y[i] = Sigmoid(z/t), b2f(up[i])
		}
		c.Iso = FitIsotonic(p, y)
	}
	return c
}

// brier is the mean of (p - up)^2 over the rows.
func brier(c Calibrator, logits []float64, up []bool) float64 {
	var s float64
	for i, z := range logits {
		d := c.Prob(z) - b2f(up[i])
		s += d * d
	}
	return s / float64(len(logits))
}
