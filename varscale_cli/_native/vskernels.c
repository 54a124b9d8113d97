/* Compiled float32 transforms for varscale: the numpy reference path of
 * varscale_cli/core/stream/transforms.py, fused.
 *
 * Every function performs the same IEEE-754 float32 operations in the same order as the
 * numpy code it replaces, element by element, so the bytes are identical (tests compare both
 * paths on every distribution and dtype). That holds because the build uses
 * -ffp-contract=off (no a*b+c fused into an FMA) and no -ffast-math; comparisons, selects,
 * integer operations and int-to-float conversions of |k| < 2^24 are exact anyway.
 *
 * Coefficients come from the caller (varscale_cli/core/stream/coefficients.py, the same
 * float32 values numpy uses): parsing decimal literals here could round differently from
 * numpy's decimal -> double -> float path.
 *
 * The functions are plain C called through ctypes (which releases the GIL), so sampling
 * threads run them in parallel. The module init below only makes this a loadable extension.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

/* float arithmetic must be evaluated in float (C99 FLT_EVAL_METHOD 0), as numpy's ufuncs do:
 * x87 maths (32-bit x86 without SSE2) keeps 80-bit intermediates and changes the bytes. setup.py
 * asks for -msse2 -mfpmath=sse there; a compiler that still evaluates wider fails here, the
 * optional build is skipped and the numpy path (same bytes, slower) runs. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "varscale's kernels need float maths evaluated in float (FLT_EVAL_METHOD 0; SSE2 on 32-bit x86)"
#endif

/* Wider vectors where the CPU has them, chosen at load time (GCC function multiversioning):
 * the same IEEE operations give the same results at any vector width, and -ffp-contract=off
 * keeps FMA units from fusing anything. A build on a CPU or compiler without it falls back
 * to the baseline instruction set. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VS_CLONES
#endif

/* out[i] = ((bits[i] >> 8) | 1) * scale: transforms.symmetric_f32. */
VS_CLONES void vs_uniform_f32(const int32_t *restrict bits, float *restrict out, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        int32_t k = (bits[i] >> 8) | 1;
        out[i] = (float)k * scale;
    }
}

/* Horner's rule, highest degree first, as transforms._horner computes it: x * c[0] + c[1], then
 * one multiply and one add per term. Called with constant n, it is fully unrolled, so the
 * element loops around it still vectorise. */
static inline float vs_horner(float x, const float *restrict c, int n) {
    float r = x * c[0] + c[1];
#pragma GCC unroll 16
    for (int k = 2; k < n; k++) r = r * x + c[k];
    return r;
}

/* The shared head of both normals: x, then w = -log((1 - x)(1 + x)) - 2.5 and the central
 * polynomial, exactly as transforms.neg_log_f32 and erfinv_f32 compute them. */
#define VS_CENTRAL(i)                                                        \
    int32_t k = (bits[i] >> 8) | 1;                                          \
    float x = (float)k * xscale;                                             \
    float y = (1.0f - x) * (1.0f + x);                                       \
    int32_t yi;                                                              \
    memcpy(&yi, &y, 4);                                                      \
    int32_t e = 127 - (yi >> 23);                                            \
    int32_t mi = (yi & 0x007FFFFF) | 0x3F800000;                             \
    float m;                                                                 \
    memcpy(&m, &mi, 4);                                                      \
    float t = m + 1.0f;                                                      \
    float s = (m - 1.0f) / t;                                                \
    float s2 = s * s;                                                        \
    float logm = vs_horner(s2, at, 7) * s;                                   \
    float el = (float)e * ln2;                                               \
    float w = (el - 2.5f) - logm;                                            \
    float c = vs_horner(w, ce, 9);

/* Truncated normal: x uniform on (-erf(sqrt 2), erf(sqrt 2)), central branch only, clip. */
VS_CLONES void vs_truncnormal_f32(const int32_t *restrict bits, float *restrict out, int64_t n,
                        float xscale, float outscale, float bound, float ln2,
                        const float *restrict at, const float *restrict ce) {
    for (int64_t i = 0; i < n; i++) {
        VS_CENTRAL(i)
        float v = c * x;
        v = v * outscale;
        v = v < -bound ? -bound : v; /* np.clip = minimum(maximum(v, -bound), bound) */
        v = v > bound ? bound : v;
        out[i] = v;
    }
}

/* Untruncated normal: the tail polynomial in sqrt(w) where w >= 5 (selected, branch-free). */
VS_CLONES void vs_normal_f32(const int32_t *restrict bits, float *restrict out, int64_t n,
                   float xscale, float outscale, float ln2, const float *restrict at,
                   const float *restrict ce, const float *restrict ta) {
    for (int64_t i = 0; i < n; i++) {
        VS_CENTRAL(i)
        float r = __builtin_sqrtf(w + 2.5f) - 3.0f;
        float q = vs_horner(r, ta, 9);
        /* Bitwise select (exact, and it keeps the loop branch-free so it vectorises). */
        int32_t mask = -(int32_t)(w >= 2.5f), qb, cb;
        memcpy(&qb, &q, 4);
        memcpy(&cb, &c, 4);
        cb = (qb & mask) | (cb & ~mask);
        memcpy(&c, &cb, 4);
        float v = c * x;
        out[i] = v * outscale;
    }
}

/* Statistics of a float32 chunk for varscale stats (not bit-reproducibility: this is
 * measurement, and summation order only moves the last bits). Finite values only go into the
 * moments; out = {n_finite, mean, m2, m3, m4, min, max, zeros, nans, infs, below, above},
 * m_k = sum (x - mean)^k. Sums run in double, in VS_LANES interleaved partial sums (element i
 * goes to lane i % VS_LANES) added together at the end; the caller merges chunks pairwise
 * (Chan's formulas), so each sum spans one chunk and its double rounding error stays many
 * orders of magnitude below float32 resolution. */
#define VS_LANES 8

/* The general case: any value may be NaN or infinite (counted, kept out of the moments). */
static void vs_moments_any(const float *restrict x, int64_t n, double lo, double hi, double *restrict out) {
    int64_t nfin = 0, zeros = 0, nans = 0, infs = 0, below = 0, above = 0;
    double total = 0.0, mn = __builtin_inf(), mx = -__builtin_inf();
    for (int64_t i = 0; i < n; i++) {
        double v = (double)x[i];
        if (v != v) { nans++; continue; }
        if (v == __builtin_inf() || v == -__builtin_inf()) { infs++; continue; }
        nfin++;
        total += v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        zeros += (v == 0.0);
        below += (v < lo);
        above += (v > hi);
    }
    double mean = nfin ? total / (double)nfin : 0.0, m2 = 0.0, m3 = 0.0, m4 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v = (double)x[i];
        if (!(v - v == 0.0)) continue; /* NaN or infinity */
        double d = v - mean, d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    out[0] = (double)nfin; out[1] = mean; out[2] = m2; out[3] = m3; out[4] = m4;
    out[5] = mn; out[6] = mx; out[7] = (double)zeros; out[8] = (double)nans;
    out[9] = (double)infs; out[10] = (double)below; out[11] = (double)above;
}

/* The usual case, all values finite: VS_LANES independent accumulators per quantity, so the
 * loops vectorise without -ffast-math (which would let the compiler reorder sums itself).
 * A non-finite sum reveals a NaN or infinity; then the general version runs instead. */
VS_CLONES void vs_moments_f32(const float *restrict x, int64_t n, double lo, double hi, double *restrict out) {
    double sum[VS_LANES] = {0}, mn[VS_LANES], mx[VS_LANES];
    int64_t zeros[VS_LANES] = {0}, below[VS_LANES] = {0}, above[VS_LANES] = {0};
    for (int k = 0; k < VS_LANES; k++) { mn[k] = __builtin_inf(); mx[k] = -__builtin_inf(); }
    int64_t body = n - n % VS_LANES;
    for (int64_t i = 0; i < body; i += VS_LANES) {
        for (int k = 0; k < VS_LANES; k++) {
            double v = (double)x[i + k];
            sum[k] += v;
            mn[k] = v < mn[k] ? v : mn[k];
            mx[k] = v > mx[k] ? v : mx[k];
            zeros[k] += (v == 0.0);
            below[k] += (v < lo);
            above[k] += (v > hi);
        }
    }
    double total = 0.0, lo_v = __builtin_inf(), hi_v = -__builtin_inf();
    int64_t nz = 0, nb = 0, na = 0;
    for (int k = 0; k < VS_LANES; k++) {
        total += sum[k];
        lo_v = mn[k] < lo_v ? mn[k] : lo_v;
        hi_v = mx[k] > hi_v ? mx[k] : hi_v;
        nz += zeros[k]; nb += below[k]; na += above[k];
    }
    for (int64_t i = body; i < n; i++) {
        double v = (double)x[i];
        total += v;
        lo_v = v < lo_v ? v : lo_v;
        hi_v = v > hi_v ? v : hi_v;
        nz += (v == 0.0); nb += (v < lo); na += (v > hi);
    }
    if (!(total - total == 0.0)) { /* a NaN or an infinity somewhere */
        vs_moments_any(x, n, lo, hi, out);
        return;
    }
    double mean = n ? total / (double)n : 0.0;
    double s2[VS_LANES] = {0}, s3[VS_LANES] = {0}, s4[VS_LANES] = {0};
    for (int64_t i = 0; i < body; i += VS_LANES) {
        for (int k = 0; k < VS_LANES; k++) {
            double d = (double)x[i + k] - mean, d2 = d * d;
            s2[k] += d2;
            s3[k] += d2 * d;
            s4[k] += d2 * d2;
        }
    }
    double m2 = 0.0, m3 = 0.0, m4 = 0.0;
    for (int k = 0; k < VS_LANES; k++) { m2 += s2[k]; m3 += s3[k]; m4 += s4[k]; }
    for (int64_t i = body; i < n; i++) {
        double d = (double)x[i] - mean, d2 = d * d;
        m2 += d2; m3 += d2 * d; m4 += d2 * d2;
    }
    out[0] = (double)n; out[1] = mean; out[2] = m2; out[3] = m3; out[4] = m4;
    out[5] = lo_v; out[6] = hi_v; out[7] = (double)nz; out[8] = 0.0;
    out[9] = 0.0; out[10] = (double)nb; out[11] = (double)na;
}

static struct PyModuleDef vskernels_module = {
    PyModuleDef_HEAD_INIT, "vskernels",
    "varscale's compiled float32 transforms (C functions called through ctypes).", -1, NULL,
};

PyMODINIT_FUNC PyInit_vskernels(void) { return PyModule_Create(&vskernels_module); }
