//go:build !openblas

package ops

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS names the implementation the float32 GEMMs run on: gonum's pure-Go
// BLAS unless blas32.Use installed another (build with the openblas tag
// for OpenBLAS).
func BLAS() string {
	if _, ok := blas32.Implementation().(gonum.Implementation); ok {
		return "gonum (pure Go)"
	}
	return fmt.Sprintf("%T (blas32.Use)", blas32.Implementation())
}

// sgemm is row-major C = op(A)·op(B) + beta·C on blas32's implementation;
// gemm32 has checked the lengths.
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	blas32.Implementation().Sgemm(transpose(tA), transpose(tB), m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}
