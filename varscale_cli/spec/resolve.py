"""Pass 4, resolve: rules and defaults, initializers (`initializers.deserialize`), dtypes, split
expansion, partitions and fan axes (`fans.compute_fans`); one `TensorPlan` per output tensor.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
from typing import Any, NamedTuple

from ..core import dtypes
from ..core.fit import law_problem
from ..core.initializers import Initializer, deserialize
from ..errors import UnsupportedDtype
from ..formats import RESERVED_NAMES
from . import links
from .messages import Ctx, closest, render_path, show, show_limit
from .model import TensorPlan
from .parse import MAX_TENSORS

#: "Absurd" sizes: past these a spec is a typo, not a model. 2**40 per dim (the maximum of
#: ``$defs.dim`` in spec_schema.json) and 2**48 elements (the 48-bit practical limit of
#: safetensors offsets; 1 PiB of float32) per tensor.
MAX_DIM = 2**40
MAX_ELEMENTS = 2**48


#: The spellings a spec's ``dtype`` accepts -> canonical name: what the random stream samples
#: (with their aliases), plus the complex dtypes where the initializer says it can produce them.
#: Dtypes that are only ever read (the float8 family) are refused.
_SPEC_DTYPES: dict[str, str] = {
    alias: name
    for alias, name in dtypes.ALIASES.items()
    if name in dtypes.SAMPLED or name in dtypes.COMPLEX
}
KNOWN_DTYPES = tuple(sorted(set(_SPEC_DTYPES.values())))

#: Keys that may sit on an entry or, equivalently, inside its initializer mapping.
EMBEDDED_KEYS = ("layout", "dtype", "in_axis", "out_axis", "batch_axis")
AXIS_KEYS = ("in_axis", "out_axis", "batch_axis")

#: Used when no tensor, rule or default sets the key (Keras' Dense default initializer).
DEFAULT_INITIALIZER = "glorot_uniform"
DEFAULT_DTYPE = "float32"


def _canonical_dtype(name: Any) -> str | None:
    return _SPEC_DTYPES.get(name) if isinstance(name, str) else None


class _Part(NamedTuple):
    """One output tensor of an entry, before its plan is built."""

    name: str
    shape: tuple[int, ...]
    #: The name whose random stream gives the values (a partition's ``of``, a split's entry).
    stream: str
    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    #: Keys added to the plan's provenance ``source`` (a split's axis, parts and index).
    extra: dict[str, Any]
    #: Where the tensor was defined, for the duplicate-name message; "" for the entry itself.
    origin: str


def _label(init: Initializer) -> str:
    """The name the user knows the initializer by (a preset's, else the class's registry name)."""
    return init.preset or init.name


def _check_name(name: str, ctx: Ctx, what: str = "tensor name") -> None:
    if not name:
        raise ctx.error(f"{what} must not be empty")
    if name.startswith("/") or name.endswith("/"):
        raise ctx.error(f"{what} {show(name)} must not start or end with '/'")
    if "//" in name:
        raise ctx.error(f"{what} {show(name)} must not contain '//'")
    if name in RESERVED_NAMES:
        raise ctx.error(
            f"{what} {show(name)} is reserved (output formats keep their metadata under it); "
            f"reserved: {', '.join(RESERVED_NAMES)}"
        )


class _Resolver:
    """Builds `TensorPlan`s from a schema-valid document."""

    def __init__(self, doc: dict[str, Any], ctx: Ctx) -> None:
        self.ctx = ctx
        # One deserialize per distinct initializer: a default shared by thousands of tensors is
        # built once, and equal configs give the same object.
        self.inits: dict[str, Initializer] = {}
        self.defaults = self.level(doc.get("defaults", {}), "defaults", tensor=False)
        self.rules: list[tuple[str, str, dict[str, Any]]] = []
        for i, rule in enumerate(doc.get("rules", [])):
            where = f"rules[{i}]"
            values = self.level(rule, where, tensor=False)
            if not values:
                raise ctx.error(
                    "the rule sets nothing; give it initializer, dtype or layout", where
                )
            self.rules.append((rule["match"], where, values))

    def initializer(self, raw: Any, where: str) -> Initializer:
        key = json.dumps(raw, sort_keys=True)
        if key not in self.inits:
            try:
                self.inits[key] = deserialize(copy.deepcopy(raw))
            except (ValueError, TypeError, OverflowError) as e:
                raise self.ctx.error(f"initializer: {e}", where) from None
        return self.inits[key]

    def level(self, entry: dict[str, Any], where: str, tensor: bool) -> dict[str, Any]:
        """The keys one entry (tensor, rule or defaults) sets, with embedded keys taken out of
        its initializer mapping; ``initializer`` maps to (raw form, object)."""
        values: dict[str, Any] = {}
        for k in EMBEDDED_KEYS:
            if k in entry:
                values[k] = self._normalize(k, entry[k], where, tensor)
        raw = entry.get("initializer")
        if isinstance(raw, dict):
            raw = dict(raw)
            for k in EMBEDDED_KEYS:
                if k in raw:
                    inner = raw.pop(k)
                    value = self._normalize(k, inner, where, tensor)
                    if k in values and values[k] != value:
                        raise self.ctx.error(
                            f"{k} {show(entry[k])} conflicts with {k} {show(inner)} inside its "
                            "initializer; set it in one place",
                            where,
                        )
                    values[k] = value
            if not raw:
                raise self.ctx.error(
                    "the initializer mapping is empty once layout, dtype and axes are taken "
                    "out; give it a `name`",
                    where,
                )
        if raw is not None:
            values["initializer"] = (raw, self.initializer(raw, where))
        return values

    def _normalize(self, key: str, value: Any, where: str, tensor: bool) -> Any:
        if key in AXIS_KEYS:
            return (value,) if isinstance(value, int) else tuple(value)
        if key == "dtype":
            canonical = _canonical_dtype(value)
            if canonical is not None:
                return canonical
            if not tensor:
                # A tensor's unknown dtype is reported with its initializer (see plans());
                # a rule's or the defaults' must not wait for a tensor to use it.
                raise self.ctx.error(
                    f"dtype {show(value)} is not a known dtype; allowed: {', '.join(KNOWN_DTYPES)}"
                    f"{closest(value, _SPEC_DTYPES)}",
                    where,
                    cls=UnsupportedDtype,
                )
        return value

    def plans(self, name: str, entry: dict[str, Any], origin: str) -> list[tuple[TensorPlan, str]]:
        """The plans of one tensor entry (several if it is split), each with its origin."""
        ctx = self.ctx
        where = f"tensor {show(name)}"
        own = self.level(entry, where, tensor=True)
        levels = [("tensor", own)]
        levels += [(w, vals) for pat, w, vals in self.rules if fnmatch.fnmatchcase(name, pat)]
        levels.append(("defaults", self.defaults))
        resolved: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for key in ("initializer", *EMBEDDED_KEYS):
            for level_name, vals in levels:
                if key in vals:
                    resolved[key], origins[key] = vals[key], level_name
                    break
        if "initializer" not in resolved:
            raw = DEFAULT_INITIALIZER
            resolved["initializer"] = (raw, self.initializer(raw, where))
            origins["initializer"] = "builtin"
        init_raw, init = resolved["initializer"]

        dtype_raw = resolved.get("dtype", DEFAULT_DTYPE)
        dtype = _canonical_dtype(dtype_raw)
        if dtype is None or not init.supports_dtype(dtype):
            allowed = [d for d in KNOWN_DTYPES if init.supports_dtype(d)]
            hint = closest(dtype_raw, _SPEC_DTYPES) if dtype is None else ""
            raise ctx.error(
                f"dtype {show(dtype_raw)} cannot be produced by initializer {show(_label(init))}; "
                f"allowed: {', '.join(allowed)}{hint}",
                where,
                cls=UnsupportedDtype,
            )
        # No layout anywhere: the initializer's own (torch for torch.*, else keras).
        layout = resolved.get("layout", init.default_layout)
        in_axis, out_axis = resolved.get("in_axis"), resolved.get("out_axis")
        batch_axis = resolved.get("batch_axis", ())

        shape = tuple(entry["shape"])
        parts = self._parts(name, shape, entry, where)
        full = parts[0].full_shape
        for s in (shape, full):
            if math.prod(s) > MAX_ELEMENTS:
                raise ctx.error(
                    f"shape {list(s)} has {math.prod(s)} elements, more than the limit of "
                    f"{show_limit(MAX_ELEMENTS)}",
                    where,
                )
        try:
            fans = init.fans(full, layout, in_axis, out_axis, batch_axis or None)
        except ValueError as e:
            raise ctx.error(str(e), where) from None
        # Values the dtype cannot hold (a float16 constant of 1e308, uniform bounds past
        # float32's range) are spec errors now, not inf in a published file later.
        # (An initializer that takes another tensor's fans, torch.default_bias, has no law until
        # links.bind_fans binds them; its U(+-1/sqrt(fan_in)) fits every dtype.)
        if not init.takes_fans:
            try:
                law = init.law(*fans, dtype, shape=full, layout=layout)
            except ValueError as e:  # e.g. an orthogonal matrix over its size limit
                raise ctx.error(f"initializer: {e}", where) from None
            problem = law_problem(law, dtype)
            if problem is not None:
                raise ctx.error(f"initializer {show(_label(init))}: {problem}", where)
        # The fans accepted the axes, so they are in range: store them non-negative, so that
        # -1 and rank-1 compare equal when partitions of one stream are checked against each other.
        rank = len(full)
        in_axis, out_axis, batch_axis = (
            None if a is None else tuple(i % rank for i in a)
            for a in (in_axis, out_axis, batch_axis)
        )

        zero_rows = links.zero_rows(entry, full, ctx, where)
        out = []
        for pname, pshape, stream, pfull, offset, extra, porigin in parts:
            source: dict[str, Any] = {
                "name": pname,
                "shape": list(pshape),
                "dtype": dtype,
                "layout": layout,
                "initializer": copy.deepcopy(init_raw),
            }
            for k, a in zip(AXIS_KEYS, (in_axis, out_axis, batch_axis), strict=True):
                if a is not None and (a or k != "batch_axis"):  # in_axis: [] is not unset
                    source[k] = list(a)
            if stream != pname or pfull != pshape:
                source["partition"] = {
                    "of": stream,
                    "full_shape": list(pfull),
                    "offset": list(offset),
                }
            source.update(extra)
            if zero_rows:
                source["zero_rows"] = list(zero_rows)
            source["origin"] = dict(origins)
            plan = TensorPlan(
                name=pname,
                shape=pshape,
                dtype=dtype,
                initializer=init,
                layout=layout,
                in_axis=in_axis,
                out_axis=out_axis,
                batch_axis=batch_axis or (),
                stream=stream,
                full_shape=pfull,
                offset=offset,
                source=source,
                zero_rows=zero_rows,
            )
            out.append((plan, porigin if porigin else origin))
        return out

    def _parts(
        self, name: str, shape: tuple[int, ...], entry: dict[str, Any], where: str
    ) -> list[_Part]:
        """The output tensors of one entry: itself, its partition, or the parts of its split."""
        ctx = self.ctx
        part, split = entry.get("partition"), entry.get("split")
        rank = len(shape)
        if part is not None and split is not None:
            raise ctx.error("a tensor cannot have both `partition` and `split`", where)
        if part is not None:
            of = part.get("of", name)
            _check_name(of, ctx, f"{where}: partition.of")
            full, offset = tuple(part["full_shape"]), tuple(part["offset"])
            if len(full) != rank or len(offset) != rank:
                raise ctx.error(
                    f"partition full_shape {list(full)} and offset {list(offset)} must both have "
                    f"the rank of shape {list(shape)} ({rank})",
                    where,
                )
            for i, (o, d, f) in enumerate(zip(offset, shape, full, strict=True)):
                if o + d > f:
                    raise ctx.error(
                        f"partition does not fit in full_shape {list(full)}: on axis {i}, "
                        f"offset {o} + shape {d} = {o + d} > {f}",
                        where,
                    )
            return [_Part(name, shape, of, full, offset, {}, "")]
        if split is not None:
            axis, count = split["axis"], split["parts"]
            if not -rank <= axis < rank:
                allowed = f"allowed: {-rank} .. {rank - 1}" if rank else "a 0-d tensor has no axes"
                raise ctx.error(
                    f"split axis {axis} is out of range for shape {list(shape)} ({allowed})", where
                )
            a = axis % rank
            if shape[a] % count:
                raise ctx.error(
                    f"split: axis {axis} has size {shape[a]}, which is not divisible into "
                    f"{count} parts",
                    where,
                )
            step = shape[a] // count
            out: list[_Part] = []
            for k in range(count):
                pshape = shape[:a] + (step,) + shape[a + 1 :]
                offset = tuple(k * step if i == a else 0 for i in range(rank))
                extra = {"split": {"axis": a, "parts": count, "index": k}}
                out.append(
                    _Part(
                        f"{name}/part_{k}",
                        pshape,
                        name,
                        shape,
                        offset,
                        extra,
                        f"the split of {show(name)}",
                    )
                )
            return out
        return [_Part(name, shape, name, shape, (0,) * rank, {}, "")]


def _check_streams(plans: list[TensorPlan], ctx: Ctx) -> None:
    """Tensors that share a random stream must describe the same full tensor: a partition has
    the values of the matching slice of ``of`` only if both agree on everything the values
    depend on."""
    by_name = {p.name: p for p in plans}
    reference: dict[str, TensorPlan] = {}
    for p in plans:
        owner = by_name.get(p.stream)
        if owner is not None and owner.stream != owner.name:
            raise ctx.error(
                f"partition of {show(p.stream)}, which is itself a slice of {show(owner.stream)}; "
                f"point `of` at {show(owner.stream)}",
                f"tensor {show(p.name)}",
            )
        # Compare against the full tensor itself when the spec has it, else the first slice.
        ref = reference.setdefault(p.stream, owner or p)
        if ref is p:
            continue
        for what in (
            "full_shape",
            "dtype",
            "initializer",
            "layout",
            "in_axis",
            "out_axis",
            "batch_axis",
            "zero_rows",
        ):
            mine, theirs = getattr(p, what), getattr(ref, what)
            if mine != theirs:
                render = repr if what == "initializer" else show
                ref_what = "shape" if what == "full_shape" and ref is owner else what
                raise ctx.error(
                    f"{what} {render(_plain(mine))} differs from {ref_what} "
                    f"{render(_plain(theirs))} of tensor {show(ref.name)}; tensors that share the "
                    f"random stream {show(p.stream)} must agree on it",
                    f"tensor {show(p.name)}",
                )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def resolve_plans(doc: dict[str, Any], ctx: Ctx) -> tuple[TensorPlan, ...]:
    resolver = _Resolver(doc, ctx)
    tensors = doc["tensors"]
    if isinstance(tensors, dict):
        entries = [(n, e, render_path(["tensors", n])) for n, e in tensors.items()]
    else:
        entries = [(e["name"], e, f"tensors[{i}]") for i, e in enumerate(tensors)]
    plans: list[TensorPlan] = []
    seen: dict[str, str] = {}
    for name, entry, origin in entries:
        _check_name(name, ctx)
        for plan, porigin in resolver.plans(name, entry, origin):
            if plan.name in seen:
                raise ctx.error(
                    f"tensor name {show(plan.name)} is defined twice ({seen[plan.name]} and {porigin})"
                )
            seen[plan.name] = porigin
            plans.append(plan)
            if len(plans) > MAX_TENSORS:
                raise ctx.error(
                    f"the spec makes more than {MAX_TENSORS:,} tensors (splits counted), the limit "
                    "(docs/spec.md, \"Limits\"); write the model as several files"
                )
    plans = links.bind_fans(plans, ctx)
    _check_streams(plans, ctx)
    return tuple(plans)
