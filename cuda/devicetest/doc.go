// Package devicetest is the conformance suite of cuda.Device: Run checks,
// through the Device interface alone, every kernel of cuda/kernels on fresh
// random inputs against the engine's own CPU code (engine/ops,
// engine/optim), Sgemm against cuBLAS's column-major definition, memory,
// copies and errors, and a few epochs of the executor against the CPU
// engine. Any Device runs it: the emulator in every `go test`
// (cuda/emulator's TestConformance), the real GPU through this package's
// gpu-tagged test (`go test -c -tags gpu ./cuda/devicetest`, built on a CPU
// machine and run on a GPU one; see benchmarks/gpucheck).
//
// It is stricter than no test and looser than the emulator's own tests:
// every comparison has a stated tolerance that a GPU's different summation
// order and math library stay within, and none depends on the emulator's
// counters or its bounds checks.
//
// Imports: package cuda (the interface and the executor), the engine's
// model, ops and optim, Gorgonia, and testing. Never cuda/emulator or
// gorgonia.org/cu outside its tests: the suite must run on any device.
package devicetest
