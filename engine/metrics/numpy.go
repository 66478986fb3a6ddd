package metrics

import (
	"fmt"
	"math"
)

// This file holds the few numerical primitives whose rounding the reference
// libraries fix, so that results agree bit for bit where the math allows.

// npBufSize is NumPy's default ufunc buffer size: a float64 add.reduce runs
// its pairwise sum over consecutive blocks of this many elements and adds
// the block sums left to right.
const npBufSize = 8192

// npPairwiseBlock is PW_BLOCKSIZE in numpy/core/src/umath/loops_utils.h.
const npPairwiseBlock = 128

// npSum returns numpy.sum(xs) for a contiguous float64 array, with NumPy's
// exact order of additions (blocked pairwise summation, eight accumulators
// at the leaves). Its error is O(log n) ulps, and matching the order makes
// means bit-identical to the reference in the common case.
func npSum(xs []float64) float64 {
	s := 0.0
	for len(xs) > 0 {
		k := min(len(xs), npBufSize)
		s += npPairwise(xs[:k])
		xs = xs[k:]
	}
	return s
}

func npPairwise(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		s := 0.0
		for _, v := range a {
			s += v
		}
		return s
	case n <= npPairwiseBlock:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return npPairwise(a[:n2]) + npPairwise(a[n2:])
	}
}

// npMean returns numpy.mean(xs): npSum divided by the count; NaN when empty
// (NumPy warns and returns nan).
func npMean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return npSum(xs) / float64(len(xs))
}

// ndtr is the standard normal CDF Φ(x), arranged as cephes ndtr (SciPy's
// scipy.special.ndtr behind scipy.stats.norm.cdf): 0.5 + 0.5·erf(x/√2) near
// zero, 0.5·erfc(|x|/√2) in the tails, so that small tail probabilities keep
// their relative accuracy.
func ndtr(a float64) float64 {
	x := a * (1 / math.Sqrt2)
	z := math.Abs(x)
	if z < 1/math.Sqrt2 {
		return 0.5 + 0.5*math.Erf(x)
	}
	y := 0.5 * math.Erfc(z)
	if x > 0 {
		y = 1 - y
	}
	return y
}

// clip01 is numpy.clip(p, 0, 1); NaN passes through.
func clip01(p float64) float64 {
	if p < 0 {
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}

// sameLen panics unless all lengths equal the first one, and returns it.
// Mismatched slices are a programmer error in the engine (every metric
// input is a column of the same fold), never a data condition.
func sameLen(fn string, lens ...int) int {
	for _, l := range lens[1:] {
		if l != lens[0] {
			panic(fmt.Sprintf("metrics: %s: slices of different lengths %v", fn, lens))
		}
	}
	return lens[0]
}
