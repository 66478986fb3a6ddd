//go:build gpu

// Command kairoscope-cuda is the GPU worker: `kairoscope-cuda worker` reads
// one job spec on stdin and writes its messages as JSON lines on stdout,
// like `kairoscope worker`, but trains on an NVIDIA GPU through
// gorgonia.org/cu. Build it with `make build-gpu` (tag gpu).
//
// Without a GPU or driver it exits with status 1 before writing anything:
// gorgonia.org/cu's init calls cuInit and exits on failure, and a missing
// libcuda stops the loader earlier still. The server then runs the job on
// the CPU worker (--device auto) or reports training_error (--device gpu).
package main
