package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The golden values come from testdata/gen_golden.py (run it with
// /usr/bin/python3 from the repository root to regenerate golden.json).
// Each comparison states its tolerance; the default is 1e-10 relative.

// jf is a float64 that also decodes the generator's "NaN", "+Inf" and
// "-Inf" strings (JSON has no such numbers).
type jf float64

func (f *jf) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "NaN":
			*f = jf(math.NaN())
		case "+Inf":
			*f = jf(math.Inf(1))
		case "-Inf":
			*f = jf(math.Inf(-1))
		default:
			return fmt.Errorf("bad float string %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jf(v)
	return nil
}

func floats(a []jf) []float64 {
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = float64(v)
	}
	return out
}

type goldenCase struct {
	Name   string        `json:"name"`
	N      int           `json:"n"`
	Bins   int           `json:"bins"`
	Period int           `json:"period"`
	P      []jf          `json:"p"`
	Up     []bool        `json:"up"`
	Mu     []jf          `json:"mu"`
	Y      []jf          `json:"y"`
	Sigma  []jf          `json:"sigma"`
	Lo     []jf          `json:"lo"`
	Hi     []jf          `json:"hi"`
	Z      []jf          `json:"z"`
	X      []jf          `json:"x"`
	Want   map[string]jf `json:"want"`
}

type golden struct {
	Versions map[string]string `json:"versions"`
	Cases    []goldenCase      `json:"cases"`
	KSTwo    []struct {
		N  int `json:"n"`
		D  jf  `json:"d"`
		SF jf  `json:"sf"`
	} `json:"kstwo"`
	CRPS []struct {
		Y       jf `json:"y"`
		Mu      jf `json:"mu"`
		Sigma   jf `json:"sigma"`
		Closed  jf `json:"closed"`
		Quad    jf `json:"quad"`
		QuadErr jf `json:"quad_err"`
	} `json:"crps"`
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("decode golden file: %v", err)
	}
	want := map[string]string{"numpy": "1.24.2", "scipy": "1.10.1",
		"sklearn": "1.2.1", "statsmodels": "0.13.5"}
	for k, v := range want {
		// Debian appends "+dfsg" and the like; the release must match.
		if got := g.Versions[k]; len(got) < len(v) || got[:len(v)] != v {
			t.Errorf("golden made with %s %q, want %s", k, got, v)
		}
	}
	return &g
}

// tol is a comparison tolerance: |got − want| <= rel·|want| + abs.
type tol struct{ rel, abs float64 }

var defaultTol = tol{rel: 1e-10}

// relErr is |got − want|/|want| (absolute when want is 0); 0 when both are
// NaN or equal infinities.
func relErr(got, want float64) float64 {
	switch {
	case math.IsNaN(got) && math.IsNaN(want), got == want:
		return 0
	case math.IsNaN(got) || math.IsNaN(want):
		return math.Inf(1)
	case want == 0:
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func within(got, want float64, tl tol) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tl.rel*math.Abs(want)+tl.abs
}

// maxErr records the largest relative error seen per metric, for the log.
type maxErr map[string]float64

func (m maxErr) check(t *testing.T, where, metric string, got, want float64, tl tol) {
	t.Helper()
	if !within(got, want, tl) {
		t.Errorf("%s: %s = %.17g, want %.17g (rel err %.3g, tol %+v)",
			where, metric, got, want, relErr(got, want), tl)
	}
	if e := relErr(got, want); !math.IsInf(e, 0) && e > m[metric] {
		m[metric] = e
	}
	if _, ok := m[metric]; !ok {
		m[metric] = 0
	}
}

func (m maxErr) log(t *testing.T) {
	for k, v := range m {
		t.Logf("max rel err %-14s %.3g", k, v)
	}
}

func TestGoldenCases(t *testing.T) {
	g := loadGolden(t)
	if len(g.Cases) < 15 {
		t.Fatalf("golden has %d cases, want >= 15", len(g.Cases))
	}
	errs := maxErr{}
	seen := map[string]int{}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			// Shapes before values: every input present has length n.
			for name, l := range map[string]int{"p": len(c.P), "up": len(c.Up),
				"mu": len(c.Mu), "y": len(c.Y), "sigma": len(c.Sigma),
				"lo": len(c.Lo), "hi": len(c.Hi), "z": len(c.Z), "x": len(c.X)} {
				if l != 0 && l != c.N {
					t.Fatalf("len(%s) = %d, want n = %d", name, l, c.N)
				}
			}
			if (c.P == nil) != (c.Up == nil) || (c.Mu == nil) != (c.Y == nil) ||
				(c.Lo == nil) != (c.Hi == nil) {
				t.Fatal("paired inputs missing one half")
			}
			check := func(metric string, got float64, tl tol) {
				t.Helper()
				want, ok := c.Want[metric]
				if !ok {
					t.Fatalf("golden lacks %s", metric)
				}
				seen[metric]++
				errs.check(t, c.Name, metric, got, float64(want), tl)
			}
			if c.P != nil {
				p := floats(c.P)
				check("roc_auc", ROCAUC(p, c.Up), defaultTol)
				// ECE: |mean(up_b) − mean(p_b)| may cancel, so relative
				// error there is unbounded in principle; bin sums follow
				// NumPy's order, and an absolute floor of 1e-15 covers
				// the rest.
				check("ece", ECE(p, c.Up, c.Bins), tol{1e-10, 1e-15})
				check("brier", Brier(p, c.Up), defaultTol)
				check("bce", BCE(p, c.Up), defaultTol)
			}
			if c.Mu != nil {
				y, mu := floats(c.Y), floats(c.Mu)
				check("dir_acc", DirAcc(mu, y), defaultTol)
				a, b, fp := MincerZarnowitz(y, mu)
				// The intercept can be near 0 relative to the data, where
				// both fits' rounding (~1e-16·scale·cond) is all there is;
				// allow that absolutely. The p-value gets 1e-9: statsmodels
				// forms F through two pseudo-inverses, which leaves a
				// relative error of order cond(XᵀX)·ε (4.9e-14 on the
				// change-space case, measured against 50-digit arithmetic),
				// and p = I_w(d/2, 1) amplifies it by about |ln p| (68
				// there); cephes' incomplete beta adds ~1e-12 of its own at
				// d/2 = 999, which we share by calling the same routine.
				scale := maxAbs(y) + maxAbs(mu)
				check("mz_intercept", a, tol{1e-10, 1e-13 * scale})
				check("mz_slope", b, defaultTol)
				check("mz_f_p", fp, tol{1e-9, 0})
				if c.Sigma != nil {
					check("gaussian_nll", GaussianNLL(y, mu, floats(c.Sigma)), defaultTol)
				}
				if c.Lo != nil {
					lo, hi := floats(c.Lo), floats(c.Hi)
					check("coverage", Coverage(y, lo, hi), defaultTol)
					check("mean_width", MeanWidth(lo, hi), defaultTol)
				}
			}
			if c.Z != nil {
				z := floats(c.Z)
				check("ks_d", ksNormStat(z), tol{1e-12, 1e-16})
				check("ks_p", KSNormP(z), ksTol(float64(c.Want["ks_p"])))
			}
			if c.X != nil {
				check("seasonal_mae", SeasonalNaiveMAE(floats(c.X), c.Period), defaultTol)
			}
		})
	}
	for _, m := range []string{"roc_auc", "ece", "brier", "bce", "dir_acc",
		"mz_intercept", "mz_slope", "mz_f_p", "gaussian_nll", "coverage",
		"mean_width", "ks_d", "ks_p", "seasonal_mae"} {
		if seen[m] == 0 {
			t.Errorf("no golden case checks %s", m)
		}
	}
	errs.log(t)
}

// ksTol is the KS p-value tolerance. Above 1e-280 the value is a normal
// float64 computed to near full precision on both sides: 1e-10 relative.
// Below, the reference's terms pass through subnormal numbers and lose
// digits to underflow (SciPy prints 6.5343694856e-313 for smirnov(1350,
// 0.5)), so only an absolute 1e-290 is meaningful; no test decision lives
// there.
func ksTol(want float64) tol {
	if want < 1e-280 {
		return tol{1e-10, 1e-290}
	}
	return defaultTol
}

func maxAbs(xs []float64) float64 {
	m := 0.0
	for _, v := range xs {
		if !math.IsNaN(v) {
			m = max(m, math.Abs(v))
		}
	}
	return m
}

// TestGoldenKSTwo checks the exact KS distribution on a grid that reaches
// every branch of SciPy's _kolmogn, for n from 1 to 20000.
func TestGoldenKSTwo(t *testing.T) {
	g := loadGolden(t)
	if len(g.KSTwo) < 500 {
		t.Fatalf("golden has %d kstwo rows, want >= 500", len(g.KSTwo))
	}
	// Measured: <= 1.4e-12 relative above 1e-280, the worst where
	// sf = 1 − cdf cancels (Pomeranz at n·d² near 4, sf ≈ 5e-4: a few ulps
	// of the CDF, whose convolutions NumPy sums through BLAS in its own
	// order).
	errs := maxErr{}
	for _, r := range g.KSTwo {
		got := kstwoSF(r.N, float64(r.D))
		metric := "kstwo_sf"
		if float64(r.SF) < 1e-280 {
			metric = "kstwo_sf_tiny"
		}
		errs.check(t, fmt.Sprintf("kstwo.sf(%.17g, %d)", float64(r.D), r.N),
			metric, got, float64(r.SF), ksTol(float64(r.SF)))
	}
	errs.log(t)
}

// TestGoldenCRPS checks the closed form against NumPy's evaluation of the
// same formula (1e-12 relative: same expression, different erf) and against
// numerical integration of the definition (1e-9 relative: quad's own error
// estimate is ~1e-14, but at y ≈ 1e6 its abscissae t carry ulp(1e6) ≈ 1e-10
// of absolute error into t − μ).
func TestGoldenCRPS(t *testing.T) {
	g := loadGolden(t)
	if len(g.CRPS) < 20 {
		t.Fatalf("golden has %d crps rows, want >= 20", len(g.CRPS))
	}
	errs := maxErr{}
	for _, r := range g.CRPS {
		got := GaussianCRPS(float64(r.Y), float64(r.Mu), float64(r.Sigma))
		where := fmt.Sprintf("GaussianCRPS(%g, %g, %g)", float64(r.Y), float64(r.Mu), float64(r.Sigma))
		errs.check(t, where, "crps_closed", got, float64(r.Closed), tol{1e-12, 0})
		errs.check(t, where, "crps_quad", got, float64(r.Quad), tol{1e-9, 10 * float64(r.QuadErr)})
	}
	errs.log(t)
}
