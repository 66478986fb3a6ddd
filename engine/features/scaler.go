package features

import "math"

// Scaler standardises features and scales targets with statistics of one
// fold's training rows only, so nothing of the validation part leaks in.
type Scaler struct {
	Mean, Std []float64
	// YScale divides the targets. They are not centred: the sign of a change
	// is what p_up predicts, so zero must stay zero.
	YScale float64
}

// FitScaler computes the statistics of x (row-major, nf columns) and y.
func FitScaler(x []float64, nf int, y []float64) Scaler {
	n := len(y)
	s := Scaler{Mean: make([]float64, nf), Std: make([]float64, nf), YScale: 1}
	if n == 0 {
		return s
	}
	for i := 0; i < n; i++ {
		for j := 0; j < nf; j++ {
			s.Mean[j] += x[i*nf+j]
		}
	}
	for j := range s.Mean {
		s.Mean[j] /= float64(n)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < nf; j++ {
			d := x[i*nf+j] - s.Mean[j]
			s.Std[j] += d * d
		}
	}
	for j := range s.Std {
		s.Std[j] = math.Sqrt(s.Std[j] / float64(n))
		if s.Std[j] < 1e-12 { // a constant column (a weekday never seen) stays 0 after centring
			s.Std[j] = 1
		}
	}
	var ss float64
	for _, v := range y {
		ss += v * v
	}
	if rms := math.Sqrt(ss / float64(n)); rms > 1e-12 {
		s.YScale = rms
	}
	return s
}

// X returns x standardised, as float32 for the model.
func (s Scaler) X(x []float64) []float32 {
	nf := len(s.Mean)
	out := make([]float32, len(x))
	for i, v := range x {
		j := i % nf
		out[i] = float32((v - s.Mean[j]) / s.Std[j])
	}
	return out
}

// Y returns y divided by YScale, as float32.
func (s Scaler) Y(y []float64) []float32 {
	out := make([]float32, len(y))
	for i, v := range y {
		out[i] = float32(v / s.YScale)
	}
	return out
}
