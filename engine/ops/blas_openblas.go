//go:build openblas

package ops

// Built with the openblas tag, the float32 GEMMs call OpenBLAS's
// cblas_sgemm through cgo: the build needs libopenblas-dev (-lopenblas)
// and the binary libopenblas.so.0 at run time. float64 (tests only) stays
// on gonum's blas64.

/*
#cgo LDFLAGS: -lopenblas
// From OpenBLAS's cblas.h, whose enums are ints: the header is not needed.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
)

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// OpenBLAS runs on one thread unless OPENBLAS_NUM_THREADS or
// OMP_NUM_THREADS says otherwise: the model's GEMMs are small (256×64×64),
// and with two threads on a 2-core machine its workers spin-wait, doubling
// the CPU used for about 6% less wall time (shared/notes/gorgonia-cu.md).
func init() {
	if os.Getenv("OPENBLAS_NUM_THREADS") == "" && os.Getenv("OMP_NUM_THREADS") == "" {
		C.openblas_set_num_threads(1)
	}
}

// BLAS names the implementation the float32 GEMMs run on: OpenBLAS, its
// configuration and thread count.
func BLAS() string {
	cfg := strings.TrimSpace(C.GoString(C.openblas_get_config()))
	return fmt.Sprintf("%s (cgo, %d thread(s))", cfg, int(C.openblas_get_num_threads()))
}

func cblasTranspose(t bool) C.int {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

// sgemm is row-major C = op(A)·op(B) + beta·C through cblas_sgemm; gemm32
// has checked the lengths (m, n, k ≥ 1).
func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.cblas_sgemm(cblasRowMajor, cblasTranspose(tA), cblasTranspose(tB), C.int(m), C.int(n), C.int(k),
		1, (*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb),
		C.float(beta), (*C.float)(&c[0]), C.int(ldc))
}
