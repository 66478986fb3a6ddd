package engine

import (
	"math"

	"github.com/kairoscope/kairoscope/engine/metrics"
	"github.com/kairoscope/kairoscope/schema"
)

// Scored is what the validation metrics are computed from: the scored rows
// in change space, their probability of an up move and their interval.
type Scored struct {
	Y, Mu, Sigma, P, Low, High []float64
}

// ECEBins is the number of equal-width bins of the ECE.
const ECEBins = 10

// ValMetrics fills the val_* and calibration-diagnostic fields of the
// schema's metrics from s, as DESIGN.md defines them. It is the one place
// they are computed, for epochs, for summary.json and for the recompute
// test.
func ValMetrics(s Scored, bceW float64) schema.Metrics {
	up := ups(s.Y)
	z := make([]float64, len(s.Y))
	for i := range z {
		z[i] = (s.Y[i] - s.Mu[i]) / s.Sigma[i]
	}
	nll, bce := metrics.GaussianNLL(s.Y, s.Mu, s.Sigma), metrics.BCE(s.P, up)
	a, b, fp := metrics.MincerZarnowitz(s.Y, s.Mu)
	return schema.Metrics{
		ValLoss:           schema.Float(nll + bceW*bce),
		ValNLL:            schema.Float(nll),
		ValBCE:            schema.Float(bce),
		ValBrier:          schema.Float(metrics.Brier(s.P, up)),
		ValAUC:            schema.Float(metrics.ROCAUC(s.P, up)),
		DirAcc:            schema.Float(metrics.DirAcc(s.Mu, s.Y)),
		ECE:               schema.Float(metrics.ECE(s.P, up, ECEBins)),
		MZIntercept:       schema.Float(a),
		MZSlope:           schema.Float(b),
		MZFp:              schema.Float(fp),
		PITKSp:            schema.Float(metrics.KSNormP(z)),
		ConformalCoverage: schema.Float(metrics.Coverage(s.Y, s.Low, s.High)),
		ConformalWidth:    schema.Float(metrics.MeanWidth(s.Low, s.High)),
	}
}

// interval is mu ± q·sigma; an infinite q gives an unbounded interval.
func interval(mu, sigma []float64, q float64) (lo, hi []float64) {
	lo, hi = make([]float64, len(mu)), make([]float64, len(mu))
	for i := range mu {
		lo[i], hi[i] = mu[i]-q*sigma[i], mu[i]+q*sigma[i]
		if math.IsInf(q, 1) {
			lo[i], hi[i] = math.Inf(-1), math.Inf(1)
		}
	}
	return lo, hi
}
