// emu.h: the C interface of emu.cpp, one launcher per kernel of
// ../kernels/kernels.cu, for launch.go (cgo). Each returns 0 or an EMU_ERR_*.
#pragma once
#define EMU_SEQ 0
#define EMU_PAR 1
#define EMU_ERR_SYNC_IN_SEQ 1 // __syncthreads() in EMU_SEQ mode
#define EMU_ERR_THREADS 2     // pthread_create or pthread_barrier_init failed
#ifdef __cplusplus
extern "C" {
#endif
int emu_bias_act(int mode, int grid, int block, float* y, const float* b, int rows, int cols, int relu);
int emu_relu_grad(int mode, int grid, int block, float* dz, const float* dy, const float* y, int n);
int emu_col_sum(int mode, int grid, int block, float* out, const float* x, int rows, int cols);
int emu_prob_loss(int mode, int grid, int block, float* acc, const float* out, const float* r, const float* wt,
                  int n, float bce_w);
int emu_prob_loss_grad(int mode, int grid, int block, float* d, const float* out, const float* r,
                       const float* wt, const float* acc, int n, float bce_w, float g);
int emu_adam_update(int mode, int grid, int block, float* w, const float* g, float* m, float* v,
                    float step_size, float b1, float b2, float eps, float bc2_sqrt, int n);
int emu_gather_rows(int mode, int grid, int block, float* dst, const float* src, const int* idx, int rows,
                    int cols, int n_valid);
int emu_gather_targets(int mode, int grid, int block, float* r, float* wt, const float* y, const int* idx,
                       int rows, int n_valid);
int emu_fill(int mode, int grid, int block, float* x, float v, int n);
int emu_add_into(int mode, int grid, int block, float* dst, const float* src, int n);
#ifdef __cplusplus
}
#endif
