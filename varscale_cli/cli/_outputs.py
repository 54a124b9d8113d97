"""Every output path a command names, checked before any work starts (docs/spec.md, "Output
paths"): the weights file, the ``--report`` JSON and the ``stats --plot`` PNG all go through
the one policy, `varscale_cli.engine.atomic.check_output`, and are written through
`~varscale_cli.engine.atomic.atomic_output`.

Exit codes: a path that contradicts the command line (the report onto the weights or the
spec, a plot that is not a ``.png``, a ``--format`` the suffix contradicts) is a usage
error, 2; a path whose state on disk refuses it (exists without --force, a link, a device
node, FIFO, socket or folder, a missing or read-only folder, a name too long) is 1, as every
other output failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError

if TYPE_CHECKING:
    from ..stats import FileReport

#: The one format ``stats --plot`` writes.
PLOT_SUFFIX = ".png"


def check_generate_outputs(
    spec_path: Path, output: Path, report_path: Path | None, *, force: bool, sharded: bool
) -> None:
    """The weights path (a file; a sharded folder is checked by the shard planner) and the
    report path, before sampling."""
    from ..engine.atomic import check_output

    if not sharded:
        check_output(output, force=force, avoid={"the spec": spec_path})
    if report_path is not None:
        check_output(
            report_path, force=force,
            avoid={"the spec": spec_path, "the weights output (-o)": output},
        )


def check_plot_output(plot_path: Path, weights: Path, *, force: bool) -> None:
    """``stats --plot``: a ``.png`` path that is not the weights file, before the check runs."""
    from ..engine.atomic import check_output

    if plot_path.suffix.lower() != PLOT_SUFFIX:
        raise SpecError(
            f"--plot '{plot_path}' does not end in {PLOT_SUFFIX}; the plot is a PNG image "
            f"(a name such as '{plot_path.with_suffix(PLOT_SUFFIX).name}')"
        )
    check_output(plot_path, force=force, avoid={"the weights file": weights})


def write_report(report_path: Path, report: FileReport, *, force: bool) -> None:
    """The check's JSON report, atomically, under the same policy as the weights."""
    from ..engine.atomic import atomic_output

    text = json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n"
    with atomic_output(report_path, force=force, fsync=False) as tmp:
        tmp.write_text(text, encoding="utf-8")
