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
