package engine

import (
	"math"

	"github.com/kairoscope/kairoscope/engine/features"
	"github.com/kairoscope/kairoscope/engine/model"
	"github.com/kairoscope/kairoscope/engine/ops"
)

// part is a set of rows ready for the model: scaled inputs and targets, and
// the targets in change space.
type part struct {
	rows []features.Row
	x    []float32 // scaled features [len(rows), nf]
	ys   []float32 // scaled targets
	y    []float64 // targets in change space
}

func newPart(f *features.Frame, sc features.Scaler, rows []features.Row) part {
	x, y := f.Matrix(rows)
	return part{rows: rows, x: sc.X(x), ys: sc.Y(y), y: y}
}

// outputs are a model's predictions in change space.
type outputs struct {
	mu, sigma, logit []float64
	loss             float64 // mean NLL + w·BCE in the model's scaled space
}

// predict runs net on p and maps its outputs back to change space. *buf
// holds the raw outputs; it is grown when short and kept for the next call.
func predict(net model.Trainer, sc features.Scaler, p part, bceW float64, buf *[]float32) (outputs, error) {
	n := len(p.rows)
	if cap(*buf) < 3*n {
		*buf = make([]float32, 3*n)
	}
	out := (*buf)[:3*n]
	if err := net.Forward(out, p.x, n); err != nil {
		return outputs{}, err
	}
	o := outputs{mu: make([]float64, n), sigma: make([]float64, n), logit: make([]float64, n)}
	for i := 0; i < n; i++ {
		mu, s, lg := float64(out[3*i]), float64(out[3*i+1]), float64(out[3*i+2])
		o.mu[i] = mu * sc.YScale
		o.sigma[i] = (ops.Softplus(s) + ops.SigmaEps) * sc.YScale
		o.logit[i] = lg
		if p.ys != nil && !math.IsNaN(float64(p.ys[i])) {
			nll, bce := ops.RowLoss(mu, s, lg, float64(p.ys[i]))
			o.loss += nll + bceW*bce
		}
	}
	if n > 0 {
		o.loss /= float64(n)
	}
	return o, nil
}

func ups(y []float64) []bool {
	up := make([]bool, len(y))
	for i, v := range y {
		up[i] = v > 0
	}
	return up
}

// onlyHorizon keeps the indices of rows at horizon h.
func onlyHorizon(rows []features.Row, h int) []int {
	var idx []int
	for i, r := range rows {
		if r.H == h {
			idx = append(idx, i)
		}
	}
	return idx
}

func pick(v []float64, idx []int) []float64 {
	out := make([]float64, len(idx))
	for i, j := range idx {
		out[i] = v[j]
	}
	return out
}
