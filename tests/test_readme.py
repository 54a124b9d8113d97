"""Every ```sh block of README.md runs as written, in a fresh folder holding the shipped configs.

`.venv/bin/varscale` and `varscale` are this checkout's CLI (a shim running
``python -m varscale_cli`` with this interpreter). What cannot run inside a test is adapted,
and only that, each on purpose and named here:

* ``make demo`` / ``make test``: installing a venv, and the test suite running itself, cannot
  happen inside the suite; ``make -n`` checks that both targets exist and parse instead.
* ``$SLURM_ARRAY_TASK_ID``: there is no Slurm; the block runs once per task of the array it
  names (``--array=0-7``), sequentially, and the folder must then verify bit for bit.
* ``/shared/``: a cluster's shared storage; here a folder inside the temp dir.
* ``tcp://scheduler:8786``: there is no scheduler; a local ``dask.distributed`` cluster's
  address replaces it (skipped, saying so, when dask is not installed).
* ``jq``: used as written when installed, else that line is skipped, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.S)
SLURM_ARRAY = re.compile(r"#SBATCH --array=(\d+)-(\d+)")


def _shim(folder: Path) -> None:
    """`.venv/bin/varscale` and `bin/varscale` in ``folder``: this checkout's CLI."""
    for sub in (".venv/bin", "bin"):
        script = folder / sub / "varscale"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m varscale_cli "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)


def _bash(script: str, cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=600,
    )
    assert result.returncode == 0, f"README block failed:\n{script}\n--- stderr:\n{result.stderr[-3000:]}"


@pytest.fixture
def workdir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    _shim(tmp_path)
    env = dict(os.environ)
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "100"
    return tmp_path, env


def test_the_readme_has_the_blocks_this_test_knows() -> None:
    # A new block is run by test_readme_block without edits; this guards the adaptations.
    assert len(BLOCKS) == 5
    assert "make demo" in BLOCKS[0] and "SLURM_ARRAY_TASK_ID" in BLOCKS[3] and "--dask" in BLOCKS[4]


def test_every_readme_block_runs(workdir: tuple[Path, dict[str, str]]) -> None:
    # One session, in README order, as a reader typing them would (later blocks use the
    # files earlier ones wrote).
    folder, env = workdir
    for block in BLOCKS:
        _run_block(block, folder, env)


def _run_block(block: str, folder: Path, env: dict[str, str]) -> None:
    if "make demo" in block:
        for target in re.findall(r"^make (\w+)", block, re.M):
            # Adapted: `make -n` (print, do not run) -- see the module docstring.
            subprocess.run(["make", "-n", "-C", str(ROOT), target], check=True, capture_output=True)
        assert not re.sub(r"^(make \w+.*|\s*)$", "", block, flags=re.M).strip()
        return
    script = block.replace("/shared/", f"{folder}/shared/")
    if shutil.which("jq") is None:
        script = "\n".join(line for line in script.splitlines() if "| jq" not in line)
        print("jq is not installed: its README line was skipped")
    if "--dask" in script:
        distributed = pytest.importorskip("distributed", reason="the README's Dask block needs dask")
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            _bash(script.replace("tcp://scheduler:8786", cluster.scheduler_address), folder, env)
        _bash("varscale verify shared/ckpt", folder, env)
        return
    array = SLURM_ARRAY.search(script)
    if array is not None:
        for task in range(int(array.group(1)), int(array.group(2)) + 1):
            _bash(script, folder, {**env, "SLURM_ARRAY_TASK_ID": str(task)})
        _bash("varscale verify shared/ckpt", folder, env)
        return
    _bash(script, folder, env)


def test_configs_llama_is_the_benchmark_spec_at_readme_size() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import llama_spec
    finally:
        sys.path.remove(str(ROOT / "bench"))
    import yaml

    shipped = (ROOT / "configs" / "llama.yaml").read_text()
    assert shipped == llama_spec.small_yaml(), "regenerate: python bench/llama_spec.py --small > configs/llama.yaml"
    assert yaml.safe_load(shipped) == llama_spec.spec(*llama_spec.SMALL)
