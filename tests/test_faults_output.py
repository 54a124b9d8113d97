"""Hostile output paths and command lines (issue 10, the output half), through the real CLI.

Each case checks the promises of test_faults.py: the exit code, exactly one ``Error:`` line,
and nothing published, clobbered or left behind. Specs that would sample for days (HUGE_SPEC,
1.1 PB) prove a refusal came *before* sampling: had it not, the run would hit the timeout.
Device nodes are only ever made inside the test folder (as root), never the real ones.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import pytest
from test_atomic import _special
from test_faults import HUGE_SPEC, SMALL_SPEC, _assert_one_error_line, _digest, _run, _temps, _write


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- item 1: one output-path policy for weights, --report and --plot --------------------------


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("fifo", "is a named pipe (FIFO), not a regular file"),
        ("socket", "is a socket, not a regular file"),
        ("chardev", "is a character device, not a regular file"),
        ("symlink", "is a symbolic link"),
        ("folder", "is a folder"),
    ],
)
@pytest.mark.parametrize("which", ["-o", "--report"])
def test_an_output_that_is_not_a_regular_file_is_refused_even_with_force(
    tmp_path: Path, kind: str, needle: str, which: str
) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    target = _special(kind, tmp_path / ("out.npz" if which == "-o" else "report.json"))
    before = os.lstat(target)
    if which == "-o":
        result = _run("generate", spec, "-o", target, "--force")
    else:
        result = _run("generate", spec, "-o", tmp_path / "w.npz", "--report", target, "--force")
    _assert_one_error_line(result, 1, f"'{target}'", needle)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert not (tmp_path / "target").exists()
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("onto", ["weights", "spec"])
def test_report_onto_the_weights_or_the_spec_is_a_usage_error_before_sampling(
    tmp_path: Path, onto: str
) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    out = tmp_path / "w.safetensors"
    report = out if onto == "weights" else spec
    result = _run("generate", spec, "-o", out, "--report", report, "--force")
    what = "the weights output (-o)" if onto == "weights" else "the spec"
    _assert_one_error_line(result, 2, f"'{report}' is {what}")
    assert _listing(tmp_path) == ["huge.yaml"] and spec.read_text() == HUGE_SPEC


def test_output_onto_the_spec_is_a_usage_error(tmp_path: Path) -> None:
    spec = _write(tmp_path / "s.npz", SMALL_SPEC)
    result = _run("generate", spec, "-o", spec, "--force")
    _assert_one_error_line(result, 2, f"'{spec}' is the spec")
    assert spec.read_text() == SMALL_SPEC


def test_an_existing_report_is_not_replaced_without_force_and_nothing_is_published(
    tmp_path: Path,
) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    report = _write(tmp_path / "r.json", "keep me")
    result = _run("generate", spec, "-o", tmp_path / "w.safetensors", "--report", report)
    _assert_one_error_line(result, 1, f"'{report}' already exists; use --force")
    assert report.read_text() == "keep me"
    assert _listing(tmp_path) == ["huge.yaml", "r.json"]


def test_report_into_a_missing_folder_fails_before_anything_is_published(tmp_path: Path) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    result = _run(
        "generate", spec, "-o", tmp_path / "w.safetensors", "--report", tmp_path / "no" / "r.json"
    )
    _assert_one_error_line(result, 1, f"the output folder '{tmp_path / 'no'}' does not exist")
    assert _listing(tmp_path) == ["huge.yaml"]


def test_report_with_force_replaces_a_regular_file_atomically(tmp_path: Path) -> None:
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    report = _write(tmp_path / "r.json", "old")
    result = _run("generate", spec, "-o", tmp_path / "w.npz", "--report", report, "--force", "-q")
    assert result.returncode == 0, result.stderr
    assert '"tensors"' in report.read_text()
    assert _temps(tmp_path, "r.json") == []


@pytest.mark.parametrize("command", ["generate", "stats"])
def test_a_name_longer_than_the_file_system_allows_is_one_error_line(
    tmp_path: Path, command: str
) -> None:
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    long_name = "a" * 256
    if command == "generate":
        result = _run("generate", spec, "-o", tmp_path / f"{long_name}.safetensors")
    else:
        weights = tmp_path / "w.safetensors"
        assert _run("generate", spec, "-o", weights, "-q").returncode == 0
        result = _run("stats", weights, "--plot", tmp_path / f"{long_name}.png")
    _assert_one_error_line(result, 1, "bytes, longer than the 255 bytes the file system allows")


def test_plot_never_overwrites_the_weights_or_an_existing_file_without_force(tmp_path: Path) -> None:
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    weights = tmp_path / "w.safetensors"
    assert _run("generate", spec, "-o", weights, "-q").returncode == 0
    digest = _digest(weights)
    for onto in (weights, spec):
        result = _run("stats", weights, "--plot", onto)
        _assert_one_error_line(result, 2, f"--plot '{onto}' does not end in .png")
    assert _digest(weights) == digest and spec.read_text() == SMALL_SPEC
    png = _write(tmp_path / "h.png", "keep me")
    _assert_one_error_line(_run("stats", weights, "--plot", png), 1, f"'{png}' already exists")
    assert png.read_text() == "keep me"
    fifo = _special("fifo", tmp_path / "f.png")
    _assert_one_error_line(_run("stats", weights, "--plot", fifo, "--force"), 1, "named pipe")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    result = _run("stats", weights, "--plot", png, "--force")
    if "matplotlib" in result.stderr:
        pytest.skip("matplotlib is not installed")
    assert result.returncode == 0, result.stderr
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert _temps(tmp_path, "h.png") == []


# --- item 2: --format against the output's suffix ---------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "names"),
    [("npz", "o.safetensors", "safetensors"), ("hdf5", "o.npz", "npz"), ("safetensors", "o.h5", "hdf5")],
)
def test_a_format_the_suffix_contradicts_is_refused_before_sampling(
    tmp_path: Path, fmt: str, name: str, names: str
) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    result = _run("generate", spec, "-o", tmp_path / name, "--format", fmt)
    _assert_one_error_line(result, 2, f"--format {fmt}", f"names {names}", name)
    assert _listing(tmp_path) == ["huge.yaml"]


def test_a_format_for_a_suffix_no_format_claims_is_still_allowed(tmp_path: Path) -> None:
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    out = tmp_path / "weights.bin"
    result = _run("generate", spec, "-o", out, "--format", "npz", "-q")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"PK\x03\x04"


# --- item 6: shard options and --dask addresses, checked before the folder exists -------------


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--shard-index", "5"], "--shard-index 5 is out of range: the plan has 2 shard(s) (0..1)"),
        (["--shard-index", "1", "--dask", "tcp://127.0.0.1:1"], "--dask runs every shard; drop --shard-index"),
        (["--dask", "not a url"], "--dask 'not a url' is not a scheduler address"),
        (["--dask", ""], "--dask '' is not a scheduler address"),
        (["--dask", "tcp://127.0.0.1"], "has no port"),
        (["--dask", "tcp://127.0.0.1:70000"], "needs a host and a port in 1..65535"),
        (["--dask", "gopher://h:1"], "unknown scheme 'gopher'"),
    ],
)
def test_bad_shard_and_dask_options_are_usage_errors_that_create_nothing(
    tmp_path: Path, extra: list[str], needle: str
) -> None:
    pytest.importorskip("distributed")
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    out = tmp_path / "ckpt"
    result = _run("generate", spec, "-o", out, "--num-shards", "2", *extra)
    _assert_one_error_line(result, 2, needle)
    assert not out.exists()


def _closed_port() -> int:
    """A loopback port nothing listens on: bound (so the kernel picks a free one), then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_closed_port_is_one_error_line_at_once_and_creates_nothing(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    out = tmp_path / "ckpt"
    address = f"tcp://127.0.0.1:{_closed_port()}"
    # The default timeout (30 s) is left in place: the refusal must come from the connect
    # itself, not from waiting the timeout out (the run used to take 31 s, then a traceback).
    started = time.monotonic()
    result = _run("generate", spec, "-o", out, "--num-shards", "2", "--dask", address)
    elapsed = time.monotonic() - started
    _assert_one_error_line(result, 1, address, "connection refused")
    assert elapsed < 25.0, elapsed  # well under dask's 30 s, python start-up included
    assert not out.exists()


def test_a_listener_that_never_answers_times_out_with_one_line(tmp_path: Path) -> None:
    """A loopback socket that accepts connections (the kernel completes the TCP handshake
    from the listen backlog) and never sends a byte: dask's handshake waited for ever."""
    pytest.importorskip("distributed")
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    out = tmp_path / "ckpt"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        result = _run(
            "generate", spec, "-o", out, "--num-shards", "2", "--dask", address,
            "--dask-timeout", "2",
        )
        elapsed = time.monotonic() - started
    _assert_one_error_line(result, 1, address, "no answer within 2 s", "--dask-timeout")
    assert 2.0 <= elapsed < 60.0, elapsed
    assert not out.exists()


def test_dask_timeout_without_sharding_is_a_usage_error(tmp_path: Path) -> None:
    spec = _write(tmp_path / "s.yaml", SMALL_SPEC)
    result = _run("generate", spec, "-o", tmp_path / "w.npz", "--dask-timeout", "5")
    _assert_one_error_line(result, 2, "--dask-timeout need --max-shard-size or --num-shards")
    assert _listing(tmp_path) == ["s.yaml"]


# --- items 4 and 5: values a dtype cannot hold, lone surrogates: spec errors before sampling ---


def _one_tensor(entry: str) -> str:
    # Next to a 1.1 PB tensor: a refusal that waited for sampling would never come.
    return f"version: 1\nseed: 0\ntensors:\n  huge: {{shape: [8388608, 16777216], dtype: float64}}\n  c: {entry}\n"


@pytest.mark.parametrize(
    ("entry", "needles"),
    [
        (
            "{shape: [4], dtype: float16, initializer: {name: constant, value: 1.0e308}}",
            ["tensor 'c'", "the value is 1e+308", "float16 cannot hold", "+-65504"],
        ),
        (
            "{shape: [4], dtype: bfloat16, initializer: {name: constant, value: -1.0e39}}",
            ["tensor 'c'", "-1e+39", "bfloat16 cannot hold", "+-3.3895314e+38"],
        ),
        (
            "{shape: [4], dtype: float32, initializer: {name: random_uniform, minval: -1.0e39, maxval: 0}}",
            ["tensor 'c'", "values reach -1e+39", "float32 cannot hold", "+-3.4028235e+38"],
        ),
        (
            "{shape: [4], dtype: float32, initializer: {name: random_uniform, minval: -1.0e308, maxval: 1.0e308}}",
            ["tensor 'c'", "width overflows float64"],
        ),
        (
            "{shape: [4], dtype: float64, initializer: {name: random_uniform, minval: -1.0e308, maxval: 1.0e308}}",
            ["tensor 'c'", "width overflows float64"],
        ),
        (
            "{shape: [4], dtype: float64, initializer: {name: random_normal, stddev: 1.0e200}}",
            ["tensor 'c'", "variance overflows float64", "2**511"],
        ),
    ],
)
def test_a_value_the_dtype_cannot_hold_is_a_spec_error_before_sampling(
    tmp_path: Path, entry: str, needles: list[str]
) -> None:
    spec = _write(tmp_path / "s.yaml", _one_tensor(entry))
    result = _run("generate", spec, "-o", tmp_path / "w.safetensors")
    _assert_one_error_line(result, 2, str(spec), *needles)
    assert _listing(tmp_path) == ["s.yaml"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("s.yaml", 'version: 1\nseed: 0\ntensors:\n  "a\\ud800": {shape: [4]}\n'),
        ("s.json", '{"version": 1, "seed": 0, "tensors": {"a\\ud800": {"shape": [4]}}}'),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_lone_surrogate_in_a_name_is_a_spec_error(
    tmp_path: Path, name: str, text: str, dry_run: bool
) -> None:
    """It used to fail in the stream key derivation (UnicodeEncodeError, exit 1)."""
    spec = _write(tmp_path / name, text)
    result = _run("generate", spec, *(["--dry-run"] if dry_run else ["-o", tmp_path / "w.npz"]))
    _assert_one_error_line(result, 2, str(spec), "lone surrogate U+D800", "'a\\ud800'")
    assert _listing(tmp_path) == [name]


# --- item 7: echoed values are capped and elided; the tensor-count limit -----------------------


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ("{shape: [4], initializer: %s}" % ("x" * 2_000_000), "(2,000,000 characters)"),
        ("{shape: [4], dtype: %s}" % ("y" * 1_000_000), "(1,000,000 characters)"),
    ],
)
def test_huge_values_are_elided_in_the_error_line(tmp_path: Path, entry: str, shown: str) -> None:
    spec = _write(tmp_path / "s.yaml", f"version: 1\nseed: 0\ntensors:\n  a: {entry}\n")
    result = _run("generate", spec, "--dry-run")
    line = _assert_one_error_line(result, 2, shown, "...")
    assert len(line) < 400, len(line)


def test_a_huge_tensor_name_is_elided_in_every_message(tmp_path: Path) -> None:
    name = "n" * 100_000
    cases = {
        "dtype": f"  - name: {name}\n    shape: [4]\n    dtype: float17\n",
        "slash": f"  - name: {name}/\n    shape: [4]\n",
        "twice": f"  - name: {name}\n    shape: [4]\n  - name: {name}\n    shape: [4]\n",
        "schema": f"  - name: {name}\n    shape: [-4]\n",
    }
    for what, body in cases.items():
        spec = _write(tmp_path / f"{what}.yaml", f"version: 1\nseed: 0\ntensors:\n{body}")
        line = _assert_one_error_line(_run("generate", spec, "--dry-run"), 2, "characters)")
        assert len(line) < 400 and "n" * 100 not in line, (what, len(line))


def test_a_million_tensor_json_spec_is_refused_by_the_tensor_limit(tmp_path: Path) -> None:
    """It was refused after 7-17 s and 697 MB by the YAML alias guard (it has no aliases)."""
    import json

    doc = {"version": 1, "seed": 0, "tensors": {f"t{i}": {"shape": [1]} for i in range(1_000_000)}}
    spec = _write(tmp_path / "big.json", json.dumps(doc))
    del doc
    result = _run("generate", spec, "-o", tmp_path / "w.safetensors")
    _assert_one_error_line(
        result, 2, str(spec), "more tensors than the limit of 250,000", "no output format can store more"
    )
    assert "alias" not in result.stderr
    assert _listing(tmp_path) == ["big.json"]


def test_a_yaml_spec_over_the_tensor_limit_is_refused_before_the_node_tree_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300,000 block-style entries: the pure-Python loader took 46 s and 840 MB to reach the
    limit; libyaml's event count refuses the text before that loader is even constructed."""
    from click.testing import CliRunner

    from varscale_cli.cli import cli
    from varscale_cli.spec import yaml_loader

    def never(*_: object) -> None:
        raise AssertionError("the node-building loader ran")

    monkeypatch.setattr(yaml_loader, "_SpecLoader", never)
    lines = ["version: 1", "seed: 0", "tensors:", *(f"  t{i}: {{shape: [1]}}" for i in range(300_000))]
    spec = _write(tmp_path / "big.yaml", "\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(tmp_path / "w.safetensors")])
    assert result.exit_code == 2, result.output
    assert "more tensors than the limit of 250,000" in result.output
    assert _listing(tmp_path) == ["big.yaml"]


def test_the_yaml_pre_count_counts_entries_not_the_word_shape() -> None:
    """More 'shape' substrings than the limit (names, comments, nested mappings) but fewer
    mappings with a ``shape`` key: not refused by the pre-count; one entry over: refused."""
    from varscale_cli.spec.parse import MAX_TENSORS
    from varscale_cli.spec.yaml_loader import _too_many_entries

    few = MAX_TENSORS // 2 + 1
    wordy = "tensors:\n" + "".join(
        f"  shape_{i}: {{shape: [1], init: {{name: zeros}}}}  # shape\n" for i in range(few)
    )
    assert wordy.count("shape") > MAX_TENSORS and not _too_many_entries(wordy)
    over = "tensors:\n" + "  - {shape: [1]}\n" * (MAX_TENSORS + 1)
    assert _too_many_entries(over)
    assert not _too_many_entries(over.replace("  - {shape: [1]}\n", "", 1))
