"""Sharded checkpoints: plans, HF layout, shard-by-shard runs and Dask, all byte-exact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file

from varscale_cli.cli import cli
from varscale_cli.engine.shards import plan_balanced, plan_by_size
from varscale_cli.engine.sizes import parse_size
from varscale_cli.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
GPT = ROOT / "configs" / "gpt_block.yaml"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("sizes", "limit", "groups"),
    [
        ([4, 4, 4], 8, ((0, 1), (2,))),
        ([4, 4, 4], 12, ((0, 1, 2),)),
        ([10, 1, 1], 5, ((0,), (1, 2))),  # an oversize tensor is a shard of its own
        ([1, 10, 1], 5, ((0,), (1,), (2,))),
        ([3, 3, 3, 3], 6, ((0, 1), (2, 3))),
        ([], 5, ((),)),
    ],
)
def test_plan_by_size_is_greedy_in_spec_order(sizes: list[int], limit: int, groups: tuple) -> None:
    assert plan_by_size(sizes, limit).groups == groups


@pytest.mark.parametrize(
    ("sizes", "n", "groups"),
    [
        ([1, 1, 1, 1], 2, ((0, 1), (2, 3))),
        ([8, 1, 1, 1, 1], 2, ((0,), (1, 2, 3, 4))),
        ([1, 1, 1], 3, ((0,), (1,), (2,))),
        ([5, 5, 5, 5, 5, 5], 4, ((0,), (1,), (2, 3), (4, 5))),  # ties split the first
    ],
)
def test_plan_balanced(sizes: list[int], n: int, groups: tuple) -> None:
    plan = plan_balanced(sizes, n)
    assert plan.groups == groups
    assert plan.count == n


def test_plan_balanced_minimises_the_largest_shard() -> None:
    sizes = [7, 3, 9, 1, 4, 4, 6, 2, 8, 5]
    plan = plan_balanced(sizes, 4)
    largest = max(sum(sizes[i] for i in g) for g in plan.groups)
    # Brute force over every way to cut 10 items into 4 contiguous groups.
    import itertools

    best = min(
        max(sum(sizes[a:b]) for a, b in zip((0, *cuts), (*cuts, len(sizes)), strict=True))
        for cuts in itertools.combinations(range(1, len(sizes)), 3)
    )
    assert largest == best


def test_too_many_shards_is_refused() -> None:
    with pytest.raises(SpecError, match="more than"):
        plan_balanced([1, 2], 3)


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("5GB", 5 * 10**9, "GB"), ("100MB", 10**8, "MB"), ("1.5KB", 1500, "KB"), ("500kB", 500_000, "KB"),
        ("7B", 7, "B"), ("2 TB", 2 * 10**12, "TB"), ("4096", 4096, "B"),
        ("5GiB", 5 * 2**30, "GiB"), ("5gib", 5 * 2**30, "GiB"), ("1.5 MiB", 3 * 2**19, "MiB"),
        ("10KiB", 10240, "KiB"), ("1TiB", 2**40, "TiB"), ("0.3KB", 300, "KB"),  # exact, not float
    ],
)
def test_sizes_are_huggingface_decimal_and_binary_units(text: str, value: int, unit: str) -> None:
    size = parse_size(text)
    assert (size.bytes, size.unit) == (value, unit)
    assert f"= {value:,} bytes" in size.meaning


def test_the_meaning_says_which_unit_was_meant() -> None:
    assert parse_size("5GiB").meaning == "5GiB = 5,368,709,120 bytes (binary: 1 GiB = 1024^3 bytes)"
    assert parse_size("5GB").meaning == "5GB = 5,000,000,000 bytes (decimal: 1 GB = 1000^3 bytes)"
    assert parse_size("4096").meaning == "4096 = 4,096 bytes"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("500M", "alone is not a unit"),  # neither huggingface_hub nor transformers take it
        ("5Gb", "bits in transformers"),  # transformers: 625,000,000 bytes; huggingface_hub: 5e9
        ("2 tb", "bits in transformers"),
        ("-1GB", "not a number"), ("GB", "not a number"), ("lots", "not a number"),
        ("0MB", "at least 1 byte"), ("0.1B", "at least 1 byte"), ("5XB", "unknown unit"),
        ("1e3", "not a number"),
    ],
)
def test_bad_sizes(text: str, why: str) -> None:
    with pytest.raises(SpecError, match="--max-shard-size") as info:
        parse_size(text)
    assert why in str(info.value)


def test_sharded_output_equals_single_file_and_follows_hf_layout(tmp_path: Path) -> None:
    single = tmp_path / "single.safetensors"
    assert run("generate", str(GPT), "-o", str(single), "-q")[0] == 0
    out = tmp_path / "ckpt"
    assert run("generate", str(GPT), "-o", str(out), "-q", "--max-shard-size", "1MB")[0] == 0
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    n = len(files)
    assert n > 1 and files[0] == f"model-00001-of-{n:05d}.safetensors"
    whole = load_file(str(single))
    assert set(index["weight_map"]) == set(whole)
    assert index["metadata"]["total_size"] == sum(a.nbytes for a in whole.values())
    for name, file in index["weight_map"].items():
        assert load_file(str(out / file))[name].tobytes() == whole[name].tobytes()


def test_shard_index_runs_reproduce_the_full_run_bit_for_bit(tmp_path: Path) -> None:
    full = tmp_path / "full"
    assert run("generate", str(GPT), "-o", str(full), "-q", "--num-shards", "3")[0] == 0
    parts = tmp_path / "parts"
    for i in (2, 0, 1):  # any order, as a job array would
        code, err = run("generate", str(GPT), "-o", str(parts), "-q", "--num-shards", "3", "--shard-index", str(i))
        assert code == 0, err
    assert digest(parts) == digest(full)
    code, err = run("generate", str(GPT), "-o", str(parts), "-q", "--num-shards", "3", "--shard-index", "3")
    assert code == 2 and "out of range" in err


def test_shard_options_conflict(tmp_path: Path) -> None:
    code, err = run(
        "generate", str(GPT), "-o", str(tmp_path / "x"), "--num-shards", "2", "--max-shard-size", "1MB"
    )
    assert code == 2 and "either" in err
    code, err = run("generate", str(GPT), "-o", str(tmp_path / "x.safetensors"), "--shard-index", "0")
    assert code == 2


def test_dask_local_cluster_writes_the_same_bytes(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    full = tmp_path / "full"
    assert run("generate", str(GPT), "-o", str(full), "-q", "--num-shards", "3")[0] == 0
    out = tmp_path / "dask"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        code, err = run(
            "generate", str(GPT), "-o", str(out), "-q", "--num-shards", "3",
            "--dask", cluster.scheduler_address,
        )
    assert code == 0, err
    assert digest(out) == digest(full)
