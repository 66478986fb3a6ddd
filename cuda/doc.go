// Package cuda runs the engine's Gorgonia graph on a device: the Device
// interface and its written contract (device.go), the typed CUDA errors
// (errors.go), and the executor (executor.go, program.go) that interprets
// the model's schedule (model.Schedule, the training graph lowered once by
// engine/model) as cuBLAS GEMMs and kernels of kernels/kernels.cu, and
// trains with the parameters, Adam state and fold data kept on the device.
//
// Implementations of Device: the CPU emulator (package cuda/emulator, cgo,
// used by tests and benchmarks) and the gorgonia.org/cu device
// (device_gpu.go, build tag gpu, linked only into cmd/kairoscope-cuda), which
// loads cuBLAS at run time through package cuda/cublas.
// Without the gpu tag this package imports neither cgo nor gorgonia.org/cu;
// it does import Gorgonia's graph and engine/model, whose graph it runs.
package cuda
