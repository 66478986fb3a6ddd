package emulator

import (
	"fmt"

	"github.com/kairoscope/kairoscope/cuda"
)

// Sgemm is cublasSgemm, implemented from its documentation: column-major
// storage, element (i, j) of an r×c matrix X with leading dimension ldx at
// X[i + j·ldx];
//
//	C = alpha·op(A)·op(B) + beta·C,   op(A) m×k, op(B) k×n, C m×n,
//
// op(X) = Xᵀ when its trans flag is set. So A is m×k (lda ≥ max(1, m)), or
// k×m (lda ≥ max(1, k)) when transA; B is k×n (ldb ≥ max(1, k)), or n×k
// (ldb ≥ max(1, n)) when transB; ldc ≥ max(1, m). A row-major caller
// computing C = A·B (A m×k, B k×n) swaps the operands:
// Sgemm(false, false, n, m, k, 1, B, n, A, k, 0, C, n).
//
// Arithmetic: each element is s = Σ_l op(A)(i,l)·op(B)(l,j), accumulated in
// float32 in increasing l, every product rounded to float32 (no FMA), then
// C(i,j) = alpha·s + beta·C(i,j). As in the reference BLAS: beta == 0 sets C
// without reading it (NaN in C does not propagate), alpha == 0 or k == 0
// reads neither A nor B, m == 0 or n == 0 does nothing. The result is fully
// determined (bit for bit on every platform); cuBLAS's is not (its blocking
// and FMAs change the last bits).
//
// Errors: cuda.ErrBLAS (CUBLAS_STATUS_INVALID_VALUE, not sticky) for a
// negative size, a size beyond int32 or a leading dimension below its
// minimum; cuda.ErrIllegalAddress (sticky) when an operand's extent leaves
// its allocation (A needs (k−1)·lda + m words, or (m−1)·lda + k when
// transA, likewise B and C); cuda.ErrBadArgument when C overlaps A or B.
// Every successful call counts one GEMM.
func (e *Emulator) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.Ptr, lda int,
	b cuda.Ptr, ldb int, beta float32, c cuda.Ptr, ldc int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	const op = "cublasSgemm"
	if err := e.usable(op); err != nil {
		return err
	}
	invalid := func(format string, args ...any) error {
		return &cuda.Error{Op: op, Result: "CUBLAS_STATUS_INVALID_VALUE", Hint: fmt.Sprintf(format, args...), Err: cuda.ErrBLAS}
	}
	rowsA, rowsB := m, k // rows of A and B as stored
	colsA, colsB := k, n
	if transA {
		rowsA, colsA = k, m
	}
	if transB {
		rowsB, colsB = n, k
	}
	switch {
	case m < 0 || n < 0 || k < 0:
		return invalid("m = %d, n = %d, k = %d: sizes must be ≥ 0", m, n, k)
	case m > maxInt32 || n > maxInt32 || k > maxInt32 || lda > maxInt32 || ldb > maxInt32 || ldc > maxInt32:
		return invalid("sizes and leading dimensions are C ints: m = %d, n = %d, k = %d, lda = %d, ldb = %d, ldc = %d",
			m, n, k, lda, ldb, ldc)
	case lda < max(1, rowsA):
		return invalid("lda = %d < max(1, %d), the rows of A as stored (transA = %t)", lda, rowsA, transA)
	case ldb < max(1, rowsB):
		return invalid("ldb = %d < max(1, %d), the rows of B as stored (transB = %t)", ldb, rowsB, transB)
	case ldc < max(1, m):
		return invalid("ldc = %d < max(1, m = %d)", ldc, m)
	}
	if m == 0 || n == 0 {
		e.c.Gemms++
		return nil
	}
	// extent is the words a column-major r×c matrix with leading dimension
	// ld spans: its last element is (r−1) + (c−1)·ld.
	extent := func(r, c, ld int) int64 {
		if r == 0 || c == 0 {
			return 0
		}
		return int64(c-1)*int64(ld) + int64(r)
	}
	readsAB := k > 0 && alpha != 0
	var na, nb int64
	if k > 0 {
		// Checked whenever k > 0, even when alpha == 0 makes cuBLAS skip them:
		// a bad operand is a bug whatever alpha is.
		na, nb = extent(rowsA, colsA, lda), extent(rowsB, colsB, ldb)
	}
	nc := extent(m, n, ldc)
	illegal := func(err error) error {
		return e.poison(&cuda.Error{Op: op, Result: "CUDA_ERROR_ILLEGAL_ADDRESS", Hint: err.Error(), Err: cuda.ErrIllegalAddress})
	}
	A, err := e.span(a, na, fmt.Sprintf("A (%d×%d, lda %d)", rowsA, colsA, lda))
	if err != nil {
		return illegal(err)
	}
	B, err := e.span(b, nb, fmt.Sprintf("B (%d×%d, ldb %d)", rowsB, colsB, ldb))
	if err != nil {
		return illegal(err)
	}
	C, err := e.span(c, nc, fmt.Sprintf("C (%d×%d, ldc %d)", m, n, ldc))
	if err != nil {
		return illegal(err)
	}
	overlap := func(p cuda.Ptr, np int64) bool {
		return np > 0 && p < c+cuda.Ptr(nc*sizeofF32) && c < p+cuda.Ptr(np*sizeofF32)
	}
	if overlap(a, na) || overlap(b, nb) {
		return &cuda.Error{Op: op, Result: "CUBLAS_STATUS_INVALID_VALUE",
			Hint: "C overlaps A or B: cuBLAS does not compute in place", Err: cuda.ErrBadArgument}
	}
	sgemm(transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, readsAB)
	e.c.Gemms++
	return nil
}

// sgemm computes on checked column-major slices (see Sgemm). Column j of C
// is accumulated in s, l outermost, so that A is read down its columns when
// it is not transposed; every s[i] still sums its products in increasing l.
func sgemm(transA, transB bool, m, n, k int, alpha float32, A []float32, lda int, B []float32, ldb int,
	beta float32, C []float32, ldc int, readsAB bool) {
	s := make([]float32, m)
	for j := range n {
		col := C[j*ldc : j*ldc+m]
		if !readsAB {
			for i := range col {
				if beta == 0 {
					col[i] = 0
				} else {
					col[i] = beta * col[i]
				}
			}
			continue
		}
		clear(s)
		for l := range k {
			var blj float32
			if transB {
				blj = B[l*ldb+j]
			} else {
				blj = B[j*ldb+l]
			}
			if transA {
				for i := range s {
					s[i] += float32(A[i*lda+l] * blj)
				}
			} else {
				al := A[l*lda : l*lda+m]
				for i := range s {
					s[i] += float32(al[i] * blj)
				}
			}
		}
		for i := range col {
			if beta == 0 {
				col[i] = alpha * s[i]
			} else {
				col[i] = float32(alpha*s[i]) + float32(beta*col[i])
			}
		}
	}
}
