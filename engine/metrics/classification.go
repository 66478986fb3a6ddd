package metrics

import (
	"math"
	"slices"
)

// ROCAUC returns the area under the ROC curve of score p for the positive
// class up, as scikit-learn's roc_auc_score(up, p): tied scores count one
// half, i.e. the Mann–Whitney U statistic with midranks divided by n₊·n₋.
//
// It is computed from integer and half-integer rank sums, exact in float64
// for any realistic n, then one division; scikit-learn integrates the ROC
// polyline with the trapezoid rule, which agrees to a few ulps.
//
// It returns NaN where scikit-learn raises ValueError: when up holds only
// one class (or is empty), and when any score is NaN or ±Inf.
func ROCAUC(p []float64, up []bool) float64 {
	n := sameLen("ROCAUC", len(p), len(up))
	var nPos int
	for i := range n {
		if math.IsNaN(p[i]) || math.IsInf(p[i], 0) {
			return math.NaN()
		}
		if up[i] {
			nPos++
		}
	}
	nNeg := n - nPos
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	// Sum the 1-based midranks of the positives, tie group by tie group.
	// Twice the ranks are integers, so keep 2·R exact in float64.
	var twiceRankSum float64
	for i := 0; i < n; {
		j := i + 1
		for j < n && p[idx[j]] == p[idx[i]] {
			j++
		}
		// ranks i+1 … j share the mean rank (i+1+j)/2.
		var pos int
		for _, k := range idx[i:j] {
			if up[k] {
				pos++
			}
		}
		twiceRankSum += float64(pos) * float64(i+1+j)
		i = j
	}
	u := twiceRankSum/2 - float64(nPos)*float64(nPos+1)/2
	return u / (float64(nPos) * float64(nNeg))
}

// DirAcc returns the directional accuracy mean((mu > 0) == (y > 0)); NaN
// when empty. Zero counts as "not up" on both sides, and NaN compares false
// (as in NumPy), so a NaN mu agrees with a non-positive y.
func DirAcc(mu, y []float64) float64 {
	n := sameLen("DirAcc", len(mu), len(y))
	if n == 0 {
		return math.NaN()
	}
	var hits int
	for i := range n {
		if (mu[i] > 0) == (y[i] > 0) {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// ECE returns the expected calibration error of probabilities p for
// outcomes up over bins equal-width bins on [0, 1]:
//
//	Σ_b (n_b/N)·|mean(up_b) − mean(p_b)|
//
// Bin b holds the p with b/bins <= p < (b+1)/bins, the edges being the
// float64 quotients b/bins (so p = 0.3 falls in bin 3 of 10, never in bin 2
// through rounding of p·bins); p == 1 goes to the last bin. Empty bins are
// skipped. Bin means are NumPy means of the bin's members in input order.
//
// It returns NaN when p is empty or any p is NaN or outside [0, 1], and
// panics when bins < 1.
func ECE(p []float64, up []bool, bins int) float64 {
	n := sameLen("ECE", len(p), len(up))
	if bins < 1 {
		panic("metrics: ECE: bins must be >= 1")
	}
	if n == 0 {
		return math.NaN()
	}
	members := make([][]int, bins)
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return math.NaN()
		}
		b := eceBin(v, bins)
		members[b] = append(members[b], i)
	}
	var ece float64
	buf := make([]float64, 0, n)
	for _, m := range members {
		if len(m) == 0 {
			continue
		}
		buf = buf[:0]
		var ups int
		for _, i := range m {
			buf = append(buf, p[i])
			if up[i] {
				ups++
			}
		}
		nb := float64(len(m))
		ece += nb / float64(n) * math.Abs(float64(ups)/nb-npMean(buf))
	}
	return ece
}

// eceBin returns the largest b in [0, bins-1] with float64(b)/bins <= v, for
// v in [0, 1]. int(v·bins) is right except within an ulp of an edge, where
// the product rounds across it; the two loops settle those against the
// edges themselves.
func eceBin(v float64, bins int) int {
	B := float64(bins)
	b := min(int(v*B), bins-1)
	for b > 0 && v < float64(b)/B {
		b--
	}
	for b < bins-1 && v >= float64(b+1)/B {
		b++
	}
	return b
}

// Brier returns the Brier score mean((p − up)²), as scikit-learn's
// brier_score_loss(up, p). One-class input is fine (scikit-learn takes the
// positive label to be 1/True). It returns NaN where scikit-learn raises
// ValueError: when empty, and when any p is NaN or outside [0, 1].
func Brier(p []float64, up []bool) float64 {
	n := sameLen("Brier", len(p), len(up))
	if n == 0 {
		return math.NaN()
	}
	sq := make([]float64, n)
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return math.NaN()
		}
		d := b2f(up[i]) - v
		sq[i] = d * d
	}
	return npMean(sq)
}

// bceEps is the clipping bound of scikit-learn 1.2.1's log_loss: its
// default eps="auto" resolves to np.finfo(float64).eps = 2⁻⁵² (older
// releases used 1e-15; 1.2.1 does not).
const bceEps = 0x1p-52

// BCE returns the mean binary cross-entropy of p for up, as scikit-learn
// 1.2.1's log_loss(up, p, labels=[False, True]): p is clipped to
// [ε, 1−ε] with ε = 2⁻⁵² (the eps="auto" default of that release), the
// two-column prediction [1−p, p] is renormalised by its row sum (which can
// differ from 1 by an ulp, and the reference divides by it), and the loss is
// −log of the entry of the observed class.
//
// Passing the labels explicitly is what lets a one-class fold work: without
// them log_loss raises "y_true contains only one label", with them it
// returns the same value as for two-class input. BCE therefore always
// answers, one class or two. It returns NaN where log_loss raises
// ValueError: when empty, and when any p is NaN or ±Inf (p outside [0, 1]
// is merely clipped, as there).
func BCE(p []float64, up []bool) float64 {
	n := sameLen("BCE", len(p), len(up))
	if n == 0 {
		return math.NaN()
	}
	loss := make([]float64, n)
	for i, v := range p {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.NaN()
		}
		v = min(max(v, bceEps), 1-bceEps)
		q0, q1 := 1-v, v
		s := q0 + q1
		if up[i] {
			loss[i] = -math.Log(q1 / s)
		} else {
			loss[i] = -math.Log(q0 / s)
		}
	}
	return npMean(loss)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
