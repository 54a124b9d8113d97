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
 * m_k = sum (x - mean)^k. Sums run in double; the caller merges chunks pairwise (Chan's
 * formulas), so each sum spans one chunk and its double rounding error stays many orders of
 * magnitude below float32 resolution. */

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

/* The usual case, all values finite: blocks of VS_MBLOCK elements (8 KiB, in L1 between a
 * block's two passes), each block's moments about its own mean merged into the running ones
 * (Chan et al. for m2, Pebay for m3 and m4), so the chunk is read from memory once. GCC/clang
 * vector extensions carry the lanes: the autovectoriser does not vectorise these mixed-width
 * reductions without -ffast-math, and each lane performs the same IEEE operations in the same
 * order at any vector width, so the results do not depend on the clone that runs. A non-finite
 * block sum reveals a NaN or infinity; then the general version runs on the whole chunk. */
#define VS_MBLOCK 2048

typedef float vs_f4 __attribute__((vector_size(16)));
typedef float vs_f8 __attribute__((vector_size(32)));
typedef int32_t vs_i8 __attribute__((vector_size(32)));
typedef double vs_d4 __attribute__((vector_size(32)));

/* Lane-wise a where mask (all ones) else b; comparisons give all-ones (-1) for true. */
#define VS_SELECT(mask, a, b) ((vs_f8)(((mask) & (vs_i8)(a)) | (~(mask) & (vs_i8)(b))))
#define VS_SPLAT8(v) {v, v, v, v, v, v, v, v}

/* The float next to f towards +infinity (up) or -infinity (down), f not NaN: the bit pattern
 * of a float orders like its value within each sign. */
static float vs_next_float(float f, int up) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (f == 0.0f) u = up ? 1u : 0x80000001u;
    else if ((u >> 31) == (up ? 1u : 0u)) u--;
    else u++;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The smallest float >= v (up) or the largest float <= v (down): a float x is < lo exactly
 * when it is < the smallest float >= lo, and > hi exactly when it is > the largest <= hi. */
static float vs_float_bound(double v, int up) {
    /* Out of float's range first: C leaves that conversion undefined outside IEEE Annex F. */
    if (v > FLT_MAX) return (up || v == __builtin_inf()) ? __builtin_inff() : FLT_MAX;
    if (v < -FLT_MAX) return (!up || v == -__builtin_inf()) ? -__builtin_inff() : -FLT_MAX;
    float f = (float)v;
    if (f != f) return f; /* NaN: every comparison is false, as with the double */
    return (up ? (double)f < v : (double)f > v) ? vs_next_float(f, up) : f;
}

VS_CLONES void vs_moments_f32(const float *restrict x, int64_t n, double lo, double hi, double *restrict out) {
    const float lo_f = vs_float_bound(lo, 1), hi_f = vs_float_bound(hi, 0);
    const vs_f8 lo8 = VS_SPLAT8(lo_f), hi8 = VS_SPLAT8(hi_f), zero8 = {0};
    double cnt = 0.0, mean = 0.0, m2 = 0.0, m3 = 0.0, m4 = 0.0;
    float mn = __builtin_inff(), mx = -__builtin_inff();
    int64_t nz = 0, nb = 0, na = 0;
    for (int64_t b0 = 0; b0 < n; b0 += VS_MBLOCK) {
        const float *restrict xb = x + b0;
        const int64_t m = n - b0 < VS_MBLOCK ? n - b0 : VS_MBLOCK;
        const int64_t body = m - m % 16;
        /* Pass 1: the sum (four double accumulators of four lanes), min, max and counts
         * (int32 lanes: a block has at most 2048 elements). */
        vs_d4 sum[4] = {{0}};
        vs_f8 mn_a = VS_SPLAT8(mn), mn_b = mn_a, mx_a = VS_SPLAT8(mx), mx_b = mx_a;
        vs_i8 z8 = {0}, b8 = {0}, a8 = {0};
        for (int64_t i = 0; i < body; i += 16) {
            for (int j = 0; j < 4; j++) {
                vs_f4 q;
                memcpy(&q, xb + i + 4 * j, sizeof q);
                sum[j] += __builtin_convertvector(q, vs_d4);
            }
            vs_f8 w, u; /* two registers' worth: two independent min/max chains */
            memcpy(&w, xb + i, sizeof w);
            memcpy(&u, xb + i + 8, sizeof u);
            mn_a = VS_SELECT(w < mn_a, w, mn_a);
            mx_a = VS_SELECT(w > mx_a, w, mx_a);
            mn_b = VS_SELECT(u < mn_b, u, mn_b);
            mx_b = VS_SELECT(u > mx_b, u, mx_b);
            z8 -= (w == zero8) + (u == zero8);
            b8 -= (w < lo8) + (u < lo8);
            a8 -= (w > hi8) + (u > hi8);
        }
        vs_d4 st = (sum[0] + sum[1]) + (sum[2] + sum[3]);
        double s = (st[0] + st[1]) + (st[2] + st[3]);
        mn_a = VS_SELECT(mn_b < mn_a, mn_b, mn_a);
        mx_a = VS_SELECT(mx_b > mx_a, mx_b, mx_a);
        for (int k = 0; k < 8; k++) {
            mn = mn_a[k] < mn ? mn_a[k] : mn;
            mx = mx_a[k] > mx ? mx_a[k] : mx;
        }
        for (int k = 0; k < 8; k++) { nz += z8[k]; nb += b8[k]; na += a8[k]; }
        for (int64_t i = body; i < m; i++) {
            float v = xb[i];
            s += (double)v;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            nz += (v == 0.0f); nb += (v < lo_f); na += (v > hi_f);
        }
        if (!(s - s == 0.0)) { /* a NaN or an infinity somewhere */
            vs_moments_any(x, n, lo, hi, out);
            return;
        }
        /* Pass 2, on the block still in L1: power sums about the block's mean. */
        const double bm = s / (double)m;
        const vs_d4 bm4 = {bm, bm, bm, bm};
        vs_d4 p2[4] = {{0}}, p3[4] = {{0}}, p4[4] = {{0}};
        for (int64_t i = 0; i < body; i += 16) {
            for (int j = 0; j < 4; j++) {
                vs_f4 q;
                memcpy(&q, xb + i + 4 * j, sizeof q);
                vs_d4 d = __builtin_convertvector(q, vs_d4) - bm4, d2 = d * d;
                p2[j] += d2;
                p3[j] += d2 * d;
                p4[j] += d2 * d2;
            }
        }
        vs_d4 q2 = (p2[0] + p2[1]) + (p2[2] + p2[3]);
        vs_d4 q3 = (p3[0] + p3[1]) + (p3[2] + p3[3]);
        vs_d4 q4 = (p4[0] + p4[1]) + (p4[2] + p4[3]);
        double c2 = (q2[0] + q2[1]) + (q2[2] + q2[3]);
        double c3 = (q3[0] + q3[1]) + (q3[2] + q3[3]);
        double c4 = (q4[0] + q4[1]) + (q4[2] + q4[3]);
        for (int64_t i = body; i < m; i++) {
            double d = (double)xb[i] - bm, d2 = d * d;
            c2 += d2; c3 += d2 * d; c4 += d2 * d2;
        }
        /* Merge: running (cnt, mean, m2, m3, m4) and the block (m, bm, c2, c3, c4). */
        const double n_a = cnt, n_b = (double)m, n_t = n_a + n_b;
        const double delta = bm - mean, dn = delta / n_t, t1 = delta * dn * n_a * n_b;
        m4 += c4 + t1 * dn * dn * (n_a * n_a - n_a * n_b + n_b * n_b)
            + 6.0 * dn * dn * (n_a * n_a * c2 + n_b * n_b * m2) + 4.0 * dn * (n_a * c3 - n_b * m3);
        m3 += c3 + t1 * dn * (n_a - n_b) + 3.0 * dn * (n_a * c2 - n_b * m2);
        m2 += c2 + t1;
        mean += dn * n_b;
        cnt = n_t;
    }
    out[0] = (double)n; out[1] = mean; out[2] = m2; out[3] = m3; out[4] = m4;
    out[5] = n ? (double)mn : __builtin_inf(); out[6] = n ? (double)mx : -__builtin_inf();
    out[7] = (double)nz; out[8] = 0.0;
    out[9] = 0.0; out[10] = (double)nb; out[11] = (double)na;
}

/* Kolmogorov-Smirnov distance of a sorted float64 sample from a normal law (truncated to
 * [lo_cdf, hi_cdf] of the standard normal CDF when truncated != 0), for varscale stats: the
 * formulas of varscale_cli/core/distributions.py's `cdf` and `erf` (Abramowitz & Stegun
 * 7.1.26, coefficients p, a1..a5 from the caller) and stats/tests.py's `ks_distance`, in one
 * pass instead of a dozen numpy temporaries, with reciprocals hoisted out of the loop. D agrees
 * with the numpy path's to ~1e-15 (tests/test_kernels.py); this is measurement, not the byte
 * promise, so an exp of our own and the reordered divisions are fine here.
 *
 * Lanes of 8 doubles (GCC/clang vector extensions, as vs_moments_f32): libm's exp does not
 * vectorise without -ffast-math, and calling it per value made this loop ~20 ns a value, as
 * much as sampling and moments together for the default check's 1e5-value subsamples. Each
 * lane runs the same operations, and the max reduction is exact, so D is the same at any
 * vector width. */
/* The always-inlined helper below passes 64-byte vectors, which GCC warns change the ABI
 * of a function built without AVX-512; inlined, it has no ABI. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef double vs_d8 __attribute__((vector_size(64)));
typedef int64_t vs_l8 __attribute__((vector_size(64)));
#define VS_SELECTD(mask, a, b) ((vs_d8)(((mask) & (vs_l8)(a)) | (~(mask) & (vs_l8)(b))))
#define VS_SPLATD(v) {v, v, v, v, v, v, v, v}

/* exp(x) for x <= 0 to ~2 ulp: x = k ln2 + r with k = round(x / ln2), |r| <= ln2 / 2, then
 * exp(r) by its Taylor series to r^13 / 13! (the next term, 0.347^14 / 14! < 5e-18, is below
 * double's resolution) and 2^k added to the exponent bits. k comes from the rounding trick:
 * adding 1.5 * 2^52 leaves round(x / ln2) in the low mantissa bits. ln 2 is split as fdlibm's
 * ln2_hi (32 significant bits, so k * ln2_hi is exact for |k| < 2^21) + ln2_lo. Below -700
 * (exp < 1e-304, where 2^k would leave the normal range) the result is 0: the caller's
 * 1 - poly * t * exp is then 1 either way. */
static inline __attribute__((always_inline)) vs_d8 vs_exp_neg8(vs_d8 x) {
    const vs_d8 shift = VS_SPLATD(0x1.8p52), inv_ln2 = VS_SPLATD(0x1.71547652b82fep0);
    const vs_d8 ln2_hi = VS_SPLATD(0x1.62e42fee00000p-1), ln2_lo = VS_SPLATD(0x1.a39ef35793c76p-33);
    const vs_d8 t = x * inv_ln2 + shift, kd = t - shift;
    const vs_d8 r = (x - kd * ln2_hi) - kd * ln2_lo;
    /* 1/j! for j = 13 .. 1, each a correctly rounded double (constant-folded division). */
    static const double inv_fact[13] = {
        1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
        1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
        1.0 / 6.0, 1.0 / 2.0, 1.0,
    };
    vs_d8 q = VS_SPLATD(inv_fact[0]);
    for (int j = 1; j < 13; j++) q = q * r + inv_fact[j];
    q = q * r + 1.0;
    const vs_l8 k = (vs_l8)t - (vs_l8)shift; /* t's bits are 1.5 * 2^52's plus k */
    const vs_d8 e = (vs_d8)((vs_l8)q + (k << 52));
    const vs_l8 tiny = x < -700.0;
    return VS_SELECTD(tiny, (vs_d8)VS_SPLATD(0.0), e);
}

VS_CLONES double vs_ks_normal(const double *restrict xs, int64_t m, double loc, double scale,
                              double sqrt2, int truncated, double lo_cdf, double hi_cdf,
                              const double *restrict as) {
    const double p = as[0], to_u = 1.0 / (scale * sqrt2), inv_m = 1.0 / (double)m;
    const double inv_width = 1.0 / (hi_cdf - lo_cdf);
    const vs_l8 sign = VS_SPLATD((int64_t)0x8000000000000000ULL);
    const vs_d8 lanes = {0, 1, 2, 3, 4, 5, 6, 7}, zero = VS_SPLATD(0.0), one = VS_SPLATD(1.0);
    vs_d8 d = zero;
    for (int64_t k0 = 0; k0 < m; k0 += 8) {
        const int64_t left = m - k0 < 8 ? m - k0 : 8;
        vs_d8 x = VS_SPLATD(xs[m - 1]); /* the lanes past the end are masked below */
        memcpy(&x, xs + k0, (size_t)left * sizeof(double));
        const vs_d8 u = (x - loc) * to_u, z = (vs_d8)((vs_l8)u & ~sign);
        const vs_d8 t = 1.0 / (1.0 + p * z);
        const vs_d8 poly = (((as[1] * t + as[2]) * t + as[3]) * t + as[4]) * t + as[5];
        vs_d8 y = 1.0 - poly * t * vs_exp_neg8(-z * z);
        y = VS_SELECTD(z == 0.0, zero, y);
        const vs_d8 s = (vs_d8)(((vs_l8)y & ~sign) | ((vs_l8)u & sign)); /* copysign(y, u) */
        vs_d8 f = 0.5 * (1.0 + s);
        if (truncated) {
            f = (f - lo_cdf) * inv_width;
            f = VS_SELECTD(f < 0.0, zero, VS_SELECTD(f > 1.0, one, f));
        }
        const vs_d8 kk = (double)k0 + lanes;
        const vs_l8 valid = kk < (double)m;
        const vs_d8 above = VS_SELECTD(valid, (kk + 1.0) * inv_m - f, zero);
        const vs_d8 below = VS_SELECTD(valid, f - kk * inv_m, zero);
        d = VS_SELECTD(above > d, above, d);
        d = VS_SELECTD(below > d, below, d);
    }
    double best = 0.0;
    for (int j = 0; j < 8; j++) best = d[j] > best ? d[j] : best;
    return best;
}

/* out[j] = x[pos[j] - first] for 4-byte elements: the KS subsample's pick from each chunk,
 * ~0.5 ns a value where numpy's fancy indexing (and the subtraction before it) took ~6. */
void vs_gather32(const uint32_t *restrict x, const int64_t *restrict pos, int64_t n, int64_t first,
                 uint32_t *restrict out) {
    for (int64_t j = 0; j < n; j++) out[j] = x[pos[j] - first];
}

/* The index of the first byte where a[0..n) and b[0..n) differ, or -1: verify's comparison.
 * memcmp (the C library's vectorised one) over 4 KiB blocks, then a byte scan of the block
 * that differs; one pass over both, no temporary. */
int64_t vs_first_diff(const uint8_t *restrict a, const uint8_t *restrict b, int64_t n) {
    const int64_t step = 4096;
    for (int64_t off = 0; off < n; off += step) {
        const int64_t m = n - off < step ? n - off : step;
        if (memcmp(a + off, b + off, (size_t)m) != 0)
            for (int64_t i = off; i < off + m; i++)
                if (a[i] != b[i]) return i;
    }
    return -1;
}

static struct PyModuleDef vskernels_module = {
    PyModuleDef_HEAD_INIT, "vskernels",
    "varscale's compiled float32 transforms (C functions called through ctypes).", -1, NULL,
};

PyMODINIT_FUNC PyInit_vskernels(void) { return PyModule_Create(&vskernels_module); }
