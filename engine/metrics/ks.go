package metrics

import (
	"math"
	"slices"
)

// KSNormP returns the p-value of the two-sided one-sample Kolmogorov–Smirnov
// test of z against N(0, 1), as scipy.stats.kstest(z, "norm").pvalue with
// SciPy 1.10.1's defaults (alternative="two-sided", method="auto"). In that
// release "auto" always means the exact distribution of Dₙ, kstwo.sf(D, n),
// which scipy/stats/_ksstats.py evaluates with one of several algorithms
// chosen by n and n·D² (Simard & L'Ecuyer 2011); kolmogorovSF ports that
// choice and each algorithm.
//
// It returns NaN when z is empty or holds a NaN; ±Inf are ordinary
// observations.
func KSNormP(z []float64) float64 {
	n := len(z)
	if n == 0 {
		return math.NaN()
	}
	return kstwoSF(n, ksNormStat(z))
}

// ksNormStat returns Dₙ = max(D⁺, D⁻) of z against Φ as SciPy's ks_1samp
// computes it: D⁺ = max(i/n − Φ(z₍ᵢ₎)), D⁻ = max(Φ(z₍ᵢ₎) − (i−1)/n) over the
// sorted sample, with i/n formed by division as np.arange(1., n+1)/n does.
func ksNormStat(z []float64) float64 {
	n := len(z)
	s := slices.Clone(z)
	for _, v := range s {
		if math.IsNaN(v) {
			return math.NaN()
		}
	}
	slices.Sort(s)
	nf := float64(n)
	d := math.Inf(-1)
	for i, v := range s {
		c := ndtr(v)
		d = max(d, float64(i+1)/nf-c, c-float64(i)/nf)
	}
	return d
}

// kstwoSF is scipy.stats.kstwo.sf(d, n) followed by ks_1samp's clip to
// [0, 1]: rv_continuous answers 1 at or below the support's lower end
// 0.5/n and 0 at or above 1 before the distribution code runs.
func kstwoSF(n int, d float64) float64 {
	switch {
	case math.IsNaN(d):
		return math.NaN()
	case d <= 0.5/float64(n):
		return 1
	case d >= 1:
		return 0
	}
	return clip01(kolmogorovSF(n, d))
}

// kolmogorovSF returns P(Dₙ > x) as scipy.stats._ksstats._kolmogn(n, x,
// cdf=False) does: Ruben–Gambino closed forms at the ends of the support,
// 2·smirnov for x >= 0.5 and for large n·x², Durbin's matrix method (MTW),
// the Pomeranz recursion or the Pelz–Good asymptotic series otherwise.
// The cut-offs are SciPy's and decide which approximation a value gets,
// so they are kept exactly, including the float expressions that form them.
func kolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	nf := float64(n)
	t := nf * x
	if t <= 1 { // Ruben–Gambino: 1/2n <= x <= 1/n, P(Dₙ <= x) = n!/nⁿ (2t−1)ⁿ
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			// np.prod(np.arange(1, n+1) * (1.0/n) * (2*t - 1))
			cdf = 1
			r, c := 1.0/nf, 2*t-1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) * r * c
			}
		} else {
			cdf = math.Exp(logNFactorialDivNPowN(n) + nf*math.Log(2*t-1))
		}
		return clip01(1 - cdf)
	}
	if t >= nf-1 { // Ruben–Gambino: P(Dₙ > x) = 2(1−x)ⁿ
		return clip01(2 * powi(1-x, n))
	}
	if x >= 0.5 { // D⁺ and D⁻ cannot both exceed 1/2: exactly 2·smirnov
		return clip01(2 * smirnovSF(n, x))
	}
	nx2 := t * x
	if n <= 140 {
		switch {
		case nx2 <= 0.754693:
			return clip01(1 - kolmogorovDMTW(n, x))
		case nx2 <= 4:
			return clip01(1 - kolmogorovPomeranz(n, x))
		}
		return clip01(2 * smirnovSF(n, x))
	}
	// n > 140: SciPy splits the CDF and SF; for the SF, large n·x² is the
	// one-sided tail doubled (the two-sided intersection is negligible).
	if nx2 >= 370 {
		return 0
	}
	if nx2 >= 2.2 {
		return clip01(2 * smirnovSF(n, x))
	}
	// SF as 1 − CDF. (SciPy's "n·x² >= 18 ⇒ CDF = 1" cannot apply here.)
	var cdf float64
	if n <= 100000 && nf*(x*math.Sqrt(x)) <= 1.4 {
		cdf = kolmogorovDMTW(n, x)
	} else {
		cdf = kolmogorovPelzGood(n, x)
	}
	return clip01(1 - cdf)
}

// Stirling series coefficients B₂ⱼ/(2j)/(2j−1), j = 8 … 1, as in
// _ksstats._STIRLING_COEFFS.
var stirlingCoeffs = [...]float64{
	-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2,
}

// logNFactorialDivNPowN returns log(n!/nⁿ) by Stirling's series with the
// n·log n removed up front (_ksstats._log_nfactorial_div_n_pow_n).
func logNFactorialDivNPowN(n int) float64 {
	nf := float64(n)
	rn := 1.0 / nf
	x := rn / nf
	var poly float64 // np.polyval: Horner from the leading coefficient
	for _, c := range stirlingCoeffs {
		poly = poly*x + c
	}
	return math.Log(nf)/2 - nf + math.Log(2*math.Pi)/2 + rn*poly
}

// Scale factors 2^±128 used by SciPy's MTW and Pomeranz code to keep
// intermediate results in range; the bookkeeping exponent is applied at
// the end.
const (
	e128  = 128
	ep128 = 0x1p128
	em128 = 0x1p-128
)

// kolmogorovDMTW returns P(Dₙ <= d) by Durbin's matrix method as
// implemented by Marsaglia, Tsang & Wang (2003) (_kolmogn_DMTW): write
// d = (k−h)/n, build the m×m matrix H, m = 2k−1, and take the (k,k) entry of
// n!/nⁿ·Hⁿ, scaling as it goes.
func kolmogorovDMTW(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nf := float64(n)
	nd := nf * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	// v[j] = (1 − h^(j+1))/(j+1)!, w[j] = 1/j!; the last v is corrected.
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] = (1 - powi(h, j)) * fac
	}
	tt := powi(max(2*h-1, 0), m) - 2*powi(h, m)
	v[m-1] = (1 + tt) * fac

	H := newSquare(m)
	for i := 1; i < m; i++ { // H[i-1:, i] = w[:m-i+1]
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-(i-1)])
		}
	}
	for r := range m {
		H.set(r, 0, v[r])
	}
	for c := range m {
		H.set(m-1, c, v[m-1-c])
	}

	pw := identity(m)
	expnt, hExpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			pw = pw.mul(H)
			expnt += hExpnt
		}
		H = H.mul(H)
		hExpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			H.scale(em128)
			hExpnt += e128
		}
	}

	// Multiply by n!/nⁿ one factor i/n at a time. SciPy does this in
	// float64 and, after its first rescale, in x87 long double; dd is at
	// least as accurate as either.
	p := dd{pw.at(k-1, k-1), 0}
	for i := 1; i <= n; i++ {
		p = p.mulF(float64(i)).div(dd{nf, 0})
		if math.Abs(p.hi) < em128 {
			p = p.ldexp(e128)
			expnt -= e128
		}
	}
	return clip01(p.ldexp(expnt).hi)
}

// kolmogorovPomeranz returns P(Dₙ <= x) by the Pomeranz (1974) recursion
// as _kolmogn_Pomeranz implements it: 2n+1 convolutions of a short band of
// a row with truncated Poisson weights, keeping only the non-zero band.
func kolmogorovPomeranz(n int, x float64) float64 {
	nf := float64(n)
	t := nf * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	// (g/n)^m/m!, (2g/n)^m/m!, ((1−2g)/n)^m/m!: Poisson weights without
	// their normalising factor.
	gpower := make([]float64, npwrs)
	twogpower := make([]float64, npwrs)
	onem2gpower := make([]float64, npwrs)
	gpower[0], twogpower[0], onem2gpower[0] = 1, 1, 1
	gOverN, twoGOverN, oneMinusTwoGOverN := g/nf, 2*g/nf, (1-2*g)/nf
	for m := 1; m < npwrs; m++ {
		fm := float64(m)
		gpower[m] = gpower[m-1] * gOverN / fm
		twogpower[m] = twogpower[m-1] * twoGOverN / fm
		onem2gpower[m] = onem2gpower[m-1] * oneMinusTwoGOverN / fm
	}

	V0 := make([]float64, npwrs)
	V1 := make([]float64, npwrs)
	V1[0] = 1
	V0s, V1s := 0, 0
	expnt := 0
	j1, j2 := pomeranzJ1J2(0, n, ll, ceilf, roundf)
	conv := make([]float64, 2*npwrs)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		V0, V1 = V1, V0
		V0s, V1s = V1s, V0s
		clear(V1)
		j1, j2 = pomeranzJ1J2(i, n, ll, ceilf, roundf)
		var pwrs []float64
		switch {
		case i == 1 || i == 2*n+1:
			pwrs = gpower
		case i%2 == 1:
			pwrs = twogpower
		default:
			pwrs = onem2gpower
		}
		ln2 := j2 - k1 + 1
		if ln2 <= 0 {
			continue
		}
		// np.convolve(V0[k1-V0s : k1-V0s+ln2], pwrs[:ln2]) with Python's
		// slice truncation at the array end.
		a := pySlice(V0, k1-V0s, k1-V0s+ln2)
		b := pySlice(pwrs, 0, ln2)
		c := convolve(conv[:0], a, b)
		convStart := j1 - k1
		convLen := j2 - j1 + 1
		copy(V1[:convLen], pySlice(c, convStart, convStart+convLen))
		if mx := slices.Max(V1); 0 < mx && mx < em128 {
			for r := range V1 {
				V1[r] *= ep128
			}
			expnt -= e128
		}
		V1s = V0s + j1 - k1
	}

	// Multiply by n!; SciPy again switches to long double after a rescale.
	ans := dd{V1[n-V1s], 0}
	for m := 1; m <= n; m++ {
		if math.Abs(ans.hi) > ep128 {
			ans = ans.ldexp(-e128)
			expnt += e128
		}
		ans = ans.mulF(float64(m))
	}
	return clip01(ans.ldexp(expnt).hi)
}

// pomeranzJ1J2 returns the first and last non-zero column of row i
// (_pomeranz_compute_j1j2).
func pomeranzJ1J2(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		ip1div2, ip1mod2 := (i+1)/2, (i+1)%2
		switch {
		case ip1mod2 == 0 && ip1div2 == n+1: // i odd, last row
			j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
		case ip1mod2 == 0: // i odd
			j1, j2 = ip1div2-1-ll-roundf-1, ip1div2+ll-1+ceilf-1
		default:
			j1, j2 = ip1div2-1-ll-1, ip1div2+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// pySlice is s[lo:hi] with Python's clamping of hi to len(s) (lo >= 0).
func pySlice(s []float64, lo, hi int) []float64 {
	hi = min(hi, len(s))
	lo = min(lo, hi)
	return s[lo:hi]
}

// convolve appends the full discrete convolution of a and b to dst
// (numpy.convolve, mode "full").
func convolve(dst, a, b []float64) []float64 {
	if len(a) == 0 || len(b) == 0 {
		return dst
	}
	for k := range len(a) + len(b) - 1 {
		var s float64
		for i := max(0, k-len(b)+1); i <= min(k, len(a)-1); i++ {
			s += a[i] * b[k-i]
		}
		dst = append(dst, s)
	}
	return dst
}

// Pelz–Good constants, as _ksstats defines them.
var (
	sqrt2Pi  = math.Sqrt(2 * math.Pi)
	piSquare = math.Pi * math.Pi
	piFour   = powi(math.Pi, 4)
	piSix    = powi(math.Pi, 6)
)

// kolmogorovPelzGood returns the Pelz–Good (1976) approximation of
// P(Dₙ <= x): the Li-Chien / Korolyuk expansion K₀ + K₁/√n + K₂/n + K₃/n^1.5
// in z = √n·x, each Kᵢ transformed by the Jacobi theta functional equation
// into fast-converging sums for small z (_kolmogn_PelzGood).
func kolmogorovPelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	nf := float64(n)
	z := math.Sqrt(nf) * x
	z2, z3, z4, z6 := z*z, powi(z, 3), powi(z, 4), powi(z, 6)

	qlog := -piSquare / 8 / z2
	if qlog < -708 { // z below ~0.0417: the CDF underflows
		return 0
	}
	q := math.Exp(qlog)

	k1a := -z2
	k1b := piSquare / 4

	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * piSquare / 4
	k2c := piFour * (1 - 2*z2) / 16

	k3d := piSix * (5 - 30*z2) / 64
	k3c := piFour * (-60*z2 + 212*z4) / 16
	k3b := piSquare * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*powi(z, 8)

	// Horner scheme in q^8k over odd m = 2k−1, from the largest k down.
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, m*m*m*m, m*m*m*m*m*m // exact: Python ints
		qpower := powi(q, 8*k)
		coeffs := [4]float64{
			1,
			k1a + k1b*m2,
			k2a + k2b*m2 + k2c*m4,
			k3a + k3b*m2 + k3c*m4 + k3d*m6,
		}
		for i := range K {
			K[i] = K[i]*qpower + coeffs[i]
		}
	}
	den := [4]float64{z, 6 * z4, 72 * powi(z, 7), 6480 * powi(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2Pi / den[i]
	}

	// The remaining terms of K₂ and K₃ sum over all integers k:
	// (π²k²)q^(k²) and (3π²k²z² − π⁴k⁴)q^(k²) with q = exp(−π²/2z²).
	q = math.Exp(-piSquare / 2 / z2)
	sqrt3z := math.Sqrt(3) * z
	t2 := make([]float64, 0, maxk)
	t3 := make([]float64, 0, maxk)
	for k := maxk; k > 0; k-- {
		k2 := k * k
		qp := powi(q, k2)
		kspi := math.Pi * float64(k)
		t2 = append(t2, float64(k2)*qp)
		t3 = append(t3, (sqrt3z+kspi)*(sqrt3z-kspi)*float64(k2)*qp)
	}
	K[2] += npSum(t2) * (piSquare * sqrt2Pi / (-36 * z3))
	K[3] += npSum(t3) * (piSquare * sqrt2Pi / (216 * z6))

	pown := [4]float64{1, math.Sqrt(nf), nf, nf * math.Sqrt(nf)}
	var sum float64
	for i := range K {
		sum += K[i] / pown[i]
	}
	return sum
}

// square is a dense row-major m×m matrix, just enough for the MTW power.
type square struct {
	m int
	a []float64
}

func newSquare(m int) square { return square{m, make([]float64, m*m)} }

func identity(m int) square {
	s := newSquare(m)
	for i := range m {
		s.a[i*m+i] = 1
	}
	return s
}

func (s square) at(r, c int) float64     { return s.a[r*s.m+c] }
func (s square) set(r, c int, v float64) { s.a[r*s.m+c] = v }

func (s square) scale(f float64) {
	for i := range s.a {
		s.a[i] *= f
	}
}

func (s square) mul(t square) square {
	m := s.m
	out := newSquare(m)
	for i := range m {
		row := out.a[i*m : (i+1)*m]
		for k := range m {
			sik := s.a[i*m+k]
			if sik == 0 {
				continue
			}
			for j, tkj := range t.a[k*m : (k+1)*m] {
				row[j] += sik * tkj
			}
		}
	}
	return out
}
