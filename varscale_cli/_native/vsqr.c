/* Householder QR for varscale's orthogonal initializer, in a fixed order of IEEE-754 double
 * operations: the same bytes on every machine, unlike LAPACK (whose blocking, threading and
 * FMA use differ between builds). varscale_cli/core/stream/orthogonal.py has the numpy
 * reference of this exact algorithm and the derivation; tests compare the two bit for bit.
 *
 * The m x k matrix A (m >= k) is held transposed, `at` (k rows of m: row q is column q of A),
 * so every inner loop runs over contiguous memory. Step j reflects column j onto
 * alpha e_j with alpha = -sign(x_j) ||x|| (no cancellation in v_j = x_j - alpha), stores
 * v in at[j][j..m-1], tau_j = -1 / (alpha v_j) (= 2 / v^T v) and sign(alpha) = sign(R_jj),
 * and applies I - tau v v^T to the columns right of it. Then Q^T (k x m, `qt`) is accumulated
 * backwards from the first k columns of the identity, and each row q is negated when
 * R_qq < 0 (the frameworks' sign fix, making R's diagonal positive: the unique QR).
 *
 * Order, fixed and shared with the numpy path: every dot product starts from its first
 * product (p = j) and adds the others in increasing p, one rounded multiply and one rounded
 * add each (-ffp-contract=off: no FMA); updates are x - (t * v_p), t = tau * w. The dot
 * products of four columns run interleaved (four independent chains, each in the same order)
 * so the latency of one chain does not bound the loop. */
#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VS_QR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VS_QR_CLONES
#endif

/* Reflect rows q0..k-1 of `rows` (each of length m, from column j) by the reflector stored in
 * v = at[j][j..m-1] with tau: row -= (tau * (v . row)) * v. */
VS_QR_CLONES static void vs_reflect(const double *restrict v, double tau, double *restrict rows,
                                    int64_t m, int64_t j, int64_t q0, int64_t k) {
    int64_t q = q0;
    for (; q + 4 <= k; q += 4) {
        double *r0 = rows + q * m, *r1 = r0 + m, *r2 = r1 + m, *r3 = r2 + m;
        double w0 = v[j] * r0[j], w1 = v[j] * r1[j], w2 = v[j] * r2[j], w3 = v[j] * r3[j];
        for (int64_t p = j + 1; p < m; p++) {
            w0 += v[p] * r0[p];
            w1 += v[p] * r1[p];
            w2 += v[p] * r2[p];
            w3 += v[p] * r3[p];
        }
        double t0 = tau * w0, t1 = tau * w1, t2 = tau * w2, t3 = tau * w3;
        for (int64_t p = j; p < m; p++) {
            r0[p] -= t0 * v[p];
            r1[p] -= t1 * v[p];
            r2[p] -= t2 * v[p];
            r3[p] -= t3 * v[p];
        }
    }
    for (; q < k; q++) {
        double *r = rows + q * m;
        double w = v[j] * r[j];
        for (int64_t p = j + 1; p < m; p++) w += v[p] * r[p];
        double t = tau * w;
        for (int64_t p = j; p < m; p++) r[p] -= t * v[p];
    }
}

/* at: k x m (A transposed, overwritten by the reflectors); qt: k x m output, Q transposed
 * with R's diagonal made positive; tau, sgn: k doubles of workspace. */
void vs_householder_qr(double *restrict at, double *restrict qt, double *restrict tau,
                       double *restrict sgn, int64_t m, int64_t k) {
    for (int64_t j = 0; j < k; j++) {
        double *v = at + j * m;
        double s = v[j] * v[j];
        for (int64_t p = j + 1; p < m; p++) s += v[p] * v[p];
        double nrm = sqrt(s), x0 = v[j];
        if (nrm == 0.0) { /* a zero column (probability 0): no reflection, R_jj = 0 */
            tau[j] = 0.0;
            sgn[j] = 1.0;
            continue;
        }
        double alpha = x0 >= 0.0 ? -nrm : nrm;
        double v0 = x0 - alpha;
        v[j] = v0;
        tau[j] = -1.0 / (alpha * v0);
        sgn[j] = alpha < 0.0 ? -1.0 : 1.0;
        vs_reflect(v, tau[j], at, m, j, j + 1, k);
    }
    for (int64_t q = 0; q < k; q++)
        for (int64_t p = 0; p < m; p++) qt[q * m + p] = (p == q) ? 1.0 : 0.0;
    for (int64_t j = k - 1; j >= 0; j--) {
        if (tau[j] == 0.0) continue;
        vs_reflect(at + j * m, tau[j], qt, m, j, j, k);
    }
    for (int64_t q = 0; q < k; q++)
        if (sgn[q] < 0.0)
            for (int64_t p = 0; p < m; p++) qt[q * m + p] = -qt[q * m + p];
}
