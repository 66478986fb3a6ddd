package kernels

// kernels.ptx is generated and committed, so a build needs no CUDA toolkit;
// TestPTXIsFresh runs this very line and fails when the two differ. Run
// `go generate ./cuda/kernels` after editing kernels.cu.
//
//go:generate nvcc -ptx -arch=compute_70 -O3 -o kernels.ptx kernels.cu
