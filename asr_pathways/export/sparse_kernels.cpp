// Block-sparse x dense kernels for BlockSparseLinear (asr_pathways/export/sparse_linear.py).
//
// Built on first use by torch.utils.cpp_extension.load (g++ -O3 -march=native -fopenmp) as a Python
// extension module (pybind11, shipped with torch's headers). Its one entry point, `linear`, takes
// the tensors themselves and does the reshaping, allocation, transposition and kernel choice in C++,
// so that a call costs about 1-2 µs more than the arithmetic (the earlier ctypes binding: ~10 µs).
//
// Weight formats (out_features x in_features, fp32):
//   8x1  "BSR with 8x1 blocks": block row i covers output rows 8i..8i+7; its kept blocks are
//        k in [indptr[i], indptr[i+1]), input column cols[k], the 8 values vals[8k .. 8k+7].
//   1x1  CSR: row i, k in [indptr[i], indptr[i+1]), column cols[k], value vals[k].
// Inputs x are row-major (N, ldx). For small N (decoding) each block row is a short dot product with
// 8-wide vector accumulators. For larger N the input is transposed and zero-padded, xt (in, np) with
// np a multiple of 16, and each kept block does an 8 x 16 outer-product update held in registers.
// Outputs are written straight into y (N, ldy), rows past `out` are never written.
// Threads: OpenMP over block rows, `nthreads` chosen by the caller (1 = no parallel region).
#include <cstdint>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif

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
    // transpose the 8 x 16 tile through a small buffer and write 16 runs of (up to) 8 outputs
    float t[8][16];
    std::memcpy(t[0], &a0, 64); std::memcpy(t[1], &a1, 64); std::memcpy(t[2], &a2, 64); std::memcpy(t[3], &a3, 64);
    std::memcpy(t[4], &a4, 64); std::memcpy(t[5], &a5, 64); std::memcpy(t[6], &a6, 64); std::memcpy(t[7], &a7, 64);
    const int64_t nb = n - c0 < 16 ? n - c0 : 16;
    const int64_t row0 = 8 * i;
    const int64_t nr = out - row0 < 8 ? out - row0 : 8;
    float b[8];
    for (int r = 0; r < 8; ++r) b[r] = (bias && r < nr) ? bias[row0 + r] : 0.0f;
    if (nr == 8) {
        for (int64_t j = 0; j < nb; ++j) {
            v8f o = {t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j], t[6][j], t[7][j]};
            o += ld8(b);
            std::memcpy(y + (c0 + j) * ldy + row0, &o, 32);
        }
    } else {
        for (int64_t j = 0; j < nb; ++j)
            for (int64_t r = 0; r < nr; ++r) y[(c0 + j) * ldy + row0 + r] = t[r][j] + b[r];
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

namespace {

// xt[k * np + j] = x[j * ldx + k] for j < n, k < in; columns n .. np-1 of xt are set to 0.
static void transpose_pad(const float* __restrict x, int64_t n, int64_t in, int64_t ldx, float* __restrict xt, int64_t np) {
    int64_t j0 = 0;
#if defined(__AVX__)
    for (; j0 + 8 <= n; j0 += 8) {
        int64_t k0 = 0;
        for (; k0 + 8 <= in; k0 += 8) {  // 8 x 8 tile: the classic unpack/shuffle/permute transpose
            __m256 r0 = _mm256_loadu_ps(x + (j0 + 0) * ldx + k0), r1 = _mm256_loadu_ps(x + (j0 + 1) * ldx + k0);
            __m256 r2 = _mm256_loadu_ps(x + (j0 + 2) * ldx + k0), r3 = _mm256_loadu_ps(x + (j0 + 3) * ldx + k0);
            __m256 r4 = _mm256_loadu_ps(x + (j0 + 4) * ldx + k0), r5 = _mm256_loadu_ps(x + (j0 + 5) * ldx + k0);
            __m256 r6 = _mm256_loadu_ps(x + (j0 + 6) * ldx + k0), r7 = _mm256_loadu_ps(x + (j0 + 7) * ldx + k0);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            _mm256_storeu_ps(xt + (k0 + 0) * np + j0, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(xt + (k0 + 1) * np + j0, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(xt + (k0 + 2) * np + j0, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(xt + (k0 + 3) * np + j0, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(xt + (k0 + 4) * np + j0, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(xt + (k0 + 5) * np + j0, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(xt + (k0 + 6) * np + j0, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(xt + (k0 + 7) * np + j0, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; k0 < in; ++k0)
            for (int64_t j = j0; j < j0 + 8; ++j) xt[k0 * np + j] = x[j * ldx + k0];
    }
#endif
    for (int64_t k = 0; k < in; ++k) {
        for (int64_t j = j0; j < n; ++j) xt[k * np + j] = x[j * ldx + k];
        for (int64_t j = n; j < np; ++j) xt[k * np + j] = 0.0f;
    }
}

// y[b, :out] = W x[b] + bias for b < n; x row-major with leading dimension ldx.
static void asrp_bsr8_mv(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
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
static void asrp_bsr8_mm(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                  const float* xt, int64_t np, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
    // tiles of 16 input rows outside, so that xt[:, c0:c0+16] stays in cache across block rows
    const int64_t nbr = (out + 7) / 8;
    const int64_t ntiles = (n + 15) / 16;
#pragma omp parallel for collapse(2) schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (int64_t c = 0; c < ntiles; ++c)
        for (int64_t i = 0; i < nbr; ++i) bsr8_row_tile(i, 16 * c, indptr, cols, vals, xt, np, bias, y, ldy, n, out);
}

static void asrp_csr_mv(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                 const float* x, int64_t ldx, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
    for (int64_t b = 0; b < n; ++b) {
        const float* xb = x + b * ldx;
        float* yb = y + b * ldy;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
        for (int64_t i = 0; i < out; ++i) csr_row_vec(i, indptr, cols, vals, xb, bias, yb);
    }
}

static void asrp_csr_mm(int64_t out, const int32_t* indptr, const int32_t* cols, const float* vals,
                 const float* xt, int64_t np, int64_t n, const float* bias, float* y, int64_t ldy, int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (int64_t i = 0; i < out; ++i)
        for (int64_t c0 = 0; c0 < n; c0 += 16) csr_row_tile(i, c0, indptr, cols, vals, xt, np, bias, y, ldy, n);
}

}  // namespace

// ----------------------------------------------------------------------------- Python binding
#include <torch/extension.h>

namespace {

// rows of x up to which the per-row (dot product) kernel is used for 8x1 blocks
constexpr int64_t kMvMaxRows8 = 4;

at::Tensor linear(const at::Tensor& x_in, const at::Tensor& indptr, const at::Tensor& cols, const at::Tensor& values,
                  const c10::optional<at::Tensor>& bias_in, int64_t out_features, int64_t nthreads,
                  int64_t parallel_min_work) {
    TORCH_CHECK(x_in.device().is_cpu(), "sparse linear: x must be on the CPU");
    TORCH_CHECK(x_in.dim() >= 1, "sparse linear: x must have at least one dimension");
    TORCH_CHECK(indptr.scalar_type() == at::kInt && cols.scalar_type() == at::kInt && indptr.is_contiguous() &&
                    cols.is_contiguous(), "sparse linear: indptr and cols must be contiguous int32");
    TORCH_CHECK(values.scalar_type() == at::kFloat && values.is_contiguous() && values.dim() == 2 &&
                    (values.size(1) == 8 || values.size(1) == 1), "sparse linear: values must be contiguous float32 (nnzb, 8|1)");
    const int64_t r = values.size(1);
    TORCH_CHECK(indptr.numel() == (out_features + r - 1) / r + 1, "sparse linear: indptr does not match out_features");
    const int64_t in_features = x_in.size(-1);
    at::Tensor x = x_in.reshape({-1, in_features});
    if (x.scalar_type() != at::kFloat) x = x.to(at::kFloat);
    const int64_t n = x.size(0);
    if (x.stride(1) != 1 || (n > 1 && x.stride(0) < in_features)) x = x.contiguous();
    std::vector<int64_t> out_sizes = x_in.sizes().vec();
    out_sizes.back() = out_features;
    at::Tensor y = at::empty({n, out_features}, x.options());
    if (n > 0 && out_features > 0) {
        const float* bptr = nullptr;
        at::Tensor b;
        if (bias_in.has_value() && bias_in->defined()) {
            b = *bias_in;
            if (b.scalar_type() != at::kFloat || !b.is_contiguous() || !b.device().is_cpu()) b = b.to(at::kCPU, at::kFloat).contiguous();
            TORCH_CHECK(b.numel() == out_features, "sparse linear: bias has the wrong size");
            bptr = b.data_ptr<float>();
        }
        int nt = static_cast<int>(nthreads);
        if (nt <= 0) nt = values.numel() * n >= parallel_min_work ? at::get_num_threads() : 1;
        const int32_t* ip = indptr.data_ptr<int32_t>();
        const int32_t* cp = cols.data_ptr<int32_t>();
        const float* vp = values.data_ptr<float>();
        float* yp = y.data_ptr<float>();
        if (n == 1 || (r == 8 && n <= kMvMaxRows8)) {
            const int64_t ldx = n > 1 ? x.stride(0) : in_features;
            (r == 8 ? asrp_bsr8_mv : asrp_csr_mv)(out_features, ip, cp, vp, x.data_ptr<float>(), ldx, n, bptr, yp, out_features, nt);
        } else {
            const int64_t np = (n + 15) / 16 * 16;
            at::Tensor xt = at::empty({in_features, np}, x.options());
            transpose_pad(x.data_ptr<float>(), n, in_features, x.stride(0), xt.data_ptr<float>(), np);
            (r == 8 ? asrp_bsr8_mm : asrp_csr_mm)(out_features, ip, cp, vp, xt.data_ptr<float>(), np, n, bptr, yp, out_features, nt);
        }
    }
    y = y.view(out_sizes);
    return x_in.scalar_type() == at::kFloat ? y : y.to(x_in.scalar_type());
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.attr("ABI_VERSION") = 2;
    m.def("linear", &linear, "y = x @ W.T + bias for a packed 8x1-block (BSR) or 1x1 (CSR) weight W",
          py::arg("x"), py::arg("indptr"), py::arg("cols"), py::arg("values"), py::arg("bias"),
          py::arg("out_features"), py::arg("nthreads"), py::arg("parallel_min_work"),
          py::call_guard<py::gil_scoped_release>());
}
