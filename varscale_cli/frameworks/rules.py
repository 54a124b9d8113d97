"""The naming rules: which initializer a tensor gets from its name, per layout, written once.

Each layout's `LayoutRules` is one table of `Rule` rows. Two things are derived from it:

* the per-tensor decision (`LayoutRules.initializer_for`): the first rule that *fits* a tensor,
  where a rule may also ask for a rank, then PyTorch's and Keras' shared fallback (a scalar or
  vector with no telling name is an offset: zeros), then the layout's default for kernels;
* the ``rules:`` list a spec made from a weight file shows (`LayoutRules.shown`), matched as the
  spec resolver matches them: ``fnmatch.fnmatchcase`` on the whole name, first match wins, no
  rank test. Where that list would give a tensor something other than its per-tensor decision,
  the spec carries the tensor's own initializer (`varscale_cli.frameworks.files`).

The defaults are the frameworks' own: PyTorch's ``nn.Linear`` / ``nn.ConvNd``
``reset_parameters`` (``kaiming_uniform_(w, a=math.sqrt(5))``), ``nn.Embedding``'s
``normal_`` and the norm layers' ones/zeros (``torch/nn/modules/``); Keras' layer constructor
defaults (``glorot_uniform`` kernels, ``zeros`` biases and betas, ``ones`` gammas and moving
variances, ``Embedding``'s ``"uniform"``, ``keras/src/layers/``).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import TypeAlias

from ..core.dtypes import SAMPLED, canonical
from ..core.fans import LAYOUTS

#: An initializer as a spec writes it: a registered name, or a mapping with ``name`` (or a
#: Keras ``class_name``/``config``) and its arguments.
InitializerConfig: TypeAlias = str | dict[str, object]

#: PyTorch's default for ``nn.Linear`` and ``nn.ConvNd`` weights:
#: ``kaiming_uniform_(w, a=math.sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
TORCH_DEFAULT_INIT: dict[str, object] = {"name": "torch.kaiming_uniform", "a": math.sqrt(5)}

#: ``nn.Embedding``'s ``reset_parameters``: ``normal_(weight)``, N(0, 1).
TORCH_EMBEDDING_INIT: dict[str, object] = {"name": "random_normal", "mean": 0.0, "stddev": 1.0}

#: Keras' ``Embedding`` default (``"uniform"``): RandomUniform(-0.05, 0.05).
KERAS_EMBEDDING_INIT: dict[str, object] = {"name": "random_uniform", "minval": -0.05, "maxval": 0.05}

#: 1-D weights with these names are normalization scales (LayerNorm, BatchNorm, GroupNorm,
#: RMSNorm, ...): ones.
NORM_PATTERNS = (
    "*norm*.weight",
    "*ln*.weight",
    "*bn*.weight",
    "*layernorm*",
    "*layer_norm*",
)

#: 2-D tensors whose names contain one of these are embedding tables: N(0, 1), as
#: ``nn.Embedding`` (GPT-2's ``wte``/``wpe`` included).
EMBEDDING_MARKERS = ("emb", "wte", "wpe")


@dataclass(frozen=True)
class Rule:
    """One naming rule: tensors whose name matches `match` get `initializer`.

    Attributes:
        match: the ``fnmatch`` glob the spec's ``rules:`` list writes. Per tensor it is matched
            against the lower-cased name (``*bias`` also fits ``fc.Bias``).
        initializer: what a fitting tensor gets.
        rank: per tensor, the rule fits only tensors of this rank (a spec rule sees names, not
            ranks, so the shown rule has no such test); None for any rank.
        exact_variable: per tensor, the name's last dotted part must be `variable` exactly
            (PyTorch names a buffer by its module attribute: ``bn.running_mean``), instead of
            the glob.
        shown: the rule is written into a spec's ``rules:`` list; a hidden one only decides
            per tensor (PyTorch's "every other 1-D weight", which as a glob would catch
            kernels too).
    """

    match: str
    initializer: InitializerConfig
    rank: int | None = None
    exact_variable: bool = False
    shown: bool = True

    @property
    def variable(self) -> str | None:
        """The variable the rule names: ``*running_mean`` names ``running_mean``; None for a
        pattern (``*norm*.weight``, ``*emb*``)."""
        word = self.match.removeprefix("*")
        return word if word != self.match and word.isidentifier() else None

    def fits(self, name: str, rank: int) -> bool:
        """The per-tensor test."""
        if self.rank is not None and rank != self.rank:
            return False
        if self.exact_variable:
            return name.rsplit(".", 1)[-1] == self.variable
        return fnmatch.fnmatchcase(name.lower(), self.match)


@dataclass(frozen=True)
class LayoutRules:
    """A layout's rules, in order (first fit wins), and its default initializer for kernels
    (the spec's ``defaults.initializer``)."""

    layout: str
    default: InitializerConfig
    rules: tuple[Rule, ...]

    @property
    def shown(self) -> tuple[Rule, ...]:
        """The rules a spec's ``rules:`` list carries, in order."""
        return tuple(rule for rule in self.rules if rule.shown)

    def initializer_for(self, name: str, shape: tuple[int, ...]) -> InitializerConfig | None:
        """The initializer of one float tensor; None means the layout's `default`."""
        rank = len(shape)
        for rule in self.rules:
            if rule.fits(name, rank):
                return rule.initializer
        if rank < 2:
            return "zeros"  # both frameworks' fans need 2 dimensions; a lone vector is an offset
        return None

    def variable_default(self, variable: str | None, rank: int) -> InitializerConfig:
        """The initializer of a variable named `variable` (Keras' ``gamma``, ``bias``...) when
        its layer gives none varscale can use: the rule naming it, else zeros for a vector,
        else the default."""
        for rule in self.rules:
            if variable is not None and rule.variable == variable and rule.rank in (None, rank):
                return rule.initializer
        return self.default if rank >= 2 else "zeros"

    def shown_match(self, name: str) -> int | None:
        """The index in `shown` of the rule the spec resolver applies to `name`, if any."""
        return next(
            (i for i, rule in enumerate(self.shown) if fnmatch.fnmatchcase(name, rule.match)),
            None,
        )


TORCH = LayoutRules(
    layout="torch",
    default=TORCH_DEFAULT_INIT,
    rules=(
        Rule("*running_mean", "zeros", exact_variable=True),  # BatchNorm buffers
        Rule("*running_var", "ones", exact_variable=True),
        # Linear/Conv/norm biases (PyTorch's own Linear bias is U(+-1/sqrt(fan_in))).
        Rule("*bias", "zeros", rank=1),
        *(Rule(pattern, "ones", rank=1) for pattern in NORM_PATTERNS),
        # Every 1-D `weight` in torch.nn is a normalization scale (but PReLU's).
        Rule("*weight", "ones", rank=1, shown=False),
        *(Rule(f"*{marker}*", TORCH_EMBEDDING_INIT, rank=2) for marker in EMBEDDING_MARKERS),
    ),
)

KERAS = LayoutRules(
    layout="keras",
    default="glorot_uniform",
    rules=(
        Rule("*moving_mean", "zeros"),
        Rule("*moving_variance", "ones"),
        Rule("*bias", "zeros"),
        Rule("*beta", "zeros"),
        Rule("*gamma", "ones"),
        Rule("*emb*", KERAS_EMBEDDING_INIT, rank=2),
    ),
)

#: Every layout's rules, in `varscale_cli.core.fans.LAYOUTS` order (a layout added there
#: without rules here fails at import).
_BY_LAYOUT = {rules.layout: rules for rules in (KERAS, TORCH)}
RULES: dict[str, LayoutRules] = {layout: _BY_LAYOUT[layout] for layout in LAYOUTS}


def layout_rules(layout: str) -> LayoutRules:
    """The rules of `layout`; ValueError names the layouts there are."""
    if layout not in RULES:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(map(repr, LAYOUTS))}")
    return RULES[layout]


def requested_dtype(dtype: object) -> str:
    """The canonical name of a dtype a caller asks every tensor to have (``bf16`` ->
    ``bfloat16``); ValueError unless varscale's stream produces it."""
    name = canonical(dtype)
    if name is None or name not in SAMPLED:
        raise ValueError(f"dtype {dtype!r} cannot be produced; allowed: {', '.join(SAMPLED)}")
    return name


def produced_dtypes() -> str:
    """``float16, bfloat16, float32 and float64``: the dtypes varscale produces, for messages."""
    return f"{', '.join(SAMPLED[:-1])} and {SAMPLED[-1]}"
