"""Measure the float32 transforms' accuracy (the numbers in docs/determinism.md, "Accuracy").

    python tests/measure_accuracy.py        # about a minute; needs scipy and mpmath

Runs the doc's algorithm (tests/reference_stream.py, which reproduces every golden hash) on
every uniform the float32 stream can produce (all 2^22 positive odd k per kind; the transforms
are odd functions, so the negative half mirrors it) and on every float32 in [0.5, 1), and
compares with scipy's float64 erfinv, itself checked against mpmath at 30 digits on the worst
points and on a random subset. Errors are in float32 ulps of the exact value: |v - r| / 2^(E - 23)
with 2^E <= |r| < 2^(E + 1).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mpmath
import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_stream as ref  # noqa: E402

F32 = np.float32


def ulps(v: np.ndarray, exact: np.ndarray) -> np.ndarray:
    _, e = np.frexp(exact)  # exact = f * 2^e, f in [0.5, 1): ulp = 2^(e - 24)
    return np.abs(v.astype(np.float64) - exact) / np.ldexp(1.0, e - 24)


def erfinv32(x: np.ndarray, tails: bool) -> np.ndarray:
    """The float32 erfinv of the doc: central polynomial, and the tail one where w >= 5."""
    t = ref.neg_log32_minus_2_5((F32(1) - x) * (F32(1) + x))
    v = ref.horner(ref.GILES_P, t)
    if tails:
        v = np.where(t >= F32(2.5), ref.horner(ref.GILES_Q, np.sqrt(t + F32(2.5)) - F32(3)), v)
    return v * x


def mp_check(x: np.ndarray, approx: np.ndarray, factor: float) -> float:
    """Largest |reference - mpmath| at these points, in float32 ulps: the reference is
    factor * scipy's erfinv, factor = sqrt(2) sigma (a float64) or 1."""
    with mpmath.workdps(30):
        f = mpmath.sqrt(2) * mpmath.mpf(factor / math.sqrt(2.0)) if factor != 1.0 else 1
        exact = np.array([float(f * mpmath.erfinv(mpmath.mpf(float(v)))) for v in x])
    return float(np.max(ulps(approx, exact)))


def report(label: str, x: np.ndarray, v: np.ndarray, exact: np.ndarray, factor: float = 1.0
           ) -> None:
    err = ulps(v, exact)
    absolute = np.abs(v.astype(np.float64) - exact)
    rel = np.abs(v.astype(np.float64) - exact) / np.abs(exact)
    i = int(np.argmax(err))
    worst = np.argsort(err)[-20:]
    rng = np.random.default_rng(0).choice(x.size, 2000, replace=False)
    scipy_err = max(mp_check(x[worst], exact[worst], factor), mp_check(x[rng], exact[rng], factor))
    print(f"{label}: {x.size} values; max {err[i]:.3f} ulp at x = {float(x[i])!r} "
          f"(value {float(v[i])!r}); max abs {absolute.max():.3g}; max rel {rel.max():.3g}; mean {err.mean():.3f} ulp; "
          f"> 1 ulp: {np.mean(err > 1):.2%}; scipy vs mpmath <= {scipy_err:.2g} ulp")


def main() -> None:
    k = np.arange(1, 1 << 23, 2, dtype=np.int32)  # every positive odd k < 2^23
    for kind, c in (("truncated_normal", ref.ERF_SQRT2), ("normal", 1.0)):
        x = k.astype(F32) * (F32(c) * F32(2.0**-23))
        e = erfinv32(x, tails=kind == "normal")
        exact = special.erfinv(x.astype(np.float64))
        report(f"{kind}: float32 erfinv on the stream's uniforms", x, e, exact)
        for sigma in (1.0, 0.1, ref.variance_scaling_sigma(2.0, 64)):
            # the sample itself (scale included): the law it should follow is sqrt(2) sigma erfinv(x)
            v = e * F32(math.sqrt(2.0) * sigma)
            f = math.sqrt(2.0) * sigma
            report(f"{kind}: sample, sigma = {sigma:.6g}", x, v, f * exact, f)
    x = np.arange(np.array(0.5, F32).view(np.int32), np.array(1.0, F32).view(np.int32),
                  dtype=np.int32).view(F32)  # every float32 in [0.5, 1)
    for label, part in (("[0.5, erf(sqrt 2)]", x <= F32(ref.ERF_SQRT2)),
                        ("(erf(sqrt 2), 1)", x > F32(ref.ERF_SQRT2))):
        report(f"float32 erfinv, every float32 in {label}", x[part], erfinv32(x[part], tails=True),
               special.erfinv(x[part].astype(np.float64)))


if __name__ == "__main__":
    main()
