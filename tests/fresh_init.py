"""Compare generated weights with a framework's own fresh initialization, tensor by tensor.

Both sides are pooled over several seeds: the framework builds the model anew under each seed,
and `varscale generate` writes the spec once per seed. For every tensor:

* a tensor that is one constant in every fresh model (norm scales, zero biases, running
  statistics) must be exactly that constant in every generated file;
* rows (axis 0) that are exactly 0 in every fresh model (an embedding's ``padding_idx``) must
  be exactly 0 in every generated file, and no other row may be;
* the remaining values are compared by a two-sample Kolmogorov-Smirnov test at level
  ``ALPHA / m`` (Bonferroni over the m random tensors of the model), and their stds must
  agree within ``z * se``, where ``se`` is the standard error of the log std ratio of two
  independent samples, sqrt((k1 - 1) / (4 n1) + (k2 - 1) / (4 n2)) (k the kurtosis
  E[x^4] / E[x^2]^2 of the pooled values, n the sample sizes) and z the two-sided normal
  quantile at the same corrected level;
* two random tensors that hold the same values in every fresh model (tied weights,
  deep-copied layers) must hold the same values in every generated file, and only those.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

ALPHA = 0.01
Pool = dict[str, list[np.ndarray]]


def pool(samples: Sequence[Mapping[str, np.ndarray]]) -> Pool:
    """name -> one float64 array per seed."""
    out: Pool = {}
    for sample in samples:
        for name, value in sample.items():
            out.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
    return out


def _constant(values: list[np.ndarray]) -> float | None:
    flat = np.concatenate([v.ravel() for v in values])
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return None


def _zero_rows(values: list[np.ndarray]) -> set[int]:
    if values[0].ndim < 1 or values[0].shape[0] == 0:
        return set()
    rows = None
    for v in values:
        flat = v.reshape(v.shape[0], -1)
        here = {int(i) for i in np.flatnonzero(np.all(flat == 0, axis=1))}
        rows = here if rows is None else rows & here
    return rows or set()


def _ties(p: Pool) -> set[frozenset[str]]:
    """Pairs of tensors equal in every seed."""
    names = sorted(p)
    out = set()
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if p[a][0].shape == p[b][0].shape and p[a][0].size and all(
                np.array_equal(x, y) for x, y in zip(p[a], p[b], strict=True)
            ):
                out.add(frozenset((a, b)))
    return out


@dataclass
class Comparison:
    """What `compare` checked, for the test's own assertions and its failure message."""

    constants: dict[str, float] = field(default_factory=dict)
    zero_rows: dict[str, set[int]] = field(default_factory=dict)
    ks: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (statistic, p)
    std_ratio: dict[str, tuple[float, float]] = field(default_factory=dict)  # (ratio, tol)
    ties: set[frozenset[str]] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


def compare(fresh: Pool, generated: Pool, names: Sequence[str] | None = None) -> Comparison:
    """Compare the pooled tensors ``names`` (default: every generated one); see module doc."""
    names = list(generated if names is None else names)
    result = Comparison()
    random_names = []
    for name in names:
        f, g = fresh[name], generated[name]
        assert f[0].shape == g[0].shape, (name, f[0].shape, g[0].shape)
        c = _constant(f)
        if c is not None:
            result.constants[name] = c
            if not all(np.all(v == c) for v in g):
                result.failures.append(f"{name}: fresh is the constant {c}, generated is not")
            continue
        cg = _constant(g)
        if cg is not None:
            result.failures.append(f"{name}: fresh is random, generated is the constant {cg}")
            continue
        zf, zg = _zero_rows(f), _zero_rows(g)
        if zf:
            result.zero_rows[name] = zf
        if zf != zg:
            result.failures.append(f"{name}: zero rows {sorted(zf)} fresh, {sorted(zg)} generated")
        random_names.append(name)
    level = ALPHA / max(1, len(random_names))
    z = float(stats.norm.isf(level / 2))
    for name in random_names:
        rows = result.zero_rows.get(name, set())
        fx, gx = (_values(v, rows) for v in (fresh[name], generated[name]))
        ks = stats.ks_2samp(fx, gx)
        result.ks[name] = (float(ks.statistic), float(ks.pvalue))
        if ks.pvalue < level:
            result.failures.append(f"{name}: KS D={ks.statistic:.4f} p={ks.pvalue:.2e} < {level:.1e}")
        sf, sg = _rms(fx), _rms(gx)
        se = math.sqrt((_kurtosis(fx) - 1) / (4 * fx.size) + (_kurtosis(gx) - 1) / (4 * gx.size))
        ratio = sg / sf
        result.std_ratio[name] = (ratio, z * se)
        if abs(math.log(ratio)) > z * se:
            result.failures.append(f"{name}: std ratio {ratio:.4f} beyond exp(+-{z * se:.4f})")
    tf = _ties({n: fresh[n] for n in random_names})
    tg = _ties({n: generated[n] for n in random_names})
    result.ties = tf
    if tf != tg:
        result.failures.append(
            f"ties only in fresh: {sorted(map(sorted, tf - tg))}; "
            f"only in generated: {sorted(map(sorted, tg - tf))}"
        )
    return result


def _values(arrays: list[np.ndarray], zero_rows: set[int]) -> np.ndarray:
    if zero_rows:
        keep = [i for i in range(arrays[0].shape[0]) if i not in zero_rows]
        arrays = [a[keep] for a in arrays]
    return np.concatenate([a.ravel() for a in arrays])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean((x - x.mean()) ** 2)))


def _kurtosis(x: np.ndarray) -> float:
    d = x - x.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2)


def fresh_pool(build: Callable[[int], Mapping[str, np.ndarray]], seeds: Sequence[int]) -> Pool:
    """The framework's fresh tensors under each seed."""
    return pool([build(s) for s in seeds])
