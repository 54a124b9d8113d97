"""`make bench`: measure varscale against baselines in one run and write BENCHMARKS.md.

This machine is shared and noisy, so every number is a median over interleaved rounds and
every comparison is a ratio taken round by round against a baseline run in the same round.

1. Sampler kernels (one thread, 16 Mi float32 elements, median of 7): elements/s per
   distribution for the numpy reference path and the compiled path, next to numpy's own
   ``Generator.standard_normal(dtype=float32)``.
2. End to end (whole processes, ``--rounds`` interleaved rounds): the ~271M-parameter
   Llama-style spec written as safetensors by varscale and by the PyTorch and numpy
   baselines, with wall, CPU and peak RSS, plus the durable write bandwidth (dd with fsync)
   and read throughput of ``varscale stats`` against ``cat``.

Usage: python bench/run.py [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent


def kernel_bench(n: int = 1 << 24, reps: int = 7) -> list[dict]:
    from varscale_cli.core.distributions import Distribution
    from varscale_cli.core.stream import BLOCK, Scratch, TensorSampler, native_path

    out = np.empty(n, np.float32)
    scratch = Scratch(BLOCK)

    def median_rate(fn) -> float:
        fn()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return n / statistics.median(times) / 1e6

    gen = np.random.Generator(np.random.PCG64(1))
    with native_path(True) as loaded:
        pass
    rows = []
    for kind in ("truncated_normal", "normal", "uniform"):
        sampler = TensorSampler(Distribution(kind, 0.05), "float32", 1, "bench")
        for path in ("numpy", "compiled"):
            if path == "compiled" and loaded is None:
                continue  # the C extension was not built
            with native_path(path == "compiled"):
                # numpy's normal measured right before each variant: a paired ratio.
                base = median_rate(lambda: gen.standard_normal(dtype=np.float32, out=out))
                rate = median_rate(lambda s=sampler: s.fill(0, out, scratch))
            rows.append({"kind": kind, "path": path, "me_s": rate, "numpy_normal_me_s": base})
    return rows


def run_process(cmd: list[str], env: dict | None = None) -> dict:
    """Wall, CPU and peak RSS of one whole process.

    A forked child's ru_maxrss counts the parent's resident pages until exec, so this parent
    never holds large arrays itself (the kernel benchmark runs in a child of its own).
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"benchmark command failed ({status}): {' '.join(cmd)}\n{err}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def dd_fsync() -> float:
    """Durable sequential write bandwidth in GB/s: 1 GiB through dd with conv=fsync."""
    target = OUT / "dd.bin"
    r = run_process(["dd", "if=/dev/zero", f"of={target}", "bs=16M", "count=64", "conv=fsync"])
    target.unlink()
    return (1 << 30) / r["wall"] / 1e9


def evict(path: Path) -> None:
    """Drop a file from the page cache, so the next read comes from the device."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def dd_read(path: Path) -> float:
    """Device read bandwidth in GB/s: the file through dd with O_DIRECT (no page cache)."""
    r = run_process(["dd", f"if={path}", "of=/dev/null", "bs=16M", "iflag=direct"])
    return path.stat().st_size / r["wall"] / 1e9


def end_to_end(rounds: int) -> dict:
    OUT.mkdir(exist_ok=True)
    specs = {}
    for dist, dtype in (("truncated_normal", "float32"), ("uniform", "float32"), ("truncated_normal", "bfloat16")):
        p = OUT / f"llama_{dist}_{dtype}.json"
        p.write_text(subprocess.check_output([sys.executable, "llama_spec.py", dist, dtype], cwd=HERE).decode())
        specs[(dist, dtype)] = p
    vs = str(BIN / "varscale")

    def varscale(dist: str, dtype: str, workers: int, *extra: str) -> list[str]:
        return [vs, "generate", str(specs[(dist, dtype)]), "-o", str(OUT / "vs.safetensors"),
                "--force", "--quiet", "--no-check", "--workers", str(workers), *extra]

    py = sys.executable
    variants = {
        "varscale TN f32 (2 workers)": varscale("truncated_normal", "float32", 2),
        "varscale TN f32 (1 worker)": varscale("truncated_normal", "float32", 1),
        "varscale uniform f32 (2 workers)": varscale("uniform", "float32", 2),
        "varscale TN bf16 (2 workers)": varscale("truncated_normal", "bfloat16", 2),
        "varscale TN f32 (2 workers, --no-fsync)": varscale("truncated_normal", "float32", 2, "--no-fsync"),
        "varscale TN f32 (1 worker, --no-fsync)": varscale("truncated_normal", "float32", 1, "--no-fsync"),
        "torch trunc_normal_ f32": [py, "baseline_torch.py", "trunc_normal", "float32", str(OUT / "torch.safetensors")],
        "torch kaiming_uniform_ f32": [py, "baseline_torch.py", "kaiming_uniform", "float32", str(OUT / "torch.safetensors")],
        "numpy Generator TN f32": [py, "baseline_numpy.py", "trunc_normal", "float32", str(OUT / "np.safetensors")],
    }
    results: dict[str, list[dict]] = {k: [] for k in variants}
    dd: list[float] = []
    stats_runs: list[dict] = []
    verify_runs: list[dict] = []
    cat_runs: list[dict] = []
    cold_stats: list[dict] = []
    cold_verify: list[dict] = []
    dd_reads: list[float] = []
    for _ in range(rounds):
        dd.append(dd_fsync())
        for name, cmd in variants.items():
            results[name].append(run_process(cmd))
        # Read side: varscale stats on the f32 TN file vs cat of the same (page-cached) file.
        subprocess.run(varscale("truncated_normal", "float32", 2), cwd=HERE, check=True)
        target = OUT / "vs.safetensors"
        cat_runs.append(run_process(["cat", str(target)]))
        stats_runs.append(run_process([vs, "stats", str(target), "--json"]))
        verify_runs.append(run_process([vs, "verify", str(target)]))
        dd_reads.append(dd_read(target))
        evict(target)
        cold_stats.append(run_process([vs, "stats", str(target), "--json"]))
        evict(target)
        cold_verify.append(run_process([vs, "verify", str(target)]))
    size = (OUT / "vs.safetensors").stat().st_size
    # Memory flatness: the same model with 4x the layers and the vocabulary (~4.3 GB).
    big = OUT / "big.json"
    big.write_text(subprocess.check_output(
        [sys.executable, "llama_spec.py", "truncated_normal", "float32", "64", "128000"], cwd=HERE
    ).decode())
    big_run = run_process([vs, "generate", str(big), "-o", str(OUT / "big.safetensors"),
                           "--force", "--quiet", "--no-check"])
    big_run["bytes"] = (OUT / "big.safetensors").stat().st_size
    (OUT / "big.safetensors").unlink()
    return {"results": results, "dd": dd, "stats": stats_runs, "verify": verify_runs,
            "cat": cat_runs, "size": size, "big": big_run, "dd_read": dd_reads,
            "cold_stats": cold_stats, "cold_verify": cold_verify}


def _ratio(a: list[dict], b: list[dict], key: str = "wall") -> float:
    return statistics.median(x[key] / y[key] for x, y in zip(a, b, strict=True))


def write_markdown(kernels: list[dict], e2e: dict | None, rounds: int) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}. The machine is shared: "
        "compare the ratios, which pair each run with a baseline measured in the same round.",
        "",
        "## Sampler kernels (one thread, 16 Mi float32 elements, median of 7)",
        "",
        "| distribution | path | M elements/s | numpy standard_normal M/s (same run) | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for r in kernels:
        lines.append(
            f"| {r['kind']} | {r['path']} | {r['me_s']:.0f} | {r['numpy_normal_me_s']:.0f} | "
            f"{r['me_s'] / r['numpy_normal_me_s']:.2f}x |"
        )
    lines += ["", "Target (issue 2): truncated normal float32 >= 1.5x numpy's standard_normal on one core.", ""]
    if e2e is None:
        return "\n".join(lines) + "\n"
    res = e2e["results"]
    size = e2e["size"]
    dd = statistics.median(e2e["dd"])
    lines += [
        f"## End to end: Llama-style spec, 271,090,688 parameters ({rounds} interleaved rounds, medians)",
        "",
        f"Durable write bandwidth (dd, 1 GiB, conv=fsync): **{dd:.2f} GB/s**. varscale fsyncs "
        "its output before the rename; the baselines do not.",
        "",
        "| variant | wall s | CPU s | peak RSS MiB | GB/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in res.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        rss = statistics.median(r["rss_mib"] for r in runs)
        nbytes = size if "bf16" not in name else size // 2
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {nbytes / wall / 1e9:.2f} |")
    tn2 = res["varscale TN f32 (2 workers)"]
    checks = [
        ("wall vs torch trunc_normal_", _ratio(tn2, res["torch trunc_normal_ f32"]), "<= 0.15"),
        ("wall vs torch kaiming_uniform_", _ratio(tn2, res["torch kaiming_uniform_ f32"]), "<= 0.4"),
        ("wall vs numpy Generator", _ratio(tn2, res["numpy Generator TN f32"]), "(context)"),
        ("peak RSS vs torch trunc_normal_", _ratio(tn2, res["torch trunc_normal_ f32"], "rss_mib"), "<= 0.05"),
        ("--workers 2 vs --workers 1 (durable: both wait for the disk)", _ratio(tn2, res["varscale TN f32 (1 worker)"]), "<= 0.6"),
        ("--workers 2 vs --workers 1 (--no-fsync: compute-bound)", _ratio(
            res["varscale TN f32 (2 workers, --no-fsync)"], res["varscale TN f32 (1 worker, --no-fsync)"]), "<= 0.6"),
    ]
    tn_bw = statistics.median(size / r["wall"] / 1e9 for r in tn2) / dd
    uni_bw = statistics.median(size / r["wall"] / 1e9 for r in res["varscale uniform f32 (2 workers)"]) / dd
    stats_bw = statistics.median(c["wall"] / s["wall"] for s, c in zip(e2e["stats"], e2e["cat"], strict=True))
    verify_bw = statistics.median(c["wall"] / v["wall"] for v, c in zip(e2e["verify"], e2e["cat"], strict=True))
    read_bw = statistics.median(e2e["dd_read"])
    cold_stats = statistics.median(size / r["wall"] / 1e9 for r in e2e["cold_stats"])
    cold_verify = statistics.median(size / r["wall"] / 1e9 for r in e2e["cold_verify"])
    big = e2e["big"]
    small_rss = statistics.median(r["rss_mib"] for r in tn2)
    lines += [
        "",
        "| ratio (paired per round, median) | measured | target |",
        "|---|---:|---:|",
    ]
    lines += [f"| {n} | {v:.3f} | {t} |" for n, v, t in checks]
    lines += [
        f"| TN f32 output rate / durable write bandwidth | {tn_bw:.2f} | >= 0.5 |",
        f"| uniform f32 output rate / durable write bandwidth | {uni_bw:.2f} | >= 0.8 |",
        f"| `varscale stats`, file not cached: read rate / device read bandwidth | {cold_stats / read_bw:.2f} | >= 0.5 |",
        f"| `varscale verify`, file not cached: read rate / device read bandwidth | {cold_verify / read_bw:.2f} | >= 0.5 |",
        f"| `varscale stats`, cached file: rate / `cat` (memory copy) | {stats_bw:.2f} | (context) |",
        f"| `varscale verify`, cached file: rate / `cat` (memory copy) | {verify_bw:.2f} | (context) |",
        "",
        f"Device read bandwidth (dd with O_DIRECT on the 1.08 GB output): **{read_bw:.2f} GB/s**; "
        f"`stats` reads an uncached copy at {cold_stats:.2f} GB/s and `verify` (which also "
        f"regenerates every value) at {cold_verify:.2f} GB/s.",
        "",
        f"Memory flatness: the same spec at {size / 1e9:.2f} GB peaks at {small_rss:.0f} MiB; "
        f"with 64 layers and a 128k vocabulary ({big['bytes'] / 1e9:.2f} GB, one run, "
        f"{big['wall']:.1f} s) at {big['rss_mib']:.0f} MiB (budget: 100 MiB at any size).",
        "",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="kernels only")
    ap.add_argument("--kernels-json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.kernels_json:  # the child that runs the kernel benchmark
        print(json.dumps(kernel_bench()))
        return
    kernels = json.loads(subprocess.check_output([sys.executable, __file__, "--kernels-json"]))
    e2e = None if args.quick else end_to_end(args.rounds)
    md = write_markdown(kernels, e2e, args.rounds)
    (ROOT / "BENCHMARKS.md").write_text(md)
    shutil.rmtree(OUT, ignore_errors=True)
    print(md)


if __name__ == "__main__":
    main()
