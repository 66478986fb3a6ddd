package features

import (
	"fmt"
	"math"

	"github.com/kairoscope/kairoscope/engine/dataset"
)

// Transform maps values to the space the model works in. Changes in that
// space are the model's targets.
type Transform int

const (
	Identity Transform = iota // values that may be zero or negative (temperatures)
	Log                       // positive prices: log returns
	Log1p                     // counts: log1p keeps zero finite
)

func (t Transform) String() string {
	switch t {
	case Log:
		return "log"
	case Log1p:
		return "log1p"
	}
	return "identity"
}

// ParseTransform reads a --transform value; "auto" chooses from the data.
func ParseTransform(s string) (Transform, bool, error) {
	switch s {
	case "", "auto":
		return Identity, true, nil
	case "identity":
		return Identity, false, nil
	case "log":
		return Log, false, nil
	case "log1p":
		return Log1p, false, nil
	}
	return 0, false, fmt.Errorf("unknown transform %q (want auto, identity, log or log1p)", s)
}

// ChooseTransform picks log1p for counts, log for positive values and the
// identity otherwise.
func ChooseTransform(s *dataset.Series) Transform {
	if s.Counts {
		return Log1p
	}
	for _, v := range s.Values {
		if v <= 0 {
			return Identity
		}
	}
	return Log
}

// Apply maps one value into model space.
func (t Transform) Apply(v float64) float64 {
	switch t {
	case Log:
		return math.Log(v)
	case Log1p:
		return math.Log1p(v)
	}
	return v
}

// Invert maps a model-space value back to the series' unit.
func (t Transform) Invert(z float64) float64 {
	switch t {
	case Log:
		return math.Exp(z)
	case Log1p:
		return math.Expm1(z)
	}
	return z
}

// Check reports the first value the transform cannot take.
func (t Transform) Check(s *dataset.Series) error {
	for i, v := range s.Values {
		if (t == Log && v <= 0) || (t == Log1p && v <= -1) {
			return fmt.Errorf("%s: value %v on %s cannot be %s-transformed", s.Name, v, s.Dates[i].Format("2006-01-02"), t)
		}
	}
	return nil
}
