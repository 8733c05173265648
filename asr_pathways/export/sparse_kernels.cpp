// Block-sparse x dense kernels for BlockSparseLinear (asr_pathways/export/sparse_linear.py).
//
// Built on first use by torch.utils.cpp_extension (g++ -O3 -march=native -fopenmp) and called
// through ctypes; plain C ABI, no torch headers, so the build takes about a second.
//
// Weight formats (out_features x in_features, fp32):
//   8x1  "BSR with 8x1 blocks": block row i covers output rows 8i..8i+7; its kept blocks are
//        k in [indptr[i], indptr[i+1]), input column cols[k], the 8 values vals[8k .. 8k+7].
//   1x1  CSR: row i, k in [indptr[i], indptr[i+1]), column cols[k], value vals[k].
// Inputs x are row-major (N, ldx). For N == 1 (decoding) each block row is a short dot product with
// 8-wide vector accumulators. For N > 1 the caller passes x transposed and zero-padded, xt (in, np)
// with np a multiple of 16, and each kept block does an 8 x 16 outer-product update held in
// registers. Outputs are written straight into y (N, ldy), rows past `out` are never written.
// Threads: OpenMP over block rows, `nthreads` chosen by the caller (1 = no parallel region).
#include <cstdint>
#include <cstring>

typedef float v8f __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));

static inline v8f ld8(const float* p) { v8f v; std::memcpy(&v, p, sizeof v); return v; }
static inline v16f ld16(const float* p) { v16f v; std::memcpy(&v, p, sizeof v); return v; }

static inline void store_rows8(v8f a, float* __restrict y, const float* __restrict bias, int64_t row0, int64_t out) {
    float t[8];
    std::memcpy(t, &a, sizeof t);
    int64_t n = out - row0 < 8 ? out - row0 : 8;
    for (int64_t r = 0; r < n; ++r) y[row0 + r] = t[r] + (bias ? bias[row0 + r] : 0.0f);
}

static inline void bsr8_row_vec(int64_t i, const int32_t* __restrict indptr, const int32_t* __restrict cols,
                                const float* __restrict vals, const float* __restrict x,
                                const float* __restrict bias, float* __restrict y, int64_t out) {
    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int64_t k = indptr[i];
    const int64_t e = indptr[i + 1];
    for (; k + 4 <= e; k += 4) {
        a0 += x[cols[k]] * ld8(vals + 8 * k);
        a1 += x[cols[k + 1]] * ld8(vals + 8 * (k + 1));
        a2 += x[cols[k + 2]] * ld8(vals + 8 * (k + 2));
        a3 += x[cols[k + 3]] * ld8(vals + 8 * (k + 3));
    }
    for (; k < e; ++k) a0 += x[cols[k]] * ld8(vals + 8 * k);
    store_rows8((a0 + a1) + (a2 + a3), y, bias, 8 * i, out);
}

static inline void bsr8_row_tile(int64_t i, int64_t c0, const int32_t* __restrict indptr, const int32_t* __restrict cols,
                                 const float* __restrict vals, const float* __restrict xt, int64_t np,
                                 const float* __restrict bias, float* __restrict y, int64_t ldy, int64_t n, int64_t out) {
    v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
    const int64_t e = indptr[i + 1];
    for (int64_t k = indptr[i]; k < e; ++k) {
        const v16f xv = ld16(xt + (int64_t)cols[k] * np + c0);
        const float* v = vals + 8 * k;
        a0 += v[0] * xv; a1 += v[1] * xv; a2 += v[2] * xv; a3 += v[3] * xv;
        a4 += v[4] * xv; a5 += v[5] * xv; a6 += v[6] * xv; a7 += v[7] * xv;
    }
    v16f acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    const int64_t nb = n - c0 < 16 ? n - c0 : 16;
    for (int r = 0; r < 8; ++r) {
        const int64_t row = 8 * i + r;
        if (row >= out) break;
        float t[16];
        std::memcpy(t, &acc[r], sizeof t);
        const float b = bias ? bias[row] : 0.0f;
        for (int64_t j = 0; j < nb; ++j) y[(c0 + j) * ldy + row] = t[j] + b;
    }
}

static inline void csr_row_vec(int64_t i, const int32_t* __restrict indptr, const int32_t* __restrict cols,
                               const float* __restrict vals, const float* __restrict x,
                               const float* __restrict bias, float* __restrict y) {
    // gathers x[cols[k]] 16 at a time where the CPU has AVX-512 (reassociated sum: float rounding)
    float acc = 0.f;
    const int64_t b = indptr[i], e = indptr[i + 1];
#pragma omp simd reduction(+ : acc)
    for (int64_t k = b; k < e; ++k) acc += vals[k] * x[cols[k]];
    y[i] = acc + (bias ? bias[i] : 0.0f);
}

static inline void csr_row_tile(int64_t i, int64_t c0, const int32_t* __restrict indptr, const int32_t* __restrict cols,
                                const float* __restrict vals, const float* __restrict xt, int64_t np,
                                const float* __restrict bias, float* __restrict y, int64_t ldy, int64_t n) {
    v16f a0 = {0}, a1 = {0};
    int64_t k = indptr[i];
    const int64_t e = indptr[i + 1];
    for (; k + 2 <= e; k += 2) {
        a0 += vals[k] * ld16(xt + (int64_t)cols[k] * np + c0);
        a1 += vals[k + 1] * ld16(xt + (int64_t)cols[k + 1] * np + c0);
    }
    if (k < e) a0 += vals[k] * ld16(xt + (int64_t)cols[k] * np + c0);
    a0 += a1;
    float t[16];
    std::memcpy(t, &a0, sizeof t);
    const int64_t nb = n - c0 < 16 ? n - c0 : 16;
    const float b = bias ? bias[i] : 0.0f;
    for (int64_t j = 0; j < nb; ++j) y[(c0 + j) * ldy + i] = t[j] + b;
}

extern "C" {

int asrp_sparse_abi_version() { return 1; }

// y[b, :out] = W x[b] + bias for b < n; x row-major with leading dimension ldx.
void asrp_bsr8_mv(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                  const float* x, int64_t ldx, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
    const int64_t nbr = (out + 7) / 8;
    for (int64_t b = 0; b < n; ++b) {
        const float* xb = x + b * ldx;
        float* yb = y + b * ldy;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
        for (int64_t i = 0; i < nbr; ++i) bsr8_row_vec(i, indptr, cols, vals, xb, bias, yb, out);
    }
}

// xt: (in, np) transposed, zero-padded input, np % 16 == 0, np >= n.
void asrp_bsr8_mm(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                  const float* xt, int64_t np, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
    const int64_t nbr = (out + 7) / 8;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (int64_t i = 0; i < nbr; ++i)
        for (int64_t c0 = 0; c0 < n; c0 += 16) bsr8_row_tile(i, c0, indptr, cols, vals, xt, np, bias, y, ldy, n, out);
}

void asrp_csr_mv(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                 const float* x, int64_t ldx, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
    for (int64_t b = 0; b < n; ++b) {
        const float* xb = x + b * ldx;
        float* yb = y + b * ldy;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
        for (int64_t i = 0; i < out; ++i) csr_row_vec(i, indptr, cols, vals, xb, bias, yb);
    }
}

void asrp_csr_mm(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                 const float* xt, int64_t np, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (int64_t i = 0; i < out; ++i)
        for (int64_t c0 = 0; c0 < n; c0 += 16) csr_row_tile(i, c0, indptr, cols, vals, xt, np, bias, y, ldy, n);
}

}  // extern "C"
