// Package emulator is a cuda.Device that runs on the CPU: the executable
// spec of the device path, and the device every `go test` uses.
//
// It runs the very source of the kernels, ../kernels/kernels.cu, compiled by
// g++ through cgo with a small shim (shim.h, emu.cpp), and implements cuBLAS's
// Sgemm literally from its documented column-major semantics (sgemm.go).
// Device memory is host memory behind fake addresses (Ptr values from
// 0x10000000 up, 256-byte aligned, never reused, with gaps between
// allocations), so a host pointer or a stale Ptr never reaches real memory.
//
// It is stricter than a GPU, so that a bug shows here first:
//   - every Ptr argument of a launch, of a copy and of an Sgemm is checked
//     against its allocation for the whole extent the kernel or the call
//     will touch (computed from the other arguments, and for the gather
//     kernels from the indices themselves): *cuda.Error with
//     cuda.ErrIllegalAddress, naming the argument;
//   - outputs must not overlap inputs (except the identical in-place ranges
//     an elementwise kernel allows): cuda.ErrBadArgument;
//   - kernel arguments are typed (cuda.Ptr, int32 or int, float32; nothing
//     else) and sizes must keep the kernels' int indices below 2^31;
//   - an illegal address poisons the device, as it poisons a CUDA context:
//     every later launch, Sgemm, copy, Alloc and Synchronize fails;
//   - new memory is filled with NaN (0x7fc0dead), so reading memory nobody
//     wrote shows up in the results;
//   - an optional memory cap (Options.MemCap) makes Alloc fail with
//     *cuda.MemError, to exercise out-of-memory paths;
//   - counters (Counters) record launches per kernel, GEMMs, bytes copied
//     each way, host syncs, allocations and memory, so tests can pin the
//     cost of a training step.
//
// Kernels run one launch at a time in the whole process (a package lock
// guards emu.cpp's global launch state). A kernel without __syncthreads runs
// its blocks and threads one after another on the calling thread (bias_act
// on 256×64 takes about 60 µs). One with it (prob_loss) runs each block with
// one pthread per CUDA thread and a pthread barrier per __syncthreads, whose
// cost grows with the block: about 2 ms at 64 threads, 6 ms at 128 and 18 ms
// at 256 on a 2-core machine, so tests should launch it with small blocks.
// Sgemm runs at about 2.7 GFLOP/s (0.5 ms for 256×40×64). Races between
// blocks, warp-level behaviour and the GPU's math library (a few ulps from
// glibc's) are not reproduced: compare results within tolerances, never bit
// for bit with a GPU.
//
// Imports: cgo and the cuda tree's pure packages (cuda, cuda/kernels); never
// gorgonia.org/cu (this package must build and run without CUDA), and
// nothing from engine/ outside tests. Only tests and benchmarks should link
// it: the server binary stays free of cgo kernels.
package emulator
