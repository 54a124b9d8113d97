"""Does a weight file hold what its initializer promises? Streaming moments and exact tests.

Pure computation: no click, no rich, no file formats (values arrive as chunks from a
`~varscale_cli.formats.base.WeightFile`). docs/stats.md derives every test and constant; in short,
for each tensor with a known target distribution:

* **variance**: z = (s0^2 / sigma^2 - 1) / sqrt((kappa - 1) / N), where s0^2 is the mean
  squared deviation from the *known* centre and kappa the target's kurtosis; its p-value
  corrects for the skewness of s0^2 (a three-moment chi-square fit + Wilson-Hilferty);
* **mean**: z = (mean - mu) / (sigma / sqrt N);
* **ks**: Kolmogorov-Smirnov distance between a deterministic stratified subsample (at most
  `KS_MAX` values) and the target's CDF *after rounding to the stored dtype*;
* **bound** (exact, not statistical): no value beyond the sampler's bound rounded to the
  stored dtype; a constant target must be matched exactly; NaN or inf always fails.

The modules, in the order a check uses them:

* `targets`: what each tensor should hold (`Target`; from an initializer, a spec or the
  file's provenance);
* `law`: the target law after rounding to the stored dtype;
* `summary`: the one streaming pass over a tensor (`Summary`, `summarize`, the subsample);
* `tests`: the statistical tests and their p-values;
* `report`: `check_tensor` / `check_file` and the report types they return;
* `render`: the rich table, summary line and matplotlib plot (imported on its own, so the
  computation never loads rich or matplotlib).
"""

from __future__ import annotations

from .report import (
    DEFAULT_ALPHA,
    SCHEMA_VERSION,
    STATS_CHUNK_ELEMS,
    VERDICTS,
    FileReport,
    TensorReport,
    Verdict,
    check_file,
    check_tensor,
)
from .summary import KS_MAX, Summary, summarize
from .targets import Target, target_for, targets_for_file, targets_from_provenance
from .tests import MIN_COUNT, TESTS, StatTest, StatTestResult, kolmogorov_sf, variance_p_value

__all__ = [
    "DEFAULT_ALPHA",
    "KS_MAX",
    "MIN_COUNT",
    "SCHEMA_VERSION",
    "STATS_CHUNK_ELEMS",
    "TESTS",
    "VERDICTS",
    "FileReport",
    "StatTest",
    "StatTestResult",
    "Summary",
    "Target",
    "TensorReport",
    "Verdict",
    "check_file",
    "check_tensor",
    "kolmogorov_sf",
    "summarize",
    "target_for",
    "targets_for_file",
    "targets_from_provenance",
    "variance_p_value",
]
