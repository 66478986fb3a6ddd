package metrics

import "math"

// smirnovSF returns P(D⁺ₙ >= x), the survival function of the one-sided
// Kolmogorov–Smirnov statistic, as scipy.special.smirnov(n, x) computes it
// (SciPy ≥ 1.2, cephes kolmogorov.c; van Mulbregt, "Computing the CDF and
// quantiles of the one-sided Kolmogorov-Smirnov statistic", arXiv:1802.06966).
//
// It evaluates the Smirnov / Birnbaum–Tingey sum
//
//	P(D⁺ₙ >= x) = x · Σ_{v=0}^{⌊n(1−x)⌋} C(n,v) (x+v/n)^(v−1) (1−x−v/n)^(n−v)
//
// with the same branch structure as SciPy (closed forms near x = 1/n and
// x = 1 − 1/n, the alternating "upper" sum when it has at most three terms),
// carrying each term as a double-double mantissa and a binary exponent: the
// binomials overflow float64 and the powers underflow it for n in the
// thousands, and a float64 base raised to the n-th power would lose n ulps.
func smirnovSF(n int, x float64) float64 {
	switch {
	case math.IsNaN(x) || n <= 0 || x < 0 || x > 1:
		return math.NaN()
	case n == 1:
		return 1 - x
	case x == 0:
		return 1
	case x == 1:
		return 0
	}
	nf := float64(n)

	// floor(n·x) and its fractional part alpha, exactly.
	nxD := twoProd(nf, x)
	flD := nxD.floor()
	alpha := nxD.sub(flD).hi
	nxfl := int(flD.hi) + int(flD.lo)
	if alpha == 1 { // rounding left the remainder at 1 − ε/2
		nxfl++
		alpha = 0
	}
	// Largest v of the lower sum: ⌊n(1−x)⌋, less one when n(1−x) is an
	// integer (that term is zero). First v of the upper sum: ⌈n(1−x)⌉, plus
	// one likewise.
	lastLower := n - nxfl - 1
	firstUpper := n - nxfl
	if alpha == 0 {
		firstUpper++
	}

	// x <= 1/n: P(D⁺ < x) = x(1+x)^(n−1).
	if nxfl == 0 || (nxfl == 1 && alpha == 0) {
		return 1 - x*twoSum(1, x).pow(n-1).hi
	}
	// The sum is below exp(−2nx²), which underflows: cephes returns 0 when
	// −2nx² < MINLOG = log(2⁻¹⁰⁷⁵).
	if float64(-2*n)*x*x < -1075*math.Ln2 {
		return 0
	}
	// x >= 1 − 1/n: only the v = 0 term survives.
	if nxfl >= n-1 {
		return twoSum(1, -x).pow(n).hi
	}
	// Very large n: SciPy's asymptotic form p ≈ exp(−(6nx+1)²/(18n)).
	if n > 1_000_000 {
		logp := -math.Pow(6*nf*x+1, 2) / 18 / nf
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 - -math.Expm1(logp)
	}

	// The upper sum alternates in sign, so SciPy uses it only when it is
	// very short (it then gives the CDF).
	nUpper := n - firstUpper + 1
	useUpper := (nUpper <= 1 && x < 0.5) ||
		(n >= 10 && nUpper <= 3 && x <= 0.5/math.Sqrt(nf))

	start, step, nTerms := 0, 1, lastLower+1
	var first dd // the v = start term
	if useUpper {
		start, step, nTerms = n, -1, nUpper
		first = twoSum(1, x).pow(n - 1) // C(n,n)(x+1)^(n−1)(−x)^0
	} else {
		first = twoSum(1, -x).pow(n).div(dd{x, 0}) // C(n,0)(x)^(−1)(1−x)^n
	}
	sum := first

	// C(n, j) as mantissa·2^exp; C(n,n−j) = C(n,j) serves the upper sum.
	cMant, cExp := dd{1, 0}, 0
	nextBinom := func(j int) { // C(n,j) → C(n,j+1)
		var e int
		cMant, e = cMant.mul(divFF(float64(n-j), float64(j+1))).frexp()
		cExp += e
	}
	nextBinom(0)
	for j := 1; j < nTerms; j++ {
		v := start + j*step
		t2x := divFF(float64(n-v), nf).addF(-x) // 1 − x − v/n
		t2m, t2e := t2x.powScaled(n - v)
		t1x := divFF(float64(v), nf).addF(x) // x + v/n
		t1m, t1e := t1x.powScaled(v - 1)
		term := t1m.mul(t2m).mul(cMant).ldexp(cExp + t1e + t2e)
		if !math.IsInf(term.hi, 0) && !math.IsNaN(term.hi) && term.hi != 0 {
			sum = sum.add(term)
		}
		// Stop once the remaining terms cannot move the sum (SciPy's rule),
		// or once past the mode the terms have underflowed.
		if term.hi != 0 {
			if 4*float64(nTerms-j)*math.Abs(term.hi) < 0x1p-52*sum.hi && j != nTerms-1 {
				break
			}
		} else if j > n/2 {
			break
		}
		nextBinom(j)
	}
	prob := sum.mulF(x).hi
	if useUpper {
		return clip01(1 - prob)
	}
	return clip01(prob)
}
