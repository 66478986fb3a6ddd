package devicetest

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
)

// Open returns a fresh device for one test of the suite; Run closes it
// when the test ends. It calls t.Fatal when it cannot.
type Open func(t *testing.T) cuda.Device

// Test is one test of the suite.
type Test struct {
	Name string
	Run  func(t *testing.T, d cuda.Device)
}

// Tests lists the suite in the order Run runs it.
func Tests() []Test {
	return []Test{
		{"bias_act", wrap(testBiasAct)},
		{"bias_act/edges", wrap(testBiasActEdges)},
		{"dense_forward", wrap(testDenseForward)},
		{"relu_grad", wrap(testReluGrad)},
		{"col_sum", wrap(testColSum)},
		{"prob_loss", wrap(testProbLoss)},
		{"prob_loss/zero_weights", wrap(testProbLossZeroWeights)},
		{"adam_update", wrap(testAdam)},
		{"gather_rows", wrap(testGatherRows)},
		{"gather_targets", wrap(testGatherTargets)},
		{"fill_add_into", wrap(testFillAddInto)},
		{"sgemm/formula", wrap(testSgemmFormula)},
		{"sgemm/row_major", wrap(testSgemmRowMajor)},
		{"copies", wrap(testCopies)},
		{"memory", wrap(testMemory)},
		{"unknown_kernel", wrap(testUnknownKernel)},
		{"training", testTraining},
	}
}

func wrap(f func(t *testing.T, d Dev)) func(t *testing.T, d cuda.Device) {
	return func(t *testing.T, d cuda.Device) { f(t, Dev{t, d}) }
}

// Run runs every test of the suite as a subtest, each on a fresh device
// from open, closed when the subtest ends.
func Run(t *testing.T, open Open) {
	for _, tc := range Tests() {
		t.Run(tc.Name, func(t *testing.T) {
			d := open(t)
			t.Cleanup(func() {
				if err := d.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.Run(t, d)
		})
	}
}

// u is float32's unit roundoff, 2^-24.
const u = 1.0 / (1 << 24)

// launchConfigs are the (grid, block) pairs every kernel test runs: fewer
// threads than elements (the grid-stride loop wraps), a block that is not a
// power of two, and more threads than elements.
func launchConfigs(n int) [][2]int {
	return [][2]int{{1, 64}, {3, 96}, {n/128 + 2, 128}}
}

// NewRand seeds from the test's name: each test draws its own inputs, the
// same on every device.
func NewRand(t testing.TB) *rand.Rand {
	seed := uint64(len(t.Name())) * 0x9e3779b97f4a7c15
	for _, c := range t.Name() {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 0x6b61697266))
}

func Randn(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// Dev wraps a device with fatal-on-error helpers, for this suite and for
// tests of one device's own behaviour (the emulator's).
type Dev struct {
	t testing.TB
	d cuda.Device
}

// Must wraps d for t.
func Must(t testing.TB, d cuda.Device) Dev { return Dev{t, d} }

func (d Dev) Alloc(words int) cuda.Ptr {
	d.t.Helper()
	p, err := d.d.Alloc(int64(words) * 4)
	if err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d Dev) Upload(x []float32) cuda.Ptr {
	d.t.Helper()
	p := d.Alloc(max(len(x), 1))
	if err := d.d.CopyIn(p, x); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d Dev) UploadInt32(x []int32) cuda.Ptr {
	d.t.Helper()
	p := d.Alloc(max(len(x), 1))
	if err := d.d.CopyInInt32(p, x); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d Dev) Download(p cuda.Ptr, n int) []float32 {
	d.t.Helper()
	x := make([]float32, n)
	if err := d.d.CopyOut(x, p); err != nil {
		d.t.Fatal(err)
	}
	return x
}

func (d Dev) Launch(name string, grid, block int, args ...cuda.Arg) {
	d.t.Helper()
	if err := d.d.Launch(name, grid, block, args...); err != nil {
		d.t.Fatal(err)
	}
}

func (d Dev) Sgemm(tA, tB bool, m, n, k int, alpha float32, a cuda.Ptr, lda int, b cuda.Ptr, ldb int, beta float32, c cuda.Ptr, ldc int) {
	d.t.Helper()
	if err := d.d.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); err != nil {
		d.t.Fatal(err)
	}
}

// sameBits fails unless got and want are identical bit for bit (NaNs
// included).
func SameBits(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%#08x), want %v (%#08x) bit for bit", what, i, got[i],
				math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// within fails when |got − want| > tol for some element, and returns the
// largest |got − want|/tol seen (≤ 1 when it passes).
func within(t testing.TB, what string, got []float32, want []float64, tol func(i int) float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		tl := tol(i)
		if !(d <= tl) {
			t.Fatalf("%s[%d] = %v, want %v: |diff| %.3g > tolerance %.3g", what, i, got[i], want[i], d, tl)
		}
		if tl > 0 {
			worst = max(worst, d/tl)
		}
	}
	return worst
}

func f64s(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// wantErr fails unless err matches sentinel and says every part.
func wantErr(t testing.TB, err, sentinel error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q is not %v", err, sentinel)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}
