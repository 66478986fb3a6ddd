// Package cublas loads NVIDIA's cuBLAS at run time and calls the few entry
// points the device path uses (handle create/destroy, set stream, Sgemm,
// version queries), so that the GPU worker needs no cuBLAS at load time and
// one binary runs with cuBLAS 11, 12 or 13.
//
// cuBLAS versions its symbols by soname (cublasSgemm_v2@libcublas.so.11), so a
// binary linked against one major version does not start where only another
// is installed. Load instead dlopen()s libcublas.so.13, .12 and .11 in that
// order (or the one path the user gives, $KAIROSCOPE_CUBLAS), looks the entry
// points up with dlsym, reads the library's version and refuses a major
// version it does not know or one built for a newer CUDA than the driver
// supports, saying why for every candidate.
//
// Nothing here needs a GPU: loading, symbol lookup and the version queries
// run on any machine that has the library, which is how the tests exercise
// it with Debian's CUDA 11.8 cuBLAS. A Handle must be created and used on a
// thread where the caller's CUDA context is current (package cuda runs every
// call inside cu's Ctx.Do).
//
// Imports: cgo and libdl only; never gorgonia.org/cu or its blas subpackage
// (which link libcuda and libcublas), never a cuBLAS header or library at
// build time. Only the gpu-tagged device (cuda/device_gpu.go) uses it.
package cublas
