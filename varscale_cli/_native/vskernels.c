/* Compiled float32 transforms for varscale: the numpy reference path of sampling.py, fused.
 *
 * Every function performs the same IEEE-754 float32 operations in the same order as the
 * numpy code it replaces, element by element, so the bytes are identical (tests compare both
 * paths on every distribution and dtype). That holds because the build uses
 * -ffp-contract=off (no a*b+c fused into an FMA) and no -ffast-math; comparisons, selects,
 * integer operations and int-to-float conversions of |k| < 2^24 are exact anyway.
 *
 * Coefficients come from the caller (the same float32 values numpy uses): parsing decimal
 * literals here could round differently from numpy's decimal -> double -> float path.
 *
 * The functions are plain C called through ctypes (which releases the GIL), so sampling
 * threads run them in parallel. The module init below only makes this a loadable extension.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* out[i] = ((bits[i] >> 8) | 1) * scale: sampling._symmetric_f32. */
void vs_uniform_f32(const int32_t *restrict bits, float *restrict out, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        int32_t k = (bits[i] >> 8) | 1;
        out[i] = (float)k * scale;
    }
}

/* The shared head of both normals: x, then w = -log((1 - x)(1 + x)) - 2.5 and the central
 * polynomial, exactly as sampling._neg_log_f32 and _erfinv_f32 compute them. */
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
    float p = s2 * at[0] + at[1];                                            \
    p = p * s2 + at[2];                                                      \
    p = p * s2 + at[3];                                                      \
    p = p * s2 + at[4];                                                      \
    p = p * s2 + at[5];                                                      \
    p = p * s2 + at[6];                                                      \
    float logm = p * s;                                                      \
    float el = (float)e * ln2;                                               \
    float w = (el - 2.5f) - logm;                                            \
    float c = w * ce[0] + ce[1];                                             \
    c = c * w + ce[2];                                                       \
    c = c * w + ce[3];                                                       \
    c = c * w + ce[4];                                                       \
    c = c * w + ce[5];                                                       \
    c = c * w + ce[6];                                                       \
    c = c * w + ce[7];                                                       \
    c = c * w + ce[8];

/* Truncated normal: x uniform on (-erf(sqrt 2), erf(sqrt 2)), central branch only, clip. */
void vs_truncnormal_f32(const int32_t *restrict bits, float *restrict out, int64_t n,
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
void vs_normal_f32(const int32_t *restrict bits, float *restrict out, int64_t n,
                   float xscale, float outscale, float ln2, const float *restrict at,
                   const float *restrict ce, const float *restrict ta) {
    for (int64_t i = 0; i < n; i++) {
        VS_CENTRAL(i)
        float r = __builtin_sqrtf(w + 2.5f) - 3.0f;
        float q = r * ta[0] + ta[1];
        q = q * r + ta[2];
        q = q * r + ta[3];
        q = q * r + ta[4];
        q = q * r + ta[5];
        q = q * r + ta[6];
        q = q * r + ta[7];
        q = q * r + ta[8];
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

static struct PyModuleDef vskernels_module = {
    PyModuleDef_HEAD_INIT, "vskernels",
    "varscale's compiled float32 transforms (C functions called through ctypes).", -1, NULL,
};

PyMODINIT_FUNC PyInit_vskernels(void) { return PyModule_Create(&vskernels_module); }
