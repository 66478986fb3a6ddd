// Command gpucheck is the prepared GPU check (make gpu-check; see
// benchmarks/README.md, "The GPU check").
//
//	gpucheck prepare -dir .gpucheck   on the CPU machine, after make gpu-check
//	                                  has built the binaries into .gpucheck/bin:
//	                                  checks what each needs to load, writes the
//	                                  job specs and the emulator's counts, packs
//	                                  the binaries
//	gpucheck run -dir .gpucheck -bin DIR -out OUT
//	                                  on the GPU machine (benchmarks/gpucheck/run.sh
//	                                  unpacks the binaries and runs it): nvidia-smi,
//	                                  cuBLAS, the device suite, a training run and an
//	                                  out-of-memory run of the GPU worker, and the
//	                                  GPU epoch benchmark beside PyTorch on CUDA,
//	                                  written to OUT/report.md as it goes
//
// It runs no Go toolchain on the GPU machine: everything it starts there was
// built here. Imports: package benchmarks (so cgo and the emulator, linked
// with a static libstdc++), package worker's Spec for the job specs, and
// debug/elf; never gorgonia.org/cu.
package main
