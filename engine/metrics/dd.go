package metrics

import "math"

// dd is a double-double number: the unevaluated sum hi+lo of two float64
// with |lo| <= ulp(hi)/2, about 106 bits of significand. The exact KS
// distribution needs it where SciPy's C code (cephes kolmogorov.c, which uses
// the QD library's double-double) does: sums of binomial terms whose bases
// are raised to powers in the thousands, where a float64 base would lose
// n·2⁻⁵³ of relative accuracy. The algorithms are the classic error-free
// transformations (Dekker, Knuth; Hida, Li & Bailey's QD).
type dd struct{ hi, lo float64 }

// twoSum returns a+b exactly as a dd (Knuth).
func twoSum(a, b float64) dd {
	s := a + b
	bb := s - a
	return dd{s, (a - (s - bb)) + (b - bb)}
}

// quickTwoSum returns a+b exactly, assuming |a| >= |b| (Dekker).
func quickTwoSum(a, b float64) dd {
	s := a + b
	return dd{s, b - (s - a)}
}

// twoProd returns a·b exactly as a dd, using a fused multiply-add.
func twoProd(a, b float64) dd {
	p := a * b
	return dd{p, math.FMA(a, b, -p)}
}

// divFF returns a/b as a dd.
func divFF(a, b float64) dd {
	q1 := a / b
	p := twoProd(q1, b)
	s := twoSum(a, -p.hi)
	s.lo -= p.lo
	q2 := (s.hi + s.lo) / b
	return quickTwoSum(q1, q2)
}

func (a dd) add(b dd) dd {
	s := twoSum(a.hi, b.hi)
	t := twoSum(a.lo, b.lo)
	s.lo += t.hi
	s = quickTwoSum(s.hi, s.lo)
	s.lo += t.lo
	return quickTwoSum(s.hi, s.lo)
}

func (a dd) addF(b float64) dd {
	s := twoSum(a.hi, b)
	s.lo += a.lo
	return quickTwoSum(s.hi, s.lo)
}

func (a dd) neg() dd { return dd{-a.hi, -a.lo} }

func (a dd) sub(b dd) dd { return a.add(b.neg()) }

func (a dd) mul(b dd) dd {
	p := twoProd(a.hi, b.hi)
	p.lo += a.hi*b.lo + a.lo*b.hi
	return quickTwoSum(p.hi, p.lo)
}

func (a dd) mulF(b float64) dd {
	p := twoProd(a.hi, b)
	p.lo += a.lo * b
	return quickTwoSum(p.hi, p.lo)
}

func (a dd) div(b dd) dd {
	q1 := a.hi / b.hi
	r := a.sub(b.mulF(q1))
	q2 := r.hi / b.hi
	r = r.sub(b.mulF(q2))
	q3 := r.hi / b.hi
	return quickTwoSum(q1, q2).addF(q3)
}

// floor rounds a down to an integer-valued dd.
func (a dd) floor() dd {
	hi := math.Floor(a.hi)
	if hi != a.hi {
		return dd{hi, 0}
	}
	return quickTwoSum(hi, math.Floor(a.lo))
}

// frexp splits a into a mantissa with |hi| in [0.5, 1) and a power of two.
func (a dd) frexp() (dd, int) {
	hi, e := math.Frexp(a.hi)
	return dd{hi, math.Ldexp(a.lo, -e)}, e
}

// ldexp returns a·2^e.
func (a dd) ldexp(e int) dd { return dd{math.Ldexp(a.hi, e), math.Ldexp(a.lo, e)} }

// powScaled returns a^m (m >= 0) as mant·2^exp with |mant.hi| in [0.5, 1)
// (or mant = 0), renormalising after every product so that no intermediate
// overflows or underflows whatever m is. Binary exponentiation in dd keeps
// the relative error near m·2⁻¹⁰⁶, far below one float64 ulp for the n we
// meet.
func (a dd) powScaled(m int) (mant dd, exp int) {
	if m == 0 {
		return dd{1, 0}, 0
	}
	if a.hi == 0 {
		return dd{}, 0
	}
	base, be := a.frexp()
	mant, exp = dd{1, 0}, 0
	for {
		if m&1 == 1 {
			mant = mant.mul(base)
			var e int
			mant, e = mant.frexp()
			exp += e + be
		}
		m >>= 1
		if m == 0 {
			break
		}
		base = base.mul(base)
		var e int
		base, e = base.frexp()
		be = 2*be + e
	}
	return mant, exp
}

// pow returns a^m (m >= 0) as a dd; it underflows to 0 or overflows to
// ±Inf like any float64 power would.
func (a dd) pow(m int) dd {
	mant, e := a.powScaled(m)
	return mant.ldexp(e)
}

// powi returns x^m for an integer m >= 0, correctly rounded in all but
// pathological cases. The reference computes such powers with C's pow, which
// glibc rounds correctly; Go's math.Pow squares repeatedly in float64 and
// loses up to ~m/2 ulps for large m, which is visible at 1e-12.
func powi(x float64, m int) float64 {
	return dd{x, 0}.pow(m).hi
}
