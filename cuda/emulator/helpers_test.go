package emulator

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
)

func newRand(t testing.TB) *rand.Rand {
	seed := uint64(len(t.Name())) * 0x9e3779b97f4a7c15
	for _, c := range t.Name() {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 0x6b61697266))
}

func randn(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// dev wraps a device with fatal-on-error helpers.
type dev struct {
	t testing.TB
	d cuda.Device
}

func (d dev) alloc(words int) cuda.Ptr {
	d.t.Helper()
	p, err := d.d.Alloc(int64(words) * 4)
	if err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d dev) upload(x []float32) cuda.Ptr {
	d.t.Helper()
	p := d.alloc(max(len(x), 1))
	if err := d.d.CopyIn(p, x); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d dev) uploadInt32(x []int32) cuda.Ptr {
	d.t.Helper()
	p := d.alloc(max(len(x), 1))
	if err := d.d.CopyInInt32(p, x); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d dev) download(p cuda.Ptr, n int) []float32 {
	d.t.Helper()
	x := make([]float32, n)
	if err := d.d.CopyOut(x, p); err != nil {
		d.t.Fatal(err)
	}
	return x
}

func (d dev) launch(name string, grid, block int, args ...cuda.Arg) {
	d.t.Helper()
	if err := d.d.Launch(name, grid, block, args...); err != nil {
		d.t.Fatal(err)
	}
}

func (d dev) sgemm(tA, tB bool, m, n, k int, alpha float32, a cuda.Ptr, lda int, b cuda.Ptr, ldb int, beta float32, c cuda.Ptr, ldc int) {
	d.t.Helper()
	if err := d.d.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); err != nil {
		d.t.Fatal(err)
	}
}

// sameBits fails unless got and want are identical bit for bit (NaNs
// included).
func sameBits(t testing.TB, what string, got, want []float32) {
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

// wantErr fails unless err is a *cuda.Error (or *cuda.MemError for
// ErrOutOfMemory) matching sentinel whose text contains every part.
func wantErr(t testing.TB, err, sentinel error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %q is not %v", err, sentinel)
	}
	var ce *cuda.Error
	var me *cuda.MemError
	if !errors.As(err, &ce) && !errors.As(err, &me) {
		t.Fatalf("error %q (%T) is neither *cuda.Error nor *cuda.MemError", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}
