/* Philox4x64-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), bit for
 * bit the generator numpy's `Philox` bit generator implements (numpy/random/src/philox/philox.h):
 * each call increments the 256-bit counter first, then encrypts it with 10 rounds, so numpy's
 * state counter `b` yields the words of counter b + 1. Word w of a stream (w = 4 b + j) is
 * therefore word j of philox(b + 1, key). */
#ifndef VS_PHILOX_H
#define VS_PHILOX_H
#include <stdint.h>

#define VS_PHILOX_M0 0xD2E7470EE14C6C93ULL
#define VS_PHILOX_M1 0xCA5A826395121157ULL
#define VS_PHILOX_W0 0x9E3779B97F4A7C15ULL
#define VS_PHILOX_W1 0xBB67AE8584CAA73BULL

static inline void vs_philox_block(const uint64_t ctr_in[4], uint64_t k0, uint64_t k1, uint64_t out[4]) {
    uint64_t c0 = ctr_in[0], c1 = ctr_in[1], c2 = ctr_in[2], c3 = ctr_in[3];
    for (int r = 0; r < 10; r++) {
        unsigned __int128 p0 = (unsigned __int128)VS_PHILOX_M0 * c0;
        unsigned __int128 p1 = (unsigned __int128)VS_PHILOX_M1 * c2;
        uint64_t hi0 = (uint64_t)(p0 >> 64), lo0 = (uint64_t)p0;
        uint64_t hi1 = (uint64_t)(p1 >> 64), lo1 = (uint64_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += VS_PHILOX_W0;
        k1 += VS_PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* 256-bit increment. */
static inline void vs_ctr_inc(uint64_t c[4]) {
    if (++c[0] == 0 && ++c[1] == 0 && ++c[2] == 0) ++c[3];
}

/* Many blocks: `nb` times, increment `ctr` and encrypt it, storing each block's four words
 * (little-endian, as 8 32-bit halves) at dst + 8 * b. The one-block code above is the
 * reference; the SIMD versions below compute the same integers, one block per 64-bit lane.
 *
 * Why SIMD: the scalar rounds are bound by the latency of the 64x64 -> 128-bit multiplies
 * (about 3 ns per 32-bit value here), and x86 has no vector instruction for them, but
 * vpmuludq (32x32 -> 64) on every lane gives the four partial products of each:
 * with a = ah 2^32 + al and M = mh 2^32 + ml,
 *   mid = (al ml >> 32) + (al mh mod 2^32) + ah ml     (< 2^64: at most 3 (2^32 - 1) + (2^32 - 1)^2)
 *   hi  = ah mh + (al mh >> 32) + (mid >> 32)
 *   lo  = (mid << 32) | (al ml mod 2^32).
 * A group of lanes needs consecutive counters with no carry out of word 0 (ctr[0] + lanes
 * does not wrap); a group that would carry runs on the scalar code, which carries. */
static inline void vs_philox_blocks_scalar(uint64_t ctr[4], uint64_t k0, uint64_t k1,
                                           uint32_t *restrict dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++) {
        uint64_t w[4];
        vs_ctr_inc(ctr);
        vs_philox_block(ctr, k0, k1, w);
        for (int j = 0; j < 4; j++) {
            dst[8 * b + 2 * j] = (uint32_t)w[j];
            dst[8 * b + 2 * j + 1] = (uint32_t)(w[j] >> 32);
        }
    }
}

/* Which version runs (vs_philox_blocks); VS_PHILOX_BEST picks the widest the CPU and OS
 * support. */
enum { VS_PHILOX_BEST = -1, VS_PHILOX_SCALAR = 0, VS_PHILOX_AVX2 = 1, VS_PHILOX_AVX512 = 2 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VS_PHILOX_SIMD 1
#include <immintrin.h>

/* One 64x64 -> 128-bit product per lane by the formulas above; `W` is the width's prefix
 * (_mm256 / _mm512), `AND` / `OR` its bitwise intrinsics. */
#define VS_MULHILO(W, AND, OR, a, ml, mh, hi, lo)                                              \
    do {                                                                                      \
        const __typeof__(a) ah_ = W##_srli_epi64(a, 32);                                      \
        const __typeof__(a) ll_ = W##_mul_epu32(a, ml), lh_ = W##_mul_epu32(a, mh);           \
        const __typeof__(a) hl_ = W##_mul_epu32(ah_, ml), hh_ = W##_mul_epu32(ah_, mh);       \
        const __typeof__(a) mid_ =                                                            \
            W##_add_epi64(W##_add_epi64(W##_srli_epi64(ll_, 32), AND(lh_, m32)), hl_);        \
        hi = W##_add_epi64(W##_add_epi64(hh_, W##_srli_epi64(lh_, 32)), W##_srli_epi64(mid_, 32)); \
        lo = OR(W##_slli_epi64(mid_, 32), AND(ll_, m32));                                     \
    } while (0)

/* AVX2: two groups of 4 lanes (8 blocks) per step, interleaved so that one group's
 * multiplies run while the other's wait (1.2x over one group here). Returns blocks done. */
__attribute__((target("avx2"))) static int64_t vs_philox_blocks_avx2(
    uint64_t ctr[4], uint64_t k0, uint64_t k1, uint32_t *restrict dst, int64_t nb) {
    const __m256i m32 = _mm256_set1_epi64x((long long)0xFFFFFFFFULL);
    const __m256i m0l = _mm256_set1_epi64x((long long)(VS_PHILOX_M0 & 0xFFFFFFFFULL));
    const __m256i m0h = _mm256_set1_epi64x((long long)(VS_PHILOX_M0 >> 32));
    const __m256i m1l = _mm256_set1_epi64x((long long)(VS_PHILOX_M1 & 0xFFFFFFFFULL));
    const __m256i m1h = _mm256_set1_epi64x((long long)(VS_PHILOX_M1 >> 32));
    const __m256i lanes = _mm256_set_epi64x(4, 3, 2, 1), four = _mm256_set1_epi64x(4);
    int64_t b = 0;
    for (; b + 8 <= nb && ctr[0] <= UINT64_MAX - 8; b += 8) {
        __m256i c0[2], c1[2], c2[2], c3[2];
        c0[0] = _mm256_add_epi64(_mm256_set1_epi64x((long long)ctr[0]), lanes);
        c0[1] = _mm256_add_epi64(c0[0], four);
        for (int h = 0; h < 2; h++) {
            c1[h] = _mm256_set1_epi64x((long long)ctr[1]);
            c2[h] = _mm256_set1_epi64x((long long)ctr[2]);
            c3[h] = _mm256_set1_epi64x((long long)ctr[3]);
        }
        ctr[0] += 8;
        uint64_t ka = k0, kb = k1;
        for (int r = 0; r < 10; r++) {
            const __m256i va = _mm256_set1_epi64x((long long)ka), vb = _mm256_set1_epi64x((long long)kb);
            for (int h = 0; h < 2; h++) {
                __m256i hi0, lo0, hi1, lo1;
                VS_MULHILO(_mm256, _mm256_and_si256, _mm256_or_si256, c0[h], m0l, m0h, hi0, lo0);
                VS_MULHILO(_mm256, _mm256_and_si256, _mm256_or_si256, c2[h], m1l, m1h, hi1, lo1);
                c0[h] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[h]), va);
                c2[h] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[h]), vb);
                c1[h] = lo1;
                c3[h] = lo0;
            }
            ka += VS_PHILOX_W0;
            kb += VS_PHILOX_W1;
        }
        /* Lanes hold blocks, memory wants each block's words together: unpack pairs
         * (t0 = c0 c1 of lanes 0 and 2, ...), then take 128-bit halves. */
        for (int h = 0; h < 2; h++) {
            const __m256i t0 = _mm256_unpacklo_epi64(c0[h], c1[h]), t1 = _mm256_unpackhi_epi64(c0[h], c1[h]);
            const __m256i t2 = _mm256_unpacklo_epi64(c2[h], c3[h]), t3 = _mm256_unpackhi_epi64(c2[h], c3[h]);
            uint32_t *d = dst + 8 * (b + 4 * h);
            _mm256_storeu_si256((__m256i *)d, _mm256_permute2x128_si256(t0, t2, 0x20));
            _mm256_storeu_si256((__m256i *)(d + 8), _mm256_permute2x128_si256(t1, t3, 0x20));
            _mm256_storeu_si256((__m256i *)(d + 16), _mm256_permute2x128_si256(t0, t2, 0x31));
            _mm256_storeu_si256((__m256i *)(d + 24), _mm256_permute2x128_si256(t1, t3, 0x31));
        }
    }
    return b;
}

/* AVX-512: 8 lanes (8 blocks) per step; vpternlogq does each three-way xor in one
 * instruction (0x96 is a ^ b ^ c). 2x the scalar rate here. Returns blocks done. */
__attribute__((target("avx512f"))) static int64_t vs_philox_blocks_avx512(
    uint64_t ctr[4], uint64_t k0, uint64_t k1, uint32_t *restrict dst, int64_t nb) {
    const __m512i m32 = _mm512_set1_epi64((long long)0xFFFFFFFFULL);
    const __m512i m0l = _mm512_set1_epi64((long long)(VS_PHILOX_M0 & 0xFFFFFFFFULL));
    const __m512i m0h = _mm512_set1_epi64((long long)(VS_PHILOX_M0 >> 32));
    const __m512i m1l = _mm512_set1_epi64((long long)(VS_PHILOX_M1 & 0xFFFFFFFFULL));
    const __m512i m1h = _mm512_set1_epi64((long long)(VS_PHILOX_M1 >> 32));
    const __m512i lanes = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1);
    /* Word indices for _mm512_permutex2var_epi64 (0-7 first operand, 8-15 second). */
    const __m512i even = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
    const __m512i odd = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
    int64_t b = 0;
    for (; b + 8 <= nb && ctr[0] <= UINT64_MAX - 8; b += 8) {
        __m512i c0 = _mm512_add_epi64(_mm512_set1_epi64((long long)ctr[0]), lanes);
        __m512i c1 = _mm512_set1_epi64((long long)ctr[1]);
        __m512i c2 = _mm512_set1_epi64((long long)ctr[2]);
        __m512i c3 = _mm512_set1_epi64((long long)ctr[3]);
        ctr[0] += 8;
        uint64_t ka = k0, kb = k1;
        for (int r = 0; r < 10; r++) {
            __m512i hi0, lo0, hi1, lo1;
            VS_MULHILO(_mm512, _mm512_and_si512, _mm512_or_si512, c0, m0l, m0h, hi0, lo0);
            VS_MULHILO(_mm512, _mm512_and_si512, _mm512_or_si512, c2, m1l, m1h, hi1, lo1);
            c0 = _mm512_ternarylogic_epi64(hi1, c1, _mm512_set1_epi64((long long)ka), 0x96);
            c2 = _mm512_ternarylogic_epi64(hi0, c3, _mm512_set1_epi64((long long)kb), 0x96);
            c1 = lo1;
            c3 = lo0;
            ka += VS_PHILOX_W0;
            kb += VS_PHILOX_W1;
        }
        /* Transpose 4 x 8 words: t0 = c0 c1 of lanes 0 2 4 6, t1 of lanes 1 3 5 7, t2 / t3
         * the same of c2 c3; u0 = blocks 0 and 2 whole, u1 = 1 and 3, u2 = 4 and 6,
         * u3 = 5 and 7; then 256-bit halves in block order. */
        const __m512i t0 = _mm512_unpacklo_epi64(c0, c1), t1 = _mm512_unpackhi_epi64(c0, c1);
        const __m512i t2 = _mm512_unpacklo_epi64(c2, c3), t3 = _mm512_unpackhi_epi64(c2, c3);
        const __m512i u0 = _mm512_permutex2var_epi64(t0, even, t2);
        const __m512i u1 = _mm512_permutex2var_epi64(t1, even, t3);
        const __m512i u2 = _mm512_permutex2var_epi64(t0, odd, t2);
        const __m512i u3 = _mm512_permutex2var_epi64(t1, odd, t3);
        uint32_t *d = dst + 8 * b;
        _mm512_storeu_si512(d, _mm512_shuffle_i64x2(u0, u1, 0x44));
        _mm512_storeu_si512(d + 16, _mm512_shuffle_i64x2(u0, u1, 0xEE));
        _mm512_storeu_si512(d + 32, _mm512_shuffle_i64x2(u2, u3, 0x44));
        _mm512_storeu_si512(d + 48, _mm512_shuffle_i64x2(u2, u3, 0xEE));
    }
    return b;
}
#endif

/* The widest version this CPU and OS support (__builtin_cpu_supports checks both). */
static inline int vs_philox_best(void) {
#ifdef VS_PHILOX_SIMD
    if (__builtin_cpu_supports("avx512f")) return VS_PHILOX_AVX512;
    if (__builtin_cpu_supports("avx2")) return VS_PHILOX_AVX2;
#endif
    return VS_PHILOX_SCALAR;
}

/* `nb` blocks by version `path` (VS_PHILOX_BEST: vs_philox_best()); the same words on
 * every path. Returns 0, or -1 when `path` is not available here. */
static inline int vs_philox_blocks(int path, uint64_t ctr[4], uint64_t k0, uint64_t k1,
                                   uint32_t *restrict dst, int64_t nb) {
    if (path == VS_PHILOX_BEST) path = vs_philox_best();
    else if (path < VS_PHILOX_SCALAR || path > vs_philox_best()) return -1;
    int64_t done = 0;
#ifdef VS_PHILOX_SIMD
    if (path == VS_PHILOX_AVX512) done = vs_philox_blocks_avx512(ctr, k0, k1, dst, nb);
    else if (path == VS_PHILOX_AVX2) done = vs_philox_blocks_avx2(ctr, k0, k1, dst, nb);
#endif
    vs_philox_blocks_scalar(ctr, k0, k1, dst + 8 * done, nb - done);
    return 0;
}

#endif
