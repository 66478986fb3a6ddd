package emulator

import (
	"testing"

	"github.com/kairoscope/kairoscope/cuda"
	"github.com/kairoscope/kairoscope/cuda/devicetest"
)

// colMajor is a column-major matrix as cuBLAS stores it: element (i, j) at
// data[i + j·ld].
type colMajor struct {
	rows, cols, ld int
	data           []float32
}

func (m colMajor) at(i, j int) float32 { return m.data[i+j*m.ld] }

func randColMajor(t testing.TB, rows, cols, ld int) colMajor {
	m := colMajor{rows, cols, ld, devicetest.Randn(devicetest.NewRand(t), ld*cols, 1)}
	return m
}

// The documented arithmetic, bit for bit: float32 products, summed in
// increasing l, then alpha·s + beta·c.
func TestSgemmIsBitForBitItsDocumentedArithmetic(t *testing.T) {
	const m, n, k = 9, 7, 23
	A, B, C := randColMajor(t, k, m, k+1), randColMajor(t, k, n, k+2), randColMajor(t, m, n, m)
	const alpha, beta = 0.3, 0.9
	want := append([]float32(nil), C.data...)
	for j := range n {
		for i := range m {
			var s float32
			for l := range k {
				s += float32(A.at(l, i) * B.at(l, j))
			}
			want[i+j*m] = float32(alpha*s) + float32(beta*C.at(i, j))
		}
	}
	e := New(Options{})
	defer e.Close()
	d := devicetest.Must(t, e)
	cP := d.Upload(C.data)
	d.Sgemm(true, false, m, n, k, alpha, d.Upload(A.data), A.ld, d.Upload(B.data), B.ld, beta, cP, C.ld)
	devicetest.SameBits(t, "C", d.Download(cP, len(want)), want)
}

func TestSgemmChecksItsOperands(t *testing.T) {
	newDev := func(t *testing.T) (*Emulator, devicetest.Dev, cuda.Ptr, cuda.Ptr, cuda.Ptr) {
		e := New(Options{})
		t.Cleanup(func() { e.Close() })
		d := devicetest.Must(t, e)
		return e, d, d.Alloc(4 * 6), d.Alloc(6 * 5), d.Alloc(4 * 5)
	}
	t.Run("leading dimensions", func(t *testing.T) {
		e, _, a, b, c := newDev(t)
		// A 4×6 (lda ≥ 4), B 6×5 (ldb ≥ 6), C 4×5 (ldc ≥ 4).
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, a, 3, b, 6, 0, c, 4), cuda.ErrBLAS, "lda = 3", "CUBLAS_STATUS_INVALID_VALUE")
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, a, 4, b, 5, 0, c, 4), cuda.ErrBLAS, "ldb = 5")
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, a, 4, b, 6, 0, c, 3), cuda.ErrBLAS, "ldc = 3")
		wantErr(t, e.Sgemm(true, false, 4, 5, 6, 1, a, 5, b, 6, 0, c, 4), cuda.ErrBLAS, "lda = 5", "transA = true")
		wantErr(t, e.Sgemm(false, false, -1, 5, 6, 1, a, 4, b, 6, 0, c, 4), cuda.ErrBLAS, "m = -1")
		if err := e.Sgemm(false, false, 4, 5, 6, 1, a, 4, b, 6, 0, c, 4); err != nil {
			t.Fatalf("invalid values must not poison the device: %v", err)
		}
		if err := e.Sgemm(false, false, 0, 5, 6, 1, 0, 1, 0, 6, 0, 0, 1); err != nil {
			t.Fatalf("m = 0 is a no-op: %v", err)
		}
	})
	t.Run("extent of A", func(t *testing.T) {
		e, _, a, b, c := newDev(t)
		// lda 5 makes A span (6−1)·5 + 4 = 29 words; it has 24.
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, a, 5, b, 6, 0, c, 4), cuda.ErrIllegalAddress,
			"A (4×6, lda 5)", "needs 116 bytes", "CUDA_ERROR_ILLEGAL_ADDRESS")
		wantErr(t, e.Synchronize(), cuda.ErrIllegalAddress, "lost by an earlier error")
	})
	t.Run("extent of C", func(t *testing.T) {
		e, _, a, b, c := newDev(t)
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, a, 4, b, 6, 0, c+8, 4), cuda.ErrIllegalAddress, "C (4×5, ldc 4)")
	})
	t.Run("host pointer", func(t *testing.T) {
		e, _, _, b, c := newDev(t)
		host := cuda.Ptr(0xc000010000) // what a Go heap address looks like
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, host, 4, b, 6, 0, c, 4), cuda.ErrIllegalAddress, "A", "past the end")
	})
	t.Run("C overlaps A", func(t *testing.T) {
		e, _, a, b, _ := newDev(t)
		wantErr(t, e.Sgemm(false, false, 4, 5, 6, 1, a, 4, b, 6, 0, a, 4), cuda.ErrBadArgument, "overlaps")
	})
	t.Run("counted", func(t *testing.T) {
		e, _, a, b, c := newDev(t)
		for range 3 {
			if err := e.Sgemm(false, false, 4, 5, 6, 1, a, 4, b, 6, 0, c, 4); err != nil {
				t.Fatal(err)
			}
		}
		_ = e.Sgemm(false, false, 4, 5, 6, 1, a, 1, b, 6, 0, c, 4) // refused: not counted
		if g := e.Counters().Gemms; g != 3 {
			t.Errorf("Gemms = %d, want 3", g)
		}
	})
}
