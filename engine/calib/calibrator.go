package calib

import (
	"fmt"
	"math"
)

// Method names a calibration of p_up. The strings are what fold reports
// carry as calibration_method.
type Method string

const (
	Raw         Method = "raw"         // sigmoid(logit), no calibration
	Temperature Method = "temperature" // sigmoid(logit / T)
	Isotonic    Method = "isotonic"    // isotonic map of sigmoid(logit)
	// TempIsotonic is an isotonic map fitted on temperature-scaled
	// probabilities sigmoid(logit / T). It differs from Isotonic only between
	// thresholds, where it interpolates in the rescaled space.
	TempIsotonic Method = "temp_isotonic"
)

// Methods returns every method from simplest to most flexible: the order in
// which Choose breaks ties.
func Methods() []Method { return []Method{Raw, Temperature, Isotonic, TempIsotonic} }

// Calibrator maps a raw logit to a calibrated probability.
//
// The zero value is Raw (sigmoid). T is used only by Temperature and
// TempIsotonic and must be > 0 there; Iso is used only by Isotonic and
// TempIsotonic and must be non-nil there.
type Calibrator struct {
	Method Method
	T      float64
	Iso    *IsotonicFit
}

// Prob returns the calibrated probability of an up move for one logit.
// It panics on an unknown Method, which only a programming error produces.
func (c Calibrator) Prob(logit float64) float64 {
	switch c.Method {
	case Raw, "":
		return Sigmoid(logit)
	case Temperature:
		return Sigmoid(logit / c.T)
	case Isotonic:
		return c.Iso.Predict(Sigmoid(logit))
	case TempIsotonic:
		return c.Iso.Predict(Sigmoid(logit / c.T))
	}
	panic(fmt.Sprintf("calib: unknown method %q", c.Method))
}

// Sigmoid returns 1/(1+exp(-x)) without overflow: exp is only ever taken of a
// non-positive number, so large |x| gives 0 or 1 instead of NaN.
func Sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func mustSameLen(what string, a, b int) {
	if a != b {
		panic(fmt.Sprintf("calib: %s: lengths differ (%d and %d)", what, a, b))
	}
}
