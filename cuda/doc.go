// Package cuda runs the engine's Gorgonia graph on a device: the Device
// interface and its written contract, the typed CUDA errors, and the names
// of the kernels in kernels/*.cu. Implementations sit beside it: the CPU
// emulator (package cuda/emulator, cgo, always built, used by tests and
// benchmarks) and the gorgonia.org/cu device (build tag gpu, linked only
// into cmd/kairoscope-cuda).
//
// This package itself imports neither cgo nor gorgonia.org/cu, so the
// server and the CPU worker can name its types without linking CUDA.
package cuda
