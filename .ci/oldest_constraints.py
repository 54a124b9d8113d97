"""Print pip constraints for the oldest dependency set pyproject.toml allows.

Each runtime dependency written ``name>=X`` is pinned to the release series of its floor,
``name==X.*`` (numpy 1.26.*, h5py 3.10.*, rich 13.*...): the oldest series the project allows,
at that series' last patch release, the one a user asking for it gets (and the one with wheels
for every Python the project supports: PyYAML 6.0 itself has none for 3.11). ml_dtypes is the exception: it is left for pip to pick
alongside that numpy, because that pick (0.5.x with numpy 1.26) is what a real user's
``pip install`` gives, and its float64 -> bfloat16 conversion is the one that differs from
the newest release.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PICKED_BY_PIP = {"ml_dtypes"}


def main() -> None:
    project = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?>=([0-9.]+)", requirement.replace(" ", ""))
        if match is None:
            raise SystemExit(f"cannot read a floor from dependency {requirement!r}")
        name, _, floor = match.groups()
        if name in PICKED_BY_PIP:
            continue
        print(f"{name}=={floor}.*")


if __name__ == "__main__":
    main()
