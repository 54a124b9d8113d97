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

#endif
