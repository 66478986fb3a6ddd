// shim.h: just enough of CUDA's device-side language for g++ to compile
// ../kernels/kernels.cu into the emulator. emu.cpp includes it before the
// kernels; nvcc never sees it.
//
// Execution model (emu.cpp runs each launch in one of two modes):
//   EMU_SEQ: the blocks, and the threads of each block, run one after
//            another on the calling thread. __syncthreads() cannot be honoured
//            and makes the launch fail (kernels that use it run in EMU_PAR).
//   EMU_PAR: one pthread per thread of a block; the blocks run one after
//            another; __syncthreads() is a pthread barrier, so shared-memory
//            reductions run as on a GPU (within one block).
// Not emulated: warp-level primitives (shuffles, votes, warp-synchronous
// code), cooperative groups, dynamic (extern) __shared__, half types,
// textures, streams. kernels.cu uses none of them.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

// Shared memory: one static instance per kernel. Correct because the
// emulator runs one block at a time (all its threads see the same instance,
// as on a GPU) and one launch at a time (the Go side holds a lock). Unlike a
// GPU's, it starts zeroed; kernels must not rely on either.
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// threadIdx and blockIdx belong to the emulated thread (an OS thread in
// EMU_PAR); blockDim and gridDim to the launch.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

void __syncthreads();

// atomicAdd on float: a compare-and-swap loop on the bit pattern, atomic
// across the EMU_PAR threads. Returns the old value, as CUDA's does.
static inline float atomicAdd(float* addr, float val) {
    uint32_t* p = (uint32_t*)addr;
    uint32_t old = __atomic_load_n(p, __ATOMIC_SEQ_CST), nw;
    float f;
    do {
        memcpy(&f, &old, 4);
        f += val;
        memcpy(&nw, &f, 4);
    } while (!__atomic_compare_exchange_n(p, &old, nw, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    memcpy(&f, &old, 4);
    return f;
}
static inline int atomicAdd(int* addr, int val) { return __atomic_fetch_add(addr, val, __ATOMIC_SEQ_CST); }

// Fast-math intrinsics map to the precise libm functions.
#define __expf expf
#define __logf logf
#define __fdividef(a, b) ((a) / (b))
#define rsqrtf(x) (1.0f / sqrtf(x))
