/* The fused float32 stream: Philox bits -> transform -> (+ loc) -> output dtype, one pass per
 * chunk, for varscale_cli/core/stream/fused.py.
 *
 * It computes exactly what the numpy reference path computes (core/stream/philox.py for the
 * bits, transforms.py for the values, sampler.py for the cast), tile by tile: 32-bit values
 * for TILE elements go into a stack buffer that stays in L1, the transforms of vskernels.c
 * turn them into float32, and a last loop adds loc and rounds to float16 / bfloat16 with
 * round-to-nearest-even. The caller holds no GIL (ctypes releases it), so every worker
 * thread runs a chunk at full speed.
 *
 * Bits: element i reads 32-bit value i of the stream, the low (even i) or high (odd i) half
 * of 64-bit word i / 2; word w is word w % 4 of Philox block w / 4 + 1 (numpy increments its
 * counter before encrypting: vsphilox.h). So element i is half i % 8 of block i / 8 + 1. */
#include <stdint.h>
#include <string.h>

#include "vsphilox.h"

/* The float32 transforms of vskernels.c (same extension). */
void vs_uniform_f32(const int32_t *restrict bits, float *restrict out, int64_t n, float scale);
void vs_truncnormal_f32(const int32_t *restrict bits, float *restrict out, int64_t n, float xscale,
                        float outscale, float bound, float ln2, const float *restrict at,
                        const float *restrict ce);
void vs_normal_f32(const int32_t *restrict bits, float *restrict out, int64_t n, float xscale,
                   float outscale, float ln2, const float *restrict at, const float *restrict ce,
                   const float *restrict ta);

/* Elements per tile: 2 KiB elements = 8 KiB of bits + 8 KiB of float32, well inside a 32 KiB
 * L1 data cache; long enough that the per-tile calls cost nothing measurable. */
#define VS_TILE 2048

/* Position in a stream: the next block's counter (minus one, as numpy keeps it), the halves
 * of the block being consumed and how many of them are used. */
typedef struct {
    uint64_t ctr[4], k0, k1;
    uint32_t half[8];
    int used;
    int path; /* vsphilox.h's version for whole blocks */
} vs_stream;

static inline void vs_block_halves(vs_stream *s, uint32_t *restrict dst) {
    uint64_t w[4];
    vs_ctr_inc(s->ctr);
    vs_philox_block(s->ctr, s->k0, s->k1, w);
    for (int j = 0; j < 4; j++) {
        dst[2 * j] = (uint32_t)w[j];
        dst[2 * j + 1] = (uint32_t)(w[j] >> 32);
    }
}

/* At element `first` (a 128-bit number lo, hi: block = first / 8 needs 125 bits at most). */
static void vs_stream_at(vs_stream *s, uint64_t k0, uint64_t k1, uint64_t lo, uint64_t hi) {
    s->k0 = k0;
    s->k1 = k1;
    s->ctr[0] = (lo >> 3) | (hi << 61);
    s->ctr[1] = hi >> 3;
    s->ctr[2] = s->ctr[3] = 0;
    s->used = 8;
    s->path = vs_philox_best();
    int skip = (int)(lo & 7);
    if (skip) {
        vs_block_halves(s, s->half);
        s->used = skip;
    }
}

/* The next n 32-bit values. */
static void vs_stream_bits(vs_stream *s, uint32_t *restrict dst, int64_t n) {
    int64_t i = 0;
    while (s->used < 8 && i < n) dst[i++] = s->half[s->used++];
    const int64_t blocks = (n - i) / 8;
    vs_philox_blocks(s->path, s->ctr, s->k0, s->k1, dst + i, blocks);
    i += 8 * blocks;
    if (i < n) {
        vs_block_halves(s, s->half);
        s->used = 0;
        while (i < n) dst[i++] = s->half[s->used++];
    }
}

/* Blocks ctr + 1 .. ctr + nb of stream (k0, k1) (ctr: 4 words, low first) by Philox version
 * `path` into dst, as 8 32-bit halves each: for the tests, which hold every version to numpy's
 * words. Returns -1 when the version is not available on this CPU. */
int vs_philox_words(int path, uint64_t k0, uint64_t k1, const uint64_t *ctr_in, int64_t nb,
                    uint32_t *dst) {
    uint64_t ctr[4] = {ctr_in[0], ctr_in[1], ctr_in[2], ctr_in[3]};
    return vs_philox_blocks(path, ctr, k0, k1, dst, nb);
}

/* float32 -> float16, round to nearest even: what numpy's float32 -> float16 cast gives for
 * every non-NaN value (tests/test_fused.py compares all of them); NaN stays NaN.
 * Normal results: rebias the exponent (127 - 15 = 112, i.e. subtract 112 << 23) and round the 13
 * dropped mantissa bits (add 0xFFF plus the kept lowest bit, then shift; a carry runs into the
 * exponent, which is right). |f| >= 65520 (0x477FF000) rounds to infinity. Below 2^-14 the
 * result is subnormal, a multiple of 2^-24: |f| + 0.5 rounds |f| to a multiple of 2^-24 (the
 * spacing of float32 in [0.5, 1)) with the FPU's round-to-nearest-even, and the low bits of
 * the sum are that multiple (0x400 when it rounds up to the smallest normal, also right). */
static inline uint16_t vs_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFF;
    if (ax > 0x7F800000) return (uint16_t)(sign | 0x7E00 | ((ax >> 13) & 0x3FF)); /* NaN */
    if (ax >= 0x477FF000) return (uint16_t)(sign | 0x7C00);
    if (ax >= 0x38800000) {
        uint32_t r = ax - 0x38000000;
        r += 0x0FFF + ((r >> 13) & 1);
        return (uint16_t)(sign | (r >> 13));
    }
    float a, t;
    memcpy(&a, &ax, 4);
    t = a + 0.5f;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    return (uint16_t)(sign | (tb - 0x3F000000));
}

/* float32 -> bfloat16, round to nearest even on the 16 dropped bits (ml_dtypes' cast; a
 * carry into the exponent, up to infinity, is right); NaN becomes a quiet NaN. */
static inline uint16_t vs_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((x >> 16) | 0x0040);
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VS_CLONES
#endif

/* The conversions, exported for the exhaustive tests and the tail loop below. */
VS_CLONES void vs_round_f16(const float *restrict in, uint16_t *restrict out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = vs_f32_to_f16(in[i]);
}

VS_CLONES void vs_round_bf16(const float *restrict in, uint16_t *restrict out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = vs_f32_to_bf16(in[i]);
}

VS_CLONES static void vs_add_f32(float *restrict x, int64_t n, float loc) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] + loc;
}

enum { VS_UNIFORM = 0, VS_TRUNCATED = 1, VS_NORMAL = 2 };
enum { VS_F32 = 0, VS_F16 = 1, VS_BF16 = 2 };

/* n elements from element (first_lo, first_hi) of the stream keyed (k0, k1), of law `kind`,
 * into `out` of dtype `odtype`. xscale / outscale / bound are transforms.py's per-law
 * constants (uniform: xscale = scale * 2^-23); loc is added in float32 when has_loc. */
void vs_fill32(uint64_t k0, uint64_t k1, uint64_t first_lo, uint64_t first_hi, int64_t n,
               int kind, int odtype, float xscale, float outscale, float bound, int has_loc,
               float loc, float ln2, const float *at, const float *ce, const float *ta,
               void *out) {
    uint32_t bits[VS_TILE];
    float vals[VS_TILE];
    vs_stream s;
    vs_stream_at(&s, k0, k1, first_lo, first_hi);
    for (int64_t off = 0; off < n; off += VS_TILE) {
        int64_t m = n - off < VS_TILE ? n - off : VS_TILE;
        vs_stream_bits(&s, bits, m);
        float *dst = odtype == VS_F32 ? (float *)out + off : vals;
        const int32_t *b = (const int32_t *)bits;
        if (kind == VS_UNIFORM)
            vs_uniform_f32(b, dst, m, xscale);
        else if (kind == VS_TRUNCATED)
            vs_truncnormal_f32(b, dst, m, xscale, outscale, bound, ln2, at, ce);
        else
            vs_normal_f32(b, dst, m, xscale, outscale, ln2, at, ce, ta);
        if (has_loc) vs_add_f32(dst, m, loc);
        if (odtype == VS_F16)
            vs_round_f16(vals, (uint16_t *)out + off, m);
        else if (odtype == VS_BF16)
            vs_round_bf16(vals, (uint16_t *)out + off, m);
    }
}
