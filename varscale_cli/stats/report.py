"""Judging tensors and files: the report types and the checks that fill them.

Each tested tensor's three tests (`~varscale_cli.stats.tests.TESTS`) join one Bonferroni family
over the whole file: each runs at level alpha / (3 x number of tested tensors), so a correct
file fails with probability at most alpha. Tensors with fewer than `MIN_COUNT` elements are not
tested (verdict ``too_small``); the exact checks (bound, constant, NaN / inf, dtype) still apply.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from ..core.dtypes import is_float, name_of
from ..errors import SpecError
from ..formats.base import TensorInfo, WeightFile
from .law import Law, round_to, stored_bounds, stored_law
from .summary import KS_MAX, Summary, summarize
from .targets import Target
from .tests import MIN_COUNT, STATISTIC_SYMBOLS, TESTS, StatTest, StatTestResult, run_tests

__all__ = [
    "DEFAULT_ALPHA",
    "SCHEMA_VERSION",
    "STATS_CHUNK_ELEMS",
    "VERDICTS",
    "FileReport",
    "TensorReport",
    "Verdict",
    "check_file",
    "check_tensor",
]

SCHEMA_VERSION = 1
DEFAULT_ALPHA = 1e-3

#: What a report concludes about one tensor: ``pass`` / ``fail`` against its target,
#: ``too_small`` (exact checks only, below `MIN_COUNT`), ``no_target`` (moments only).
Verdict = Literal["pass", "fail", "too_small", "no_target"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


def _json_float(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class TensorReport:
    """Everything `varscale stats` says about one tensor (see `to_json` for the schema)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    zeros: int = 0
    nans: int = 0
    infs: int = 0
    fan_in: float | None = None
    fan_out: float | None = None
    target_std: float | None = None
    expected_std: float | None = None
    bound: float | None = None
    out_of_bound: int = 0
    tests: dict[StatTest, StatTestResult] = field(default_factory=dict)
    verdict: Verdict = "no_target"
    ok: bool = True
    note: str = ""
    kurtosis: float | None = None
    test_level: float | None = None
    distribution: dict[str, float | str] | None = None

    def to_json(self) -> dict[str, object]:
        """The tensor's JSON object; non-finite numbers become null (strict JSON)."""

        def fan(x: float | None) -> float | int | None:
            return int(x) if x is not None and float(x).is_integer() else _json_float(x)

        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "count": self.count,
            "mean": _json_float(self.mean),
            "std": _json_float(self.std),
            "min": _json_float(self.min),
            "max": _json_float(self.max),
            "kurtosis": _json_float(self.kurtosis),
            "zeros": self.zeros,
            "nans": self.nans,
            "infs": self.infs,
            "fan_in": fan(self.fan_in),
            "fan_out": fan(self.fan_out),
            "target_std": _json_float(self.target_std),
            "expected_std": _json_float(self.expected_std),
            "distribution": self.distribution,
            "bound": _json_float(self.bound),
            "out_of_bound": self.out_of_bound,
            "test_level": _json_float(self.test_level),
            "tests": {
                k: {kk: (_json_float(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                for k, v in self.tests.items()
            },
            "verdict": self.verdict,
            "ok": self.ok,
            "note": self.note,
        }


@dataclass
class FileReport:
    """The report on a whole file: per-tensor reports and the overall verdict.

    Attributes:
        tensors: one report per tensor, in file order.
        ok: every tensor ok and no target names a tensor the file lacks.
        alpha: family-wise false-failure probability of a correct file.
        family_size: number of statistical tests in the Bonferroni family.
        missing: tensors with a target that the file does not hold.
        path: the file checked.
    """

    tensors: list[TensorReport]
    ok: bool
    alpha: float
    family_size: int = 1
    missing: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def test_level(self) -> float:
        """Level of each statistical test: alpha / family_size (Bonferroni)."""
        return self.alpha / self.family_size

    def counts(self) -> dict[Verdict, int]:
        """Number of tensors per verdict."""
        out = dict.fromkeys(VERDICTS, 0)
        for t in self.tensors:
            out[t.verdict] += 1
        return out

    def to_json(self) -> dict[str, object]:
        """The ``--json`` document (schema in docs/stats.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "path": self.path,
            "alpha": self.alpha,
            "family_size": self.family_size,
            "test_level": self.test_level,
            "min_count": MIN_COUNT,
            "counts": self.counts(),
            "missing": list(self.missing),
            "tensors": [t.to_json() for t in self.tensors],
        }


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < alpha < 1.0:
        raise SpecError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")


def _will_test(count: int, dtype: np.dtype, target: Target | None) -> bool:
    return (
        target is not None
        and target.distribution.kind != "constant"
        and is_float(np.dtype(dtype))
        and count >= MIN_COUNT
    )


def family_size(tensors: Iterable[tuple[int, np.dtype, Target | None]]) -> int:
    """The Bonferroni family of a file whose tensors have these (count, dtype, target): every
    test of every tensor that will be tested."""
    return max(1, sum(_will_test(c, d, t) for c, d, t in tensors) * len(TESTS))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def check_tensor(
    name: str,
    shape: tuple[int, ...],
    dtype: npt.DTypeLike,
    chunks_factory: Callable[[], Iterable[np.ndarray]],
    target: Target | None,
    *,
    n_tests: int = len(TESTS),
    alpha: float = DEFAULT_ALPHA,
    summary: Callable[[float, float, int], Summary] | None = None,
) -> TensorReport:
    """Read one tensor once and judge it against ``target``.

    Args:
        name: tensor name (for the report).
        shape: its shape.
        dtype: its stored dtype.
        chunks_factory: returns an iterable of its values as 1-D chunks (called once).
        target: what it should hold, or None (moments only).
        n_tests: size of the Bonferroni family this tensor's tests belong to; each test runs
            at level ``alpha / n_tests``.
        alpha: family-wise level.
        summary: instead of reading ``chunks_factory``, the tensor's `Summary` for the
            given (lo, hi, subsample size), taken elsewhere (generate's post-write check).

    Returns:
        The tensor's report; ``ok`` is False only for verdict ``fail``.
    """
    _check_alpha(alpha)
    if isinstance(n_tests, bool) or not isinstance(n_tests, int) or n_tests < 1:
        raise ValueError(f"n_tests must be a positive integer, got {n_tests!r}")
    shape = tuple(int(d) for d in shape)
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    rep = TensorReport(name=name, shape=shape, dtype=name_of(dtype), count=count)
    if target is not None:
        dist = target.distribution
        rep.fan_in, rep.fan_out, rep.target_std = target.fan_in, target.fan_out, target.target_std
        rep.distribution = dist.to_json()
    if dtype.kind == "c":
        rep.verdict, rep.ok = ("fail", False) if target is not None else ("no_target", True)
        rep.note = "complex values are not analysed"
        return rep

    problems: list[str] = []
    lo, hi = -math.inf, math.inf
    law: Law | None = None
    tested = False
    if target is not None:
        dist = target.distribution
        if target.dtype is not None and np.dtype(target.dtype) != dtype:
            problems.append(f"stored as {name_of(dtype)}, not {name_of(target.dtype)}")
        if dist.kind == "constant":
            lo = hi = round_to(dist.loc, dtype) if is_float(dtype) else dist.loc
            rep.bound, rep.expected_std = 0.0, 0.0
        elif not is_float(dtype):
            problems.append(f"a {name_of(dtype)} tensor cannot hold samples of a {dist.kind} law")
        else:
            law = stored_law(dist, dtype)
            lo, hi, rep.bound = stored_bounds(dist, dtype)
            rep.expected_std = law.std
            tested = count >= MIN_COUNT and law.var > 0
            rep.test_level = alpha / n_tests if tested else None

    sample_size = KS_MAX if tested else 0
    if summary is not None:
        s = summary(lo, hi, sample_size)
    else:
        s = summarize(chunks_factory(), count=count, lo=lo, hi=hi, sample_size=sample_size)
    if s.n:
        rep.mean, rep.std, rep.min, rep.max = s.mean, s.std, s.min, s.max
        rep.kurtosis = s.kurtosis
    rep.zeros, rep.nans, rep.infs = s.zeros, s.nans, s.infs
    rep.out_of_bound = s.below + s.above

    if target is None:
        rep.verdict, rep.ok = "no_target", True
        extra = f"; {s.nans} NaN, {s.infs} inf" if s.nans or s.infs else ""
        rep.note = "no target known: moments only" + extra
        return rep

    if s.nans or s.infs:
        problems.append(f"{s.nans} NaN and {s.infs} inf values")
    if rep.out_of_bound:
        if target.distribution.kind == "constant":
            problems.append(f"{rep.out_of_bound} values differ from {_fmt(lo)}")
        else:
            problems.append(f"{rep.out_of_bound} values beyond the bound [{_fmt(lo)}, {_fmt(hi)}]")
    if tested and law is not None and s.n >= MIN_COUNT:
        assert rep.test_level is not None
        rep.tests = run_tests(s, target.distribution, law, rep.test_level)
        for key, t in rep.tests.items():
            if not t["ok"]:
                problems.append(f"{key} test {STATISTIC_SYMBOLS[key]}={_fmt(t['statistic'])} (p={t['p_value']:.3g})")
    if problems:
        rep.verdict, rep.ok = "fail", False
        rep.note = "; ".join(problems)
    elif target.distribution.kind == "constant":
        rep.verdict, rep.ok = "pass", True
        rep.note = "every value equals the constant"
    elif not tested:
        rep.verdict, rep.ok = "too_small", True
        why = (
            "the stored dtype rounds the law to a single value"
            if law is not None and law.var <= 0
            else f"{count} elements < {MIN_COUNT}"
        )
        rep.note = f"{why}: not tested statistically; bound and NaN checks only"
    else:
        rep.verdict, rep.ok = "pass", True
    return rep


#: Elements per read chunk for the statistics: 256 Ki values are 2 MiB once widened to
#: float64, so the dozen passes of `summarize` run in cache; 1 Mi-element chunks were 1.5x
#: slower and raised peak memory by ~35 MB on a 1 GB checkpoint.
STATS_CHUNK_ELEMS = 1 << 18


def _counted(
    factory: Callable[[], Iterable[np.ndarray]], info: TensorInfo, on_chunk: Callable[[str, int], None]
) -> Iterator[np.ndarray]:
    for chunk in factory():
        on_chunk(info.name, chunk.size * info.dtype.itemsize)
        yield chunk


def check_file(
    wf: WeightFile,
    targets: Mapping[str, Target | None],
    *,
    alpha: float = DEFAULT_ALPHA,
    chunk_elems: int | None = STATS_CHUNK_ELEMS,
    progress: Callable[[TensorInfo], None] | None = None,
    workers: int = 1,
    on_chunk: Callable[[str, int], None] | None = None,
) -> FileReport:
    """Check every tensor of ``wf``; tensors without an entry in ``targets`` get moments only.

    The Bonferroni family is every statistical test of every tensor that will be tested
    (has a non-constant target, a floating dtype and at least `MIN_COUNT` elements), so a
    correct file fails with probability at most ``alpha``.

    Args:
        wf: an open weight file.
        targets: tensor name -> target (None or absent: unknown).
        alpha: family-wise level.
        chunk_elems: chunk size for reading (None: the reader's default).
        progress: called with each tensor's info before it is read.
        workers: tensors checked in parallel threads, for readers that declare
            ``thread_safe`` (positional reads); numpy releases the GIL in the reductions.
        on_chunk: called with a tensor's name and the stored bytes of each chunk read (from
            the worker threads), for a progress display.
    """
    _check_alpha(alpha)
    infos = wf.tensors()
    family = family_size((i.count, i.dtype, targets.get(i.name)) for i in infos)

    def one(info: TensorInfo) -> TensorReport:
        if progress is not None:
            progress(info)
        if chunk_elems is None:
            factory = functools.partial(wf.iter_chunks, info.name)
        else:
            factory = functools.partial(wf.iter_chunks, info.name, chunk_elems)
        if on_chunk is not None:
            factory = functools.partial(_counted, factory, info, on_chunk)
        return check_tensor(
            info.name, info.shape, info.dtype, factory, targets.get(info.name),
            n_tests=family, alpha=alpha,
        )

    if workers > 1 and getattr(wf, "thread_safe", False):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="varscale-stats") as pool:
            reports = list(pool.map(one, infos))
    else:
        reports = [one(info) for info in infos]
    names = {i.name for i in infos}
    missing = sorted(n for n, t in targets.items() if t is not None and n not in names)
    return FileReport(
        tensors=reports,
        ok=all(r.ok for r in reports) and not missing,
        alpha=float(alpha),
        family_size=family,
        missing=missing,
        path=str(wf.path),
    )
