package devicetest

import (
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// colMajor is a column-major matrix as cuBLAS stores it: element (i, j) at
// data[i + j·ld].
type colMajor struct {
	rows, cols, ld int
	data           []float32
}

func (m colMajor) at(i, j int) float32 { return m.data[i+j*m.ld] }

func randColMajor(t testing.TB, rows, cols, ld int) colMajor {
	return colMajor{rows, cols, ld, Randn(NewRand(t), ld*cols, 1)}
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
func testSgemmFormula(t *testing.T, d Dev) {
	const m, n, k = 13, 11, 17
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, ab := range [][2]float32{{0.7, -1.3}, {1, 0}, {-2, 1}} {
				name := fmt.Sprintf("transA=%t,transB=%t,alpha=%g,beta=%g", tA, tB, ab[0], ab[1])
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
				cP := d.Upload(C.data)
				d.Sgemm(tA, tB, m, n, k, alpha, d.Upload(A.data), A.ld, d.Upload(B.data), B.ld, beta, cP, C.ld)
				got := d.Download(cP, len(C.data))
				// The padding rows keep their NaN bits; within() cannot compare NaN.
				for j := range n {
					for i := m; i < C.ld; i++ {
						if math.Float32bits(got[i+j*C.ld]) != math.Float32bits(C.data[i+j*C.ld]) {
							t.Fatalf("%s: padding C[%d + %d·ldc] changed", name, i, j)
						}
						got[i+j*C.ld], want[i+j*C.ld] = 0, 0
					}
				}
				worst := within(t, name+": C", got, want, func(i int) float64 { return tol[i] })
				t.Logf("%s: worst |diff|/bound %.3f", name, worst)
			}
		}
	}
}

// A row-major caller computes C = A·B with the operand swap
// Sgemm(false, false, n, m, k, 1, B, n, A, k, 0, C, n), as the executor
// does; the result matches gonum's row-major blas32.Gemm within the float32
// dot-product bound.
func testSgemmRowMajor(t *testing.T, d Dev) {
	r := NewRand(t)
	for _, dims := range [][3]int{{256, 64, 40}, {5, 3, 1}, {1, 7, 9}, {33, 1, 4}, {1024, 256, 256}} {
		m, n, k := dims[0], dims[1], dims[2]
		a, b := Randn(r, m*k, 1), Randn(r, k*n, 1)
		want := make([]float32, m*n)
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
			blas32.General{Rows: m, Cols: k, Stride: k, Data: a},
			blas32.General{Rows: k, Cols: n, Stride: n, Data: b},
			0, blas32.General{Rows: m, Cols: n, Stride: n, Data: want})
		c := d.Alloc(m * n)
		d.Sgemm(false, false, n, m, k, 1, d.Upload(b), n, d.Upload(a), k, 0, c, n)
		within(t, fmt.Sprint(dims), d.Download(c, m*n), f64s(want), func(i int) float64 {
			row, col := i/n, i%n
			var mag float64
			for l := range k {
				mag += math.Abs(float64(a[row*k+l]) * float64(b[l*n+col]))
			}
			return 2 * float64(k+2) * u * mag
		})
	}
}
