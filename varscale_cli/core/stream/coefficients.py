"""Every constant and polynomial coefficient of the stream's transforms, in one place.

Both the numpy reference path (`transforms`) and the C kernels' loader
(``varscale_cli._native.kernels``) take their numbers from here, so the two paths cannot drift
apart by a digit. Each constant is a decimal literal (or is derived from one by correctly
rounded operations); tests/test_sampling.py recomputes the literals with mpmath.
"""

from __future__ import annotations

import math

import numpy as np

#: erf(sqrt(2)) = P(|X| <= 2) for X ~ N(0, 1), to 20 digits (mpmath); tests recompute it.
ERF_SQRT2 = 0.95449973610364158560
#: Phi(2) - 1/2 = erf(sqrt 2) / 2: half the probability mass inside +-2 sigma.
HALF_MASS_2 = ERF_SQRT2 / 2.0
#: std of N(0, 1) truncated to [-2, 2] = sqrt(1 - 4 phi(2) / erf(sqrt 2)) (see distributions.py),
#: the constant TF and Keras divide by; tests recompute it with mpmath.
TRUNC_STD_2 = 0.87962566103423978
SQRT2 = math.sqrt(2.0)
LN2 = 0.69314718055994530942  # log(2)

# Giles' single-precision erfinv: erfinv(x) = x * P(w - 2.5) for w = -log(1 - x^2) < 5 (central),
# x * Q(sqrt(w) - 3) otherwise (tail). Coefficients as published, highest degree first.
GILES_CENTRAL = tuple(
    np.float32(c)
    for c in (
        2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
        -0.00125372503, -0.00417768164, 0.246640727, 1.50140941,
    )
)
GILES_TAIL = tuple(
    np.float32(c)
    for c in (
        -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
        -0.0076224613, 0.00943887047, 1.00167406, 2.83297682,
    )
)

# Wichura AS241 PPND16 (Applied Statistics 37(3), 1988): rational approximations of the normal
# quantile, relative accuracy about 1e-16. Highest degree first.
AS241_A = (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
            4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
            1.3314166789178437745e2, 3.3871328727963666080e0)
AS241_B = (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
            2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
            4.2313330701600911252e1, 1.0)
AS241_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
            1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
            4.63033784615654529590e0, 1.42343711074968357734e0)
AS241_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
            1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
            2.05319162663775882187e0, 1.0)
AS241_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
            5.46378491116411436990e0, 6.65790464350110377720e0)
AS241_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)

# log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1) / (m + 1).
# float32: m in [1, 2) so s < 1/3, s^2 < 1/9; 7 terms leave (1/9)^7 / 15 * 2/3 < 1e-8 absolute.
ATANH_F32 = tuple(np.float32(2.0 / (2 * k + 1)) for k in reversed(range(7)))
# float64: m normalised to [sqrt(1/2), sqrt(2)), s^2 < 0.0295; 12 terms leave 0.0295^12 / 25 < 1e-19.
ATANH_F64 = tuple(2.0 / (2 * k + 1) for k in reversed(range(12)))
SQRT_HALF = 0.70710678118654752440

# Branch points and shifts of the two quantile approximations, as the papers give them.
#: Giles: the central polynomial is in ``w - 2.5``; the tail one, for ``w >= 5``, in
#: ``sqrt(w) - 3``.
GILES_CENTRAL_SHIFT = 2.5
GILES_TAIL_FROM = 5.0
GILES_TAIL_SHIFT = 3.0
#: AS241: the central branch for ``|q| <= 0.425`` in ``r = 0.425^2 - q^2``; the tails in
#: ``r = sqrt(-log(min(p, 1 - p)))``, the near one (r <= 5) shifted by 1.6, the far one by 5.
AS241_CENTRAL_LIMIT = 0.425
AS241_CENTRAL_R0 = 0.180625  # 0.425^2, exact in decimal
AS241_NEAR_LIMIT = 5.0
AS241_NEAR_SHIFT = 1.6
AS241_FAR_SHIFT = 5.0

# --- complex laws (core.stream.polar) -----------------------------------------------------------
# JAX's complex truncated normal (jax/_src/nn/initializers.py, `_complex_truncated_normal` with
# upper = 2) draws |z|^2 = -log(1 - t), t uniform on [0, 1 - exp(-4)): |z|^2 is Exp(1) cut at
# c^2 = 4, i.e. the unit complex normal (E|z|^2 = 1) with its modulus cut at 2.
#: exp(-4) to 20 digits (mpmath; tests/test_complex.py recomputes it): a literal, never libm.
EXP_M4 = 0.018315638888734180294
#: P(|z| <= 2) for the unit complex normal = P(Exp(1) <= 4) = 1 - exp(-4).
CMASS_2 = 1.0 - EXP_M4
#: std (sqrt E|z|^2) of the unit complex normal with its modulus cut at 2. For X ~ Exp(1) cut at
#: a = 4: E[X] = int_0^a x e^-x dx / (1 - e^-a) = (1 - (1 + a) e^-a) / (1 - e^-a), so
#: E|z|^2 = (1 - 5 exp(-4)) / (1 - exp(-4)) = 0.92536... and this is its square root,
#: 0.96196182800821354. JAX divides by 0.95311164380491208 = sqrt(1 - 5 exp(-4)) instead (the
#: numerator alone), which leaves E|z|^2 = scale / n / (1 - exp(-4)) = 1.01866 scale / n: 1.87 %
#: high (`JAX_CTRUNC_STD_2`). Fixed-order IEEE: (1 - 5 E) / (1 - E), then sqrt, correctly rounded.
CTRUNC_STD_2 = math.sqrt((1.0 - 5.0 * EXP_M4) / CMASS_2)
#: JAX's literal, as its source spells it (`corrected: jax`); it is sqrt(1 - 5 exp(-4)) =
#: 0.95311164380482159 to 13 digits only (off by 9e-14), kept as JAX has it.
JAX_CTRUNC_STD_2 = 0.95311164380491208
#: pi / 4 to 20 digits: the phase is computed per octant from it.
PI_4 = 0.78539816339744830962
# sin t = t (1 - t^2/3! + t^4/5! - ...), cos t = 1 - t^2/2! + ... for 0 <= t <= pi/4, in t^2,
# highest degree first. 9 terms each: the first dropped ones, (pi/4)^19 / 19! = 8.3e-20 and
# (pi/4)^18 / 18! = 2.0e-18, are below half an ulp of the results (sin >= t, cos >= 0.707).
# 1 / k! is the correctly rounded quotient of two exact doubles (18! < 2^53).
SIN_F64 = tuple(
    (-1.0 if k % 2 else 1.0) / float(math.factorial(2 * k + 1)) for k in reversed(range(9))
)
COS_F64 = tuple((-1.0 if k % 2 else 1.0) / float(math.factorial(2 * k)) for k in reversed(range(9)))
