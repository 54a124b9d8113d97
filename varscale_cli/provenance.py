"""The provenance record every varscale output carries, typed, with its one JSON form.

A file's ``varscale`` metadata holds a `Provenance`: who wrote it (version, random stream id),
from what (seed, the spec's sha256) and, per tensor, a `TensorRecord` with everything needed to
draw its values again (initializer config, layout and axes, stream name, partition region) plus
what follows from them (fans, target std, the exact distribution) for ``varscale stats``.
Each tensor also carries its own record as an attribute.

`to_json` is the one serialisation: sorted keys and compact separators, so the same record
always gives the same bytes (golden file hashes depend on them). `Provenance.from_json` is the
strict reader used before regenerating anything; `recorded_distributions` is the lenient one
``varscale stats`` needs (it only reads each tensor's distribution, fans and dtype, so files
written by other tools that record just those can be checked too).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

from .core.distributions import MAX_DISTRIBUTION_PARAM, Distribution, param_beyond_limit, parse_kind
from .core.stream import STREAM_ID
from .errors import ReadError, VarscaleError

#: A JSON document as the standard library's json module reads it.
JSONValue: TypeAlias = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]

_T = TypeVar("_T")

#: Longest provenance text accepted: the safetensors header limit (``MAX_HEADER_SIZE`` =
#: 100,000,000 bytes in huggingface/safetensors' safetensors/src/tensor.rs; the header holds the
#: metadata), far above any real checkpoint's record (~600 bytes per tensor).
MAX_TEXT_CHARS = 100_000_000

#: Largest seed: the command line's ``--seed`` range (a signed 64-bit integer, what
#: numpy's and torch's seeding APIs accept).
MAX_SEED = 2**63 - 1

#: Deepest nesting accepted in an initializer's config. The configs varscale writes are flat
#: (numbers and strings); 8 levels leave room for nested configs and bound the walk.
MAX_CONFIG_DEPTH = 8



#: Smallest cut of a truncated normal accepted (half its interval's width, when ``lower`` makes
#: it asymmetric: the interval [lower, cut] must be at least 0.02 wide). Its moments are differences of nearly equal
#: numbers (variance 1 - 2c*phi(c)/Z ~ c*c/3 for small c); the sixth moment, ~c**6/7, keeps a
#: relative error of about 3 * 2**-52 / (c**6 / 7), 5e-3 at c = 0.01 (fine for a tolerance) but
#: meaningless at 1e-3 and negative (a math domain error) far below. varscale writes c = 2.
MIN_TRUNCATION_CUT = 0.01


def dumps(obj: JSONValue) -> str:
    """Compact JSON with sorted keys: the same provenance always serialises to the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _unique_keys(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    """``object_pairs_hook``: a repeated key is an error, not last-wins."""
    out = dict(pairs)
    if len(out) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        raise ValueError(f"duplicate key {next(k for k, n in counts.items() if n > 1)!r}")
    return out


def _no_constant(name: str) -> JSONValue:
    raise ValueError(f"{name} is not valid JSON")


def _load(text: str) -> JSONValue:
    """json.loads, bounded: no repeated keys, no NaN/Infinity, no absurd size or depth."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{len(text):,} characters is more than the {MAX_TEXT_CHARS:,} accepted")
    try:
        doc: JSONValue = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return doc


# --- typed field readers (each raises ValueError/TypeError naming the field) --------------------


def _mapping(value: JSONValue, what: str) -> dict[str, JSONValue]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is a {type(value).__name__}, not an object")
    return value


def _str(value: JSONValue, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is not a string: {value!r}")
    return value


def _int(value: JSONValue, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} is not an integer >= {minimum}: {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what} is more than {maximum}: {value!r}")
    return value


def _number(value: JSONValue, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return float(value)


def _ints(value: JSONValue, what: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is not a list: {value!r}")
    return tuple(_int(v, what) for v in value)


def _optional_ints(value: JSONValue, what: str) -> tuple[int, ...] | None:
    return None if value is None else _ints(value, what)


def _check_depth(value: JSONValue, what: str, depth: int = 0) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise ValueError(f"{what} is nested more than {MAX_CONFIG_DEPTH} levels deep")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        _check_depth(child, what, depth + 1)


def distribution_from_json(value: JSONValue) -> Distribution:
    """A recorded distribution: a known kind, finite parameters, a positive scale and cut."""
    d = _mapping(value, "distribution")
    kind = parse_kind(d.get("kind"))
    matrix = ("rows", "cols") if kind == "orthogonal" else ()
    unknown = set(d) - {"kind", "scale", "loc", "cut", "lower", *matrix}
    if unknown:
        raise ValueError(f"distribution has unknown fields {sorted(unknown)}")
    scale = _number(d.get("scale", 0.0), "scale")
    loc = _number(d.get("loc", 0.0), "loc")
    cut = _number(d.get("cut", 2.0), "cut")
    lower = None if d.get("lower") is None else _number(d.get("lower"), "lower")
    if scale < 0 or (kind != "constant" and scale == 0) or (lower is None and cut <= 0):
        raise ValueError(f"invalid distribution parameters scale={scale}, cut={cut}")
    if lower is not None and not lower < cut:
        raise ValueError(f"invalid distribution parameters lower={lower}, cut={cut}")
    beyond = param_beyond_limit(loc, scale, cut, lower)
    if beyond is not None:
        key, v = beyond
        raise ValueError(f"distribution {key} {v:g} is beyond the {MAX_DISTRIBUTION_PARAM:g} accepted")
    width = cut - (-cut if lower is None else lower)
    if kind == "truncated_normal" and width < 2 * MIN_TRUNCATION_CUT:
        what = f"cut {cut:g}" if lower is None else f"interval [{lower:g}, {cut:g}]"
        raise ValueError(
            f"truncated_normal {what} is narrower than the {2 * MIN_TRUNCATION_CUT:g} "
            "accepted (its moments cannot be computed in float64)"
        )
    if kind == "orthogonal":  # the matrix it is: checked again against the shape by verify
        rows = _int(d.get("rows"), "rows", minimum=0, maximum=2**48)  # a tensor's element limit
        cols = _int(d.get("cols"), "cols", minimum=0, maximum=2**48)
        return Distribution(kind, scale, loc, cut, lower, rows=rows, cols=cols)
    return Distribution(kind, scale, loc, cut, lower)


# --- the records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorRecord:
    """How one tensor was drawn (the first block) and what follows from it (the second).

    Attributes:
        initializer: the initializer's spec mapping (``{"name": ..., **params}``).
        layout: the fan convention (``keras`` or ``torch``).
        in_axis / out_axis: explicit fan axes, or None for the layout's default.
        batch_axis: axes that count for neither fan.
        stream: the name whose random stream gives the values.
        full_shape / offset: the stream's full tensor and this tensor's place in it.
        shape / dtype: what is stored.
        fan_in / fan_out / target_std / distribution: derived at generation time; a reader
            that regenerates derives them again rather than trusting them.
        zero_rows: rows of the full tensor that are exactly 0 (a spec's ``zero_rows``); the
            key is written only when there are some, so other files' bytes are unchanged.
    """

    initializer: dict[str, JSONValue]
    layout: str
    in_axis: tuple[int, ...] | None
    out_axis: tuple[int, ...] | None
    batch_axis: tuple[int, ...]
    stream: str
    shape: tuple[int, ...]
    dtype: str
    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    fan_in: int
    fan_out: int
    target_std: float
    distribution: Distribution
    zero_rows: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, JSONValue]:
        def axes(value: tuple[int, ...] | None) -> list[JSONValue] | None:
            return None if value is None else list(value)

        distribution: dict[str, JSONValue] = {**self.distribution.to_json()}
        optional: dict[str, JSONValue] = {"zero_rows": list(self.zero_rows)} if self.zero_rows else {}
        return {
            "initializer": self.initializer, "layout": self.layout,
            "in_axis": axes(self.in_axis), "out_axis": axes(self.out_axis),
            "batch_axis": list(self.batch_axis), "stream": self.stream,
            "full_shape": list(self.full_shape), "offset": list(self.offset),
            "shape": list(self.shape), "dtype": self.dtype,
            "fan_in": self.fan_in, "fan_out": self.fan_out, "target_std": self.target_std,
            "distribution": distribution, **optional,
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, value: JSONValue) -> TensorRecord:
        """Raises ValueError/TypeError naming the first field that is missing or wrong."""
        r = _mapping(value, "the record")
        missing = [k for k in _TENSOR_FIELDS if k not in r]
        if missing:
            raise KeyError(missing[0])
        initializer = _mapping(r["initializer"], "initializer")
        _check_depth(initializer, "initializer")

        def get(key: str, read: Callable[[JSONValue, str], _T]) -> _T:
            return read(r[key], key)

        return cls(
            initializer=initializer, layout=get("layout", _str), stream=get("stream", _str),
            in_axis=get("in_axis", _optional_ints), out_axis=get("out_axis", _optional_ints),
            batch_axis=get("batch_axis", _ints), full_shape=get("full_shape", _ints),
            offset=get("offset", _ints), shape=get("shape", _ints), dtype=get("dtype", _str),
            fan_in=get("fan_in", _int), fan_out=get("fan_out", _int),
            target_std=get("target_std", _number),
            distribution=distribution_from_json(r["distribution"]),
            zero_rows=get("zero_rows", _ints) if "zero_rows" in r else (),
        )


#: The keys every record has (``zero_rows`` is there only when a tensor has some).
_TENSOR_FIELDS = tuple(k for k in TensorRecord.__dataclass_fields__ if k != "zero_rows")


@dataclass(frozen=True)
class ShardRef:
    """Which shard of how many a file is (0-based ``index``)."""

    index: int
    count: int


@dataclass(frozen=True)
class Provenance:
    """A whole file's record: writer, random stream, seed, spec hash and its tensors."""

    varscale_version: str
    stream_id: str
    seed: int
    spec_sha256: str
    tensors: Mapping[str, TensorRecord] = field(default_factory=dict)
    shard: ShardRef | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        doc: dict[str, JSONValue] = {
            "varscale_version": self.varscale_version,
            "stream_id": self.stream_id,
            "seed": self.seed,
            "spec_sha256": self.spec_sha256,
            "tensors": {name: rec.to_dict() for name, rec in self.tensors.items()},
        }
        if self.shard is not None:
            doc["shard"] = {"index": self.shard.index, "count": self.shard.count}
        return doc

    def to_json(self) -> str:
        return dumps(self.to_dict())

    def file_metadata(self) -> dict[str, str]:
        """The str -> str metadata every format stores (HF loaders require ``format: pt``)."""
        return {"format": "pt", "varscale": self.to_json()}

    def subset(self, names: Iterable[str], shard: ShardRef) -> Provenance:
        """The record of one shard: the same header, only ``names``' tensors, and ``shard``."""
        return Provenance(
            self.varscale_version, self.stream_id, self.seed, self.spec_sha256,
            {name: self.tensors[name] for name in names}, shard,
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> Provenance:
        """Parse strictly, refusing a record written for another random stream than ours.

        Raises:
            ReadError: not JSON, too large or deep, or a field missing or of the wrong type
                (one line naming ``where`` and, for a tensor's record, the tensor).
            VarscaleError: the file was written with a random stream other than `STREAM_ID`.
        """
        try:
            doc = _mapping(_load(text), "the provenance")
            recorded_stream = _str(doc["stream_id"], "stream_id")
            seed = _int(doc["seed"], "seed", maximum=MAX_SEED)
            records = _mapping(doc["tensors"], "tensors")
            version = _str(doc.get("varscale_version", ""), "varscale_version")
            sha = _str(doc.get("spec_sha256", ""), "spec_sha256")
            shard = _shard_from_json(doc.get("shard"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ReadError(f"'{where}': unreadable varscale provenance: {exc}") from None
        if recorded_stream != STREAM_ID:
            raise VarscaleError(
                f"'{where}' was written with random stream {recorded_stream!r}; this varscale implements "
                f"{STREAM_ID!r}: verify it with the varscale version recorded in the file"
            )
        tensors = {}
        for name, value in records.items():
            try:
                tensors[name] = TensorRecord.from_dict(value)
            except (ValueError, KeyError, TypeError) as exc:
                raise record_error(where, name, exc) from None
        return cls(version, recorded_stream, seed, sha, tensors, shard)


def record_error(where: str, name: str, exc: Exception) -> ReadError:
    """The one message for a tensor whose record cannot be used (parsed or derived)."""
    return ReadError(f"'{where}': tensor '{name}': unusable provenance record: {exc}")


def _shard_from_json(value: JSONValue) -> ShardRef | None:
    if value is None:
        return None
    s = _mapping(value, "shard")
    return ShardRef(_int(s["index"], "shard index"), _int(s["count"], "shard count", minimum=1))


# --- what `varscale stats` reads -----------------------------------------------------------------


@dataclass(frozen=True)
class RecordedDistribution:
    """The part of a tensor's record a statistical check uses (all but the law optional)."""

    distribution: Distribution
    target_std: float | None
    fan_in: float | None
    fan_out: float | None
    dtype: str | None


def recorded_distributions(text: str, where: str) -> dict[str, RecordedDistribution]:
    """Each tensor's recorded law from provenance text (other fields are not required).

    Args:
        text: the provenance JSON.
        where: the file it comes from, for messages.

    Raises:
        ReadError: not JSON, no ``tensors`` object, or a tensor without a valid distribution.
    """
    try:
        doc = _load(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("tensors"), dict):
            raise ValueError('no "tensors" object')
        out: dict[str, RecordedDistribution] = {}
        for name, entry in _mapping(doc["tensors"], "tensors").items():
            try:
                out[name] = _recorded(entry)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"tensor {name!r}: {exc}") from None
        return out
    except (ValueError, TypeError) as exc:
        raise ReadError(f"'{where}': invalid varscale provenance metadata: {' '.join(str(exc).split())}") from None


def _recorded(entry: JSONValue) -> RecordedDistribution:
    if not isinstance(entry, dict) or not isinstance(entry.get("distribution"), dict):
        raise ValueError('no "distribution" object')
    dist = distribution_from_json(entry["distribution"])

    def optional(key: str) -> float | None:
        value = entry.get(key)
        return None if value is None else _number(value, key)

    dtype = entry.get("dtype")
    return RecordedDistribution(
        distribution=dist,
        target_std=optional("target_std"),
        fan_in=optional("fan_in"),
        fan_out=optional("fan_out"),
        dtype=dtype if isinstance(dtype, str) else None,
    )


# --- the sharded reader ----------------------------------------------------------------------------


def merge(a: str, b: str) -> str:
    """Union of two shards' provenance text: the first's fields, both shards' tensors.

    Text that is not a provenance object is passed through unchanged (``a``), so the parser
    that reads the merged text reports it.
    """
    if a == b:
        return a
    try:
        pa, pb = json.loads(a), json.loads(b)
        tensors = {**pa["tensors"], **pb["tensors"]}
    except (ValueError, TypeError, KeyError):
        return a
    return json.dumps({**pa, "tensors": tensors}, sort_keys=True)
