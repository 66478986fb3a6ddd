package emulator

import (
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/kairoscope/kairoscope/cuda"
)

// colMajor is a column-major matrix as cuBLAS stores it: element (i, j) at
// data[i + j·ld].
type colMajor struct {
	rows, cols, ld int
	data           []float32
}

func (m colMajor) at(i, j int) float32 { return m.data[i+j*m.ld] }

func randColMajor(t testing.TB, rows, cols, ld int) colMajor {
	m := colMajor{rows, cols, ld, randn(newRand(t), ld*cols, 1)}
	return m
}

// opAt returns op(X)(i, j).
func opAt(x colMajor, trans bool, i, j int) float64 {
	if trans {
		return float64(x.at(j, i))
	}
	return float64(x.at(i, j))
}

// Sgemm against a float64 reference written from the cuBLAS formula, for
// all four transpose combinations, with leading dimensions larger than the
// rows, alpha and beta ≠ 0 and 1, within the float32 bound
// (k+3)·u·(|alpha|·Σ|a||b| + |beta||c|); the padding rows of C (beyond m,
// below ldc) are never touched; beta = 0 ignores NaN in C.
func TestSgemmMatchesTheCuBLASFormula(t *testing.T) {
	const m, n, k = 13, 11, 17
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, ab := range [][2]float32{{0.7, -1.3}, {1, 0}, {-2, 1}} {
				t.Run(fmt.Sprintf("transA=%t,transB=%t,alpha=%g,beta=%g", tA, tB, ab[0], ab[1]), func(t *testing.T) {
					alpha, beta := ab[0], ab[1]
					ra, ca, rb, cb := m, k, k, n
					if tA {
						ra, ca = k, m
					}
					if tB {
						rb, cb = n, k
					}
					A := randColMajor(t, ra, ca, ra+3)
					B := randColMajor(t, rb, cb, rb+5)
					C := randColMajor(t, m, n, m+2)
					if beta == 0 {
						for i := range C.data {
							C.data[i] = float32(math.NaN())
						}
					}
					want := make([]float64, len(C.data))
					tol := make([]float64, len(C.data))
					for i := range C.data {
						want[i], tol[i] = float64(C.data[i]), 0 // padding: untouched
					}
					for j := range n {
						for i := range m {
							var s, mag float64
							for l := range k {
								p := opAt(A, tA, i, l) * opAt(B, tB, l, j)
								s += p
								mag += math.Abs(p)
							}
							c := float64(C.at(i, j))
							w := float64(alpha) * s
							bound := math.Abs(float64(alpha)) * mag
							if beta != 0 {
								w += float64(beta) * c
								bound += math.Abs(float64(beta) * c)
							}
							want[i+j*C.ld] = w
							tol[i+j*C.ld] = (k + 3) * u * bound
						}
					}
					e := New(Options{})
					defer e.Close()
					d := dev{t, e}
					cP := d.upload(C.data)
					d.sgemm(tA, tB, m, n, k, alpha, d.upload(A.data), A.ld, d.upload(B.data), B.ld, beta, cP, C.ld)
					got := d.download(cP, len(C.data))
					// The padding rows keep their NaN bits; within() cannot compare NaN.
					for j := range n {
						for i := m; i < C.ld; i++ {
							if math.Float32bits(got[i+j*C.ld]) != math.Float32bits(C.data[i+j*C.ld]) {
								t.Fatalf("padding C[%d + %d·ldc] changed", i, j)
							}
							got[i+j*C.ld], want[i+j*C.ld] = 0, 0
						}
					}
					worst := within(t, "C", got, want, func(i int) float64 { return tol[i] })
					t.Logf("worst |diff|/bound %.3f", worst)
				})
			}
		}
	}
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
	d := dev{t, e}
	cP := d.upload(C.data)
	d.sgemm(true, false, m, n, k, alpha, d.upload(A.data), A.ld, d.upload(B.data), B.ld, beta, cP, C.ld)
	sameBits(t, "C", d.download(cP, len(want)), want)
}

// A row-major caller computes C = A·B with the operand swap
// Sgemm(false, false, n, m, k, 1, B, n, A, k, 0, C, n); the result matches
// gonum's row-major blas32.Gemm.
func TestSgemmRowMajorSwapMatchesGonum(t *testing.T) {
	r := newRand(t)
	for _, dims := range [][3]int{{256, 64, 40}, {5, 3, 1}, {1, 7, 9}, {33, 1, 4}} {
		m, n, k := dims[0], dims[1], dims[2]
		a, b := randn(r, m*k, 1), randn(r, k*n, 1)
		want := make([]float32, m*n)
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
			blas32.General{Rows: m, Cols: k, Stride: k, Data: a},
			blas32.General{Rows: k, Cols: n, Stride: n, Data: b},
			0, blas32.General{Rows: m, Cols: n, Stride: n, Data: want})
		e := New(Options{})
		d := dev{t, e}
		c := d.alloc(m * n)
		d.sgemm(false, false, n, m, k, 1, d.upload(b), n, d.upload(a), k, 0, c, n)
		within(t, fmt.Sprint(dims), d.download(c, m*n), f64s(want), func(i int) float64 {
			row, col := i/n, i%n
			var mag float64
			for l := range k {
				mag += math.Abs(float64(a[row*k+l]) * float64(b[l*n+col]))
			}
			return 2 * float64(k+2) * u * mag
		})
		e.Close()
	}
}

func TestSgemmChecksItsOperands(t *testing.T) {
	newDev := func(t *testing.T) (*Emulator, dev, cuda.Ptr, cuda.Ptr, cuda.Ptr) {
		e := New(Options{})
		t.Cleanup(func() { e.Close() })
		d := dev{t, e}
		return e, d, d.alloc(4 * 6), d.alloc(6 * 5), d.alloc(4 * 5)
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
