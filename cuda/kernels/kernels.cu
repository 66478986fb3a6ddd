// kernels.cu: the device half of the engine's custom ops (engine/ops) and of
// its optimizer (engine/optim), in float32.
//
// One source, two compilers:
//   - nvcc -ptx (gen.go) turns it into kernels.ptx, which kernels.go embeds
//     and the gpu device loads;
//   - g++ compiles it inside cuda/emulator (emu.cpp includes shim.h, then
//     this file), so every test runs exactly this code on the CPU.
// To stay inside what the emulator runs faithfully:
//   - launches are 1-D (blockIdx.x, threadIdx.x only) and every loop is a
//     grid-stride loop, so any grid and block size computes the same result;
//   - blocks have at most KS_MAX_BLOCK threads (CUDA's own limit), of any
//     count (not only powers of two);
//   - block-level reductions use static __shared__ arrays, __syncthreads and
//     one atomicAdd per block and value; no warp shuffles, votes, cooperative
//     groups, dynamic shared memory or half types;
//   - only math functions that exist both in device code and in <math.h>.
//
// Indices are int: the caller (the emulator checks it) keeps every extent
// plus grid·block below 2^31.
//
// Numerics follow engine/ops and engine/optim; each kernel states its formula
// and shapes. Matrices are row-major, [rows, cols]. nvcc contracts a·b+c into
// FMAs (--fmad=true, the default), so results differ from the CPU's in the
// last bits; tests compare within stated tolerances.

#define KS_MAX_BLOCK 1024
#define KS_SIGMA_EPS 1e-4f              // engine/ops SigmaEps
#define KS_HALF_LOG_2PI 0.918938533204672742f  // 0.5·log(2π)

#define KS_FOR(i, n) \
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// softplus(x) = log(1 + e^x) without overflow (engine/ops Softplus).
__device__ __forceinline__ float ks_softplus(float x) {
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

// sigmoid(x) = 1/(1 + e^-x) without overflow (engine/ops Sigmoid).
__device__ __forceinline__ float ks_sigmoid(float x) {
    if (x >= 0.0f) {
        return 1.0f / (1.0f + expf(-x));
    }
    float e = expf(x);
    return e / (1.0f + e);
}

// ks_block_sum leaves, for each of the nv arrays sh[0..nv), the sum over the
// block of sh[k][0..blockDim.x) in sh[k][0]. Every thread of the block must
// call it (it synchronises); one tree serves all nv arrays, so the barriers
// do not multiply with nv. Works for any block size up to KS_MAX_BLOCK: the
// tree starts at half the next power of two and skips partners beyond the
// block.
__device__ __forceinline__ void ks_block_sum(float (*sh)[KS_MAX_BLOCK], int nv) {
    unsigned int t = threadIdx.x;
    unsigned int p = 1;
    while (p < blockDim.x) {
        p <<= 1;
    }
    __syncthreads();
    for (unsigned int s = p >> 1; s > 0; s >>= 1) {
        if (t < s && t + s < blockDim.x) {
            for (int k = 0; k < nv; k++) {
                sh[k][t] += sh[k][t + s];
            }
        }
        __syncthreads();
    }
}

// bias_act: the dense layer's epilogue after the GEMM wrote x·w into y.
//   y [rows, cols], b [cols]:  y[i] = act(y[i] + b[i % cols])
//   act = ReLU when relu != 0, else identity.
// ReLU is written (z <= 0 ? 0 : z) so that it equals Go's max(z, 0) bit for
// bit: NaN stays NaN (as torch.relu) and -0 becomes +0. fmaxf would turn NaN
// into 0 and hide a diverging run.
extern "C" __global__ void bias_act(float* y, const float* b, int rows, int cols, int relu) {
    int n = rows * cols;
    KS_FOR(i, n) {
        float z = y[i] + b[i % cols];
        y[i] = (relu != 0 && z <= 0.0f) ? 0.0f : z;
    }
}

// relu_grad: ReLU's backward pass, read off the forward output y = relu(z).
//   dz, dy, y [n]:  dz[i] = y[i] > 0 ? dy[i] : 0
// dz may be dy or y (in place): each element is read before it is written
// by the same thread.
extern "C" __global__ void relu_grad(float* dz, const float* dy, const float* y, int n) {
    KS_FOR(i, n) {
        dz[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    }
}

// col_sum: the bias gradient, a sum over rows.
//   out [cols], x [rows, cols]:  out[j] = Σ_i x[i*cols + j]
// One thread per column adds the rows in order, so the result is
// deterministic and equal, bit for bit, to engine/ops ColSumOp (which
// accumulates row by row in float32). Neighbouring threads read neighbouring
// columns, so the loads coalesce. Enough for batches of a few thousand rows;
// a much taller x would want a two-level reduction.
extern "C" __global__ void col_sum(float* out, const float* x, int rows, int cols) {
    KS_FOR(j, cols) {
        float s = 0.0f;
        for (int i = 0; i < rows; i++) {
            s += x[i * cols + j];
        }
        out[j] = s;
    }
}

// prob_loss: the weighted sums of engine/ops ProbLoss, ADDED into acc (the
// caller zeroes acc first; repeated launches accumulate).
//   acc [5], out [n, 3] = rows (mu, s, logit), r [n], wt [n]:
//   sigma_i = softplus(s_i) + 1e-4
//   nll_i   = 0.5·log(2π) + log sigma_i + 0.5·((r_i − mu_i)/sigma_i)²
//   bce_i   = softplus(logit_i) − y_i·logit_i,   y_i = 1[r_i > 0]
//   acc[0] += Σ wt_i·(nll_i + bce_w·bce_i)   (the loss is acc[0]/acc[1])
//   acc[1] += Σ wt_i
//   acc[2] += Σ wt_i·nll_i
//   acc[3] += Σ wt_i·bce_i
//   acc[4] += Σ wt_i·(sigmoid(logit_i) − y_i)²   (Brier)
// Rows with wt_i == 0 are skipped before any of their values is read, so a
// padding row adds exactly nothing even when it holds NaN. Each thread sums
// its rows, the block reduces in shared memory, and thread 0 adds the five
// block sums with atomicAdd (the order across blocks is not fixed).
extern "C" __global__ void prob_loss(float* acc, const float* out, const float* r, const float* wt,
                                     int n, float bce_w) {
    __shared__ float sh[5][KS_MAX_BLOCK];
    float s_loss = 0.0f, s_w = 0.0f, s_nll = 0.0f, s_bce = 0.0f, s_brier = 0.0f;
    KS_FOR(i, n) {
        float w = wt[i];
        if (w == 0.0f) {
            continue;
        }
        float mu = out[3 * i], s = out[3 * i + 1], logit = out[3 * i + 2], ri = r[i];
        float sigma = ks_softplus(s) + KS_SIGMA_EPS;
        float z = (ri - mu) / sigma;
        float nll = KS_HALF_LOG_2PI + logf(sigma) + 0.5f * z * z;
        float bce = ks_softplus(logit);
        float e = ks_sigmoid(logit);
        if (ri > 0.0f) {
            bce -= logit;
            e -= 1.0f;
        }
        s_loss += w * (nll + bce_w * bce);
        s_w += w;
        s_nll += w * nll;
        s_bce += w * bce;
        s_brier += w * e * e;
    }
    unsigned int t = threadIdx.x;
    sh[0][t] = s_loss;
    sh[1][t] = s_w;
    sh[2][t] = s_nll;
    sh[3][t] = s_bce;
    sh[4][t] = s_brier;
    ks_block_sum(sh, 5);
    if (t == 0) {
        for (int k = 0; k < 5; k++) {
            atomicAdd(&acc[k], sh[k][0]);
        }
    }
}

// prob_loss_grad: engine/ops ProbLossGradOp, with W = acc[1] = Σ wt from
// prob_loss (no second reduction).
//   d, out [n, 3], r, wt [n], acc [≥ 2], g = the upstream gradient:
//   d_i = g·wt_i/W · (∂/∂mu, ∂/∂s, ∂/∂logit)(nll_i + bce_w·bce_i)
//   ∂/∂mu    = −(r_i − mu_i)/sigma_i²
//   ∂/∂s     = (1/sigma_i − (r_i − mu_i)²/sigma_i³)·sigmoid(s_i)
//   ∂/∂logit = bce_w·(sigmoid(logit_i) − y_i)
// Rows with wt_i == 0 get 0 whatever their values (and W is not read for
// them, so W == 0 divides nothing).
extern "C" __global__ void prob_loss_grad(float* d, const float* out, const float* r, const float* wt,
                                          const float* acc, int n, float bce_w, float g) {
    KS_FOR(i, n) {
        float w = wt[i];
        if (w == 0.0f) {
            d[3 * i] = 0.0f;
            d[3 * i + 1] = 0.0f;
            d[3 * i + 2] = 0.0f;
            continue;
        }
        float mu = out[3 * i], s = out[3 * i + 1], logit = out[3 * i + 2], ri = r[i];
        float c = g / acc[1] * w;
        float sigma = ks_softplus(s) + KS_SIGMA_EPS;
        float inv = 1.0f / sigma;
        float e = (ri - mu) * inv;
        float y = ri > 0.0f ? 1.0f : 0.0f;
        d[3 * i] = c * (-e * inv);
        d[3 * i + 1] = c * ((inv - e * e * inv) * ks_sigmoid(s));
        d[3 * i + 2] = c * (bce_w * (ks_sigmoid(logit) - y));
    }
}

// adam_update: torch.optim.Adam's step (engine/optim Adam) on n elements,
// with the two scalars engine/optim's StepScalars(t) returns:
//   step_size = lr/(1 − b1^t), bc2_sqrt = sqrt(1 − b2^t)
//   m = b1·m + (1 − b1)·g
//   v = b2·v + (1 − b2)·g²
//   w −= step_size · (m / (sqrt(v)/bc2_sqrt + eps))
// (1 − b1) and (1 − b2) are formed here in float32 (exact subtractions of the
// float32 betas); engine/optim rounds them from float64, a few ulps away.
extern "C" __global__ void adam_update(float* w, const float* g, float* m, float* v, float step_size,
                                       float b1, float b2, float eps, float bc2_sqrt, int n) {
    float c1 = 1.0f - b1, c2 = 1.0f - b2;
    KS_FOR(i, n) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] -= step_size * (mi / denom);
    }
}

// gather_rows: a minibatch of rows from a fold's data on the device.
//   dst [rows, cols], src [?, cols], idx [n_valid], 0 <= n_valid <= rows:
//   dst[k, :] = src[idx[k], :] for k < n_valid, 0 for k >= n_valid (padding)
extern "C" __global__ void gather_rows(float* dst, const float* src, const int* idx, int rows, int cols,
                                       int n_valid) {
    int n = rows * cols;
    KS_FOR(i, n) {
        int k = i / cols;
        dst[i] = k < n_valid ? src[idx[k] * cols + (i - k * cols)] : 0.0f;
    }
}

// gather_targets: the minibatch's targets and row weights.
//   r, wt [rows], y [?], idx [n_valid], 0 <= n_valid <= rows:
//   r[k] = y[idx[k]], wt[k] = 1 for k < n_valid; r[k] = 0, wt[k] = 0 beyond
// (weight 0 makes prob_loss and prob_loss_grad skip the padding rows).
extern "C" __global__ void gather_targets(float* r, float* wt, const float* y, const int* idx, int rows,
                                          int n_valid) {
    KS_FOR(k, rows) {
        bool valid = k < n_valid;
        r[k] = valid ? y[idx[k]] : 0.0f;
        wt[k] = valid ? 1.0f : 0.0f;
    }
}

// fill: x [n], x[i] = v (zeroes accumulators, sets the loss seed).
extern "C" __global__ void fill(float* x, float v, int n) {
    KS_FOR(i, n) {
        x[i] = v;
    }
}

// add_into: dst, src [n], dst[i] += src[i] (adds a step's prob_loss sums into
// the epoch's on the device, so an epoch needs no host sync until its end).
extern "C" __global__ void add_into(float* dst, const float* src, int n) {
    KS_FOR(i, n) {
        dst[i] += src[i];
    }
}
