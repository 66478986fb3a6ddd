package metrics

import (
	"math"
	"math/big"
	"testing"
)

func TestTwoProdIsExact(t *testing.T) {
	a, b := 1+0x1p-30, 1-0x1p-29
	p := twoProd(a, b)
	exact := new(big.Float).SetPrec(200).Mul(big.NewFloat(a).SetPrec(200), big.NewFloat(b).SetPrec(200))
	got := new(big.Float).SetPrec(200).Add(big.NewFloat(p.hi).SetPrec(200), big.NewFloat(p.lo).SetPrec(200))
	if got.Cmp(exact) != 0 {
		t.Errorf("twoProd(%v, %v) = %v, want %v", a, b, got, exact)
	}
}

// powi must be correctly rounded where math.Pow drifts: compare with a
// 300-bit big.Float power.
func TestPowiAgainstBigFloat(t *testing.T) {
	for _, tc := range []struct {
		x float64
		m int
	}{
		{0.999, 20000}, {1 - 1.0/12000, 12000}, {0.5 + 0x1p-40, 1000},
		{1.0001, 5000}, {0.3, 5}, {-0.7, 7}, {0.9, 0}, {0, 3},
	} {
		want := bigPow(tc.x, tc.m)
		if got := powi(tc.x, tc.m); got != want {
			t.Errorf("powi(%v, %d) = %.17g, want %.17g", tc.x, tc.m, got, want)
		}
	}
}

func bigPow(x float64, m int) float64 {
	const prec = 300
	r := new(big.Float).SetPrec(prec).SetFloat64(1)
	b := new(big.Float).SetPrec(prec).SetFloat64(x)
	for ; m > 0; m >>= 1 {
		if m&1 == 1 {
			r.Mul(r, b)
		}
		b.Mul(b, b)
	}
	f, _ := r.Float64()
	return f
}

func TestPowScaledNoUnderflow(t *testing.T) {
	// 0.5^5000 = 2^-5000 is far below float64 range but exact as mant·2^e.
	mant, e := dd{0.5, 0}.powScaled(5000)
	if mant.hi != 0.5 || mant.lo != 0 || e != -4999 {
		t.Errorf("0.5^5000 = %v·2^%d, want 0.5·2^-4999", mant, e)
	}
	if got := (dd{0.5, 0}).pow(5000).hi; got != 0 || math.Signbit(got) {
		t.Errorf("pow underflow = %v, want +0", got)
	}
}
