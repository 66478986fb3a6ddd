package calib

import "math"

// Search range and tolerance of FitTemperature, on log T. They are scipy's
// arguments in the golden generator; change both together.
const (
	minLogT  = -4.605170185988091 // log(1e-2)
	maxLogT  = 4.605170185988092  // log(1e2)
	logTXTol = 1e-10
)

// FitTemperature returns the temperature T in [1e-2, 1e2] that minimises the
// mean binary cross-entropy of sigmoid(logit/T) against up.
//
// It searches log T with the same bounded Brent method as
// scipy.optimize.minimize_scalar(method="bounded", xatol=1e-10). T agrees
// with scipy to about 1e-7 relative (the golden test allows 1e-6), not to
// xatol: near the optimum the loss is flat to within rounding over about
// sqrt(machine epsilon) in log T, and the last bits of the loss differ (numpy
// sums pairwise), so the two searches stop at different points of that flat
// stretch. Both are equally good minimisers. Data with no finite optimum
// (separable, or one class only) gets a T at an edge of the range. With no
// rows it returns 1.
func FitTemperature(logits []float64, up []bool) float64 {
	mustSameLen("FitTemperature", len(logits), len(up))
	if len(logits) == 0 {
		return 1
	}
	loss := func(logT float64) float64 {
		t := math.Exp(logT)
		var s float64
		for i, z := range logits {
			s += bce(z/t, up[i])
		}
		return s / float64(len(logits))
	}
	return math.Exp(minimiseBounded(loss, minLogT, maxLogT, logTXTol))
}

// bce is the binary cross-entropy of sigmoid(z) against up, written as
// softplus(z) - up·z so that it never takes the log of 0.
func bce(z float64, up bool) float64 {
	l := math.Max(z, 0) + math.Log1p(math.Exp(-math.Abs(z)))
	if up {
		l -= z
	}
	return l
}

// minimiseBounded minimises f on [a, b] by Brent's method (golden section
// plus parabolic interpolation). It is a line-by-line port of scipy 1.10's
// _minimize_scalar_bounded (fminbound) with maxiter 500, kept literal so that
// both take the same steps; the variable names are scipy's.
func minimiseBounded(f func(float64) float64, a, b, xatol float64) float64 {
	const maxfun = 500
	sqrtEps := math.Sqrt(2.2e-16)
	goldenMean := 0.5 * (3 - math.Sqrt(5))

	fulc := a + goldenMean*(b-a)
	nfc, xf := fulc, fulc
	var rat, e float64
	fx := f(xf)
	num := 1
	ffulc, fnfc := fx, fx
	xm := 0.5 * (a + b)
	tol1 := sqrtEps*math.Abs(xf) + xatol/3
	tol2 := 2 * tol1

	for math.Abs(xf-xm) > tol2-0.5*(b-a) {
		golden := true
		if math.Abs(e) > tol1 { // try a parabolic step
			golden = false
			r := (xf - nfc) * (fx - ffulc)
			q := (xf - fulc) * (fx - fnfc)
			p := (xf-fulc)*q - (xf-nfc)*r
			q = 2 * (q - r)
			if q > 0 {
				p = -p
			}
			q = math.Abs(q)
			r = e
			e = rat
			if math.Abs(p) < math.Abs(0.5*q*r) && p > q*(a-xf) && p < q*(b-xf) {
				rat = p / q
				x := xf + rat
				if x-a < tol2 || b-x < tol2 {
					rat = tol1 * signOrOne(xm-xf)
				}
			} else {
				golden = true
			}
		}
		if golden {
			if xf >= xm {
				e = a - xf
			} else {
				e = b - xf
			}
			rat = goldenMean * e
		}

		x := xf + signOrOne(rat)*math.Max(math.Abs(rat), tol1)
		fu := f(x)
		num++

		if fu <= fx {
			if x >= xf {
				a = xf
			} else {
				b = xf
			}
			fulc, ffulc = nfc, fnfc
			nfc, fnfc = xf, fx
			xf, fx = x, fu
		} else {
			if x < xf {
				a = x
			} else {
				b = x
			}
			if fu <= fnfc || nfc == xf {
				fulc, ffulc = nfc, fnfc
				nfc, fnfc = x, fu
			} else if fu <= ffulc || fulc == xf || fulc == nfc {
				fulc, ffulc = x, fu
			}
		}

		xm = 0.5 * (a + b)
		tol1 = sqrtEps*math.Abs(xf) + xatol/3
		tol2 = 2 * tol1
		if num >= maxfun {
			break
		}
	}
	return xf
}

// signOrOne is numpy's sign(v) + (v == 0): the sign, with 0 counted as +1.
func signOrOne(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}
