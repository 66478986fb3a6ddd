// emu.cpp: runs ../kernels/kernels.cu on the CPU (compiled by cgo with g++).
// One launch at a time: the Go side (launch.go) holds a process-wide lock,
// because the launch state below and the kernels' static __shared__ arrays
// are global.
//
// Floating point: IEEE single operations, no contraction into FMAs (cgo
// refuses -ffp-contract in #cgo flags, hence the pragma), so results are the
// same on every host; x86-64 would not contract without -mfma anyway, arm64
// would.
#pragma GCC optimize("fp-contract=off")

#include <pthread.h>

#include <vector>

#include "shim.h"
#include "../kernels/kernels.cu"
#include "emu.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;

static int g_mode;  // EMU_SEQ or EMU_PAR for the running launch
static pthread_barrier_t g_barrier;
static int g_error;  // EMU_ERR_SYNC_IN_SEQ when a kernel synchronised in EMU_SEQ

void __syncthreads() {
    if (g_mode == EMU_PAR) {
        pthread_barrier_wait(&g_barrier);
    } else {
        __atomic_store_n(&g_error, EMU_ERR_SYNC_IN_SEQ, __ATOMIC_SEQ_CST);
    }
}

// The EMU_PAR start gate: the threads of a launch wait until all of them
// exist (go = 1), or leave at once when one could not be created (go = 2),
// so that a failed pthread_create never leaves the others stuck at a barrier.
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static int g_go;

struct worker_arg {
    unsigned int tid;
    void (*call)(void*);
    void* body;
};

static void* worker(void* p) {
    worker_arg* a = (worker_arg*)p;
    pthread_mutex_lock(&g_gate_mu);
    while (g_go == 0) pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    int go = g_go;
    pthread_mutex_unlock(&g_gate_mu);
    if (go != 1) return nullptr;
    threadIdx = {a->tid, 0, 0};
    for (unsigned int bx = 0; bx < gridDim.x; bx++) {
        blockIdx = {bx, 0, 0};
        a->call(a->body);
        // Block boundary: no thread starts the next block (and reuses the
        // static shared memory) before all have finished this one.
        pthread_barrier_wait(&g_barrier);
    }
    return nullptr;
}

static void open_gate(int go) {
    pthread_mutex_lock(&g_gate_mu);
    g_go = go;
    pthread_cond_broadcast(&g_gate_cv);
    pthread_mutex_unlock(&g_gate_mu);
}

template <class F>
static void call_body(void* f) {
    (*(F*)f)();
}

// launch runs body once per thread of a 1-D grid of 1-D blocks.
template <class F>
static int launch(int mode, int grid, int block, F body) {
    g_mode = mode;
    g_error = 0;
    gridDim = dim3(grid);
    blockDim = dim3(block);
    if (mode == EMU_SEQ) {
        for (unsigned int bx = 0; bx < (unsigned int)grid; bx++) {
            blockIdx = {bx, 0, 0};
            for (unsigned int tx = 0; tx < (unsigned int)block; tx++) {
                threadIdx = {tx, 0, 0};
                body();
            }
        }
        return g_error;
    }
    if (pthread_barrier_init(&g_barrier, nullptr, (unsigned int)block) != 0) return EMU_ERR_THREADS;
    g_go = 0;
    std::vector<pthread_t> th(block);
    std::vector<worker_arg> args(block);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int created = 0;
    for (int t = 0; t < block; t++) {
        args[t] = {(unsigned int)t, call_body<F>, &body};
        if (pthread_create(&th[t], &attr, worker, &args[t]) != 0) break;
        created++;
    }
    open_gate(created == block ? 1 : 2);
    for (int t = 0; t < created; t++) pthread_join(th[t], nullptr);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&g_barrier);
    return created == block ? g_error : EMU_ERR_THREADS;
}

extern "C" {

int emu_bias_act(int mode, int grid, int block, float* y, const float* b, int rows, int cols, int relu) {
    return launch(mode, grid, block, [=] { bias_act(y, b, rows, cols, relu); });
}

int emu_relu_grad(int mode, int grid, int block, float* dz, const float* dy, const float* y, int n) {
    return launch(mode, grid, block, [=] { relu_grad(dz, dy, y, n); });
}

int emu_col_sum(int mode, int grid, int block, float* out, const float* x, int rows, int cols) {
    return launch(mode, grid, block, [=] { col_sum(out, x, rows, cols); });
}

int emu_prob_loss(int mode, int grid, int block, float* acc, const float* out, const float* r, const float* wt,
                  int n, float bce_w) {
    return launch(mode, grid, block, [=] { prob_loss(acc, out, r, wt, n, bce_w); });
}

int emu_prob_loss_grad(int mode, int grid, int block, float* d, const float* out, const float* r,
                       const float* wt, const float* acc, int n, float bce_w, float g) {
    return launch(mode, grid, block, [=] { prob_loss_grad(d, out, r, wt, acc, n, bce_w, g); });
}

int emu_adam_update(int mode, int grid, int block, float* w, const float* g, float* m, float* v,
                    float step_size, float b1, float b2, float eps, float bc2_sqrt, int n) {
    return launch(mode, grid, block, [=] { adam_update(w, g, m, v, step_size, b1, b2, eps, bc2_sqrt, n); });
}

int emu_gather_rows(int mode, int grid, int block, float* dst, const float* src, const int* idx, int rows,
                    int cols, int n_valid) {
    return launch(mode, grid, block, [=] { gather_rows(dst, src, idx, rows, cols, n_valid); });
}

int emu_gather_targets(int mode, int grid, int block, float* r, float* wt, const float* y, const int* idx,
                       int rows, int n_valid) {
    return launch(mode, grid, block, [=] { gather_targets(r, wt, y, idx, rows, n_valid); });
}

int emu_fill(int mode, int grid, int block, float* x, float v, int n) {
    return launch(mode, grid, block, [=] { fill(x, v, n); });
}

int emu_add_into(int mode, int grid, int block, float* dst, const float* src, int n) {
    return launch(mode, grid, block, [=] { add_into(dst, src, n); });
}

}  // extern "C"
