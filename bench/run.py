"""`make bench`: measure varscale against the machine's own floors and the peers, in one run,
and write BENCHMARKS.md.

This machine is shared and noisy, so every comparison is a ratio taken round by round against
a floor or a peer run in the same round (rounds interleave every variant), and the tables
give medians.

1. Sampler kernels (one thread, 16 Mi float32 elements, median of 7): elements/s per
   distribution for the numpy reference path and the fused native stream, next to numpy's
   own ``Generator.standard_normal(dtype=float32)``.
2. End to end (whole processes, ``--rounds`` interleaved rounds) on the ~271M-parameter
   Llama-style spec (safetensors, 1.08 GB float32):
   * durable generate (fsync) on disk vs ``dd if=/dev/zero bs=4M conv=fsync`` of the same
     byte count to the same folder, and vs the same dd with ``oflag=direct`` (the device's
     streaming rate, which a writer that overlaps sampling and write-out can approach);
   * generate on tmpfs (/dev/shm) with ``--workers 1 .. N`` vs dd of the same bytes there;
   * ``stats`` and ``verify`` of the (page-cached) file vs ``cat`` of it and vs generating it;
   * a 3-tensor MLP spec end to end vs a bare ``python -c "import numpy, safetensors"``;
   * the peers: torch ``nn.init`` + ``save_file``, a numpy ``Generator`` script, and Hugging
     Face ``from_config`` + ``save_pretrained`` when transformers is importable. None of them
     flushes to disk, so each is paired with a ``generate --no-fsync`` run (same work
     otherwise: sample, check, write) as well as with the durable default.
   Every timed write starts like dd's: its output does not exist yet, and ``sync`` has run,
   so no earlier run's dirty pages are written back during it. The package's bytecode is
   compiled first, as pip does on install.
   Wall time and peak RSS come from ``os.wait4`` of each child (public: the kernel's rusage).

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
        for path in ("numpy", "native"):
            if path == "native" and loaded is None:
                continue  # the C extension was not built
            with native_path(path == "native"):
                # numpy's normal measured right before each variant: a paired ratio.
                base = median_rate(lambda: gen.standard_normal(dtype=np.float32, out=out))
                rate = median_rate(lambda s=sampler: s.fill(0, out, scratch))
            rows.append({"kind": kind, "path": path, "me_s": rate, "numpy_normal_me_s": base})
    return rows


def run_process(cmd: list[str], env: dict | None = None, stdout=subprocess.DEVNULL) -> dict:
    """Wall, CPU and peak RSS of one whole process.

    A forked child's ru_maxrss counts the parent's resident pages until exec, so this parent
    never holds large arrays itself (the kernel benchmark runs in a child of its own).
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"benchmark command failed ({status}): {' '.join(cmd)}\n{err}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


#: dd's block size: 4 MiB, as the issue's floor (one syscall per block, like our 4 MiB chunks).
DD_BS = 4 << 20


def dd_write(target: Path, nbytes: int, fsync: bool, direct: bool = False) -> dict:
    """dd of ``nbytes`` zero bytes (rounded up to whole 4 MiB blocks) to ``target``;
    ``direct``: with O_DIRECT, past the page cache straight to the device."""
    count = -(-nbytes // DD_BS)
    cmd = ["dd", "if=/dev/zero", f"of={target}", f"bs={DD_BS}", f"count={count}", "status=none"]
    r = run_process(cmd + (["conv=fsync"] if fsync else []) + (["oflag=direct"] if direct else []))
    target.unlink()
    return r


def prefault(nbytes: int) -> None:
    """Touch and free ``nbytes`` of memory, so that the next process's page-cache or tmpfs
    pages come from memory the guest has just used. A virtual machine whose balloon device
    does free page reporting (Linux virtio_balloon, VIRTIO_BALLOON_F_REPORTING) hands memory
    that stayed free for a few seconds back to its host, and the first touch of such a page
    costs the host a fault: here up to ~2.4 s of system time per GB, at random, in whichever
    timed process happens to get those pages (dd's floor included). Freed just now, the
    pages are not yet reported. In a child of its own: a forked child's ru_maxrss would
    count this process's peak (see run_process)."""
    # Written (np.ones, not calloc's lazily mapped zeros), then freed at exit.
    subprocess.run([sys.executable, "-c", f"import numpy; numpy.ones({nbytes}, numpy.uint8)"], check=True)


def _env() -> dict:
    """The child's environment: this checkout's varscale_cli first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def end_to_end(rounds: int) -> dict:
    OUT.mkdir(exist_ok=True)
    # As installed: pip compiles an installed package's bytecode, while a checkout run under
    # PYTHONDONTWRITEBYTECODE (set on some CI machines) would recompile every module each start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "varscale_cli")], check=True)
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    spec = OUT / "llama.json"
    spec.write_text(subprocess.check_output([sys.executable, "llama_spec.py", "truncated_normal", "float32"], cwd=HERE).decode())
    py = sys.executable
    vs = [py, "-m", "varscale_cli"]
    env = _env()
    disk_out = OUT / "vs.safetensors"
    cores = len(os.sched_getaffinity(0))

    def generate(out: Path, workers: int | None, *extra: str) -> list[str]:
        w = [] if workers is None else ["--workers", str(workers)]
        return [*vs, "generate", str(spec), "-o", str(out), "--force", "--quiet", *w, *extra]

    have_torch = subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0
    have_hf = subprocess.run([py, "-c", "import transformers"], capture_output=True).returncode == 0
    runs: dict[str, list[dict]] = {}

    def add(name: str, r: dict) -> None:
        runs.setdefault(name, []).append(r)

    subprocess.run(generate(disk_out, None, "--no-check"), cwd=HERE, env=env, check=True)
    size = disk_out.stat().st_size
    shm_out = shm / "varscale-bench.safetensors" if shm is not None else None

    def fresh(*paths: Path | None) -> None:
        """Every timed write starts as dd's does: no old output to free (replacing a 1 GB
        file frees its pages inside the timed process, ~0.2 s on tmpfs), no dirty pages of an
        earlier run still being written back to the same disk, and warm free memory."""
        for p in paths:
            if p is not None:
                p.unlink(missing_ok=True)
        os.sync()
        prefault(size)

    for _ in range(rounds):
        # Durable, on disk: varscale's default (all cores, fsync, with its check) and without
        # the check, each paired with dd conv=fsync of the same bytes to the same folder.
        fresh()
        add("dd conv=fsync (disk)", dd_write(OUT / "dd.bin", size, fsync=True))
        fresh(disk_out)
        add("generate durable (disk)", run_process(generate(disk_out, None), env))
        fresh()
        add("dd conv=fsync (disk) #2", dd_write(OUT / "dd.bin", size, fsync=True))
        # The device's own streaming rate: dd conv=fsync fills the page cache first and only
        # then flushes, so a writer that overlaps the two (generate starts each chunk's
        # write-out as it lands) can beat it; O_DIRECT has no cache stage to overlap.
        fresh()
        add("dd oflag=direct conv=fsync (disk)", dd_write(OUT / "dd.bin", size, fsync=True, direct=True))
        fresh(disk_out)
        add("generate durable --no-check (disk)", run_process(generate(disk_out, None, "--no-check"), env))
        if shm_out is not None:
            fresh()
            add("dd (tmpfs)", dd_write(shm / "varscale-bench-dd.bin", size, fsync=False))
            for w in range(1, cores + 1):
                fresh(shm_out)
                add(f"generate tmpfs --workers {w}", run_process(
                    generate(shm_out, w, "--no-check", "--no-fsync"), env))
            fresh(shm_out)
            add("generate tmpfs (default, with check)", run_process(generate(shm_out, None, "--no-fsync"), env))
            shm_out.unlink()
        # Reads of the page-cached disk file.
        add("cat", run_process(["cat", str(disk_out)]))
        add("stats", run_process([*vs, "stats", str(disk_out), "--json"], env))
        add("verify", run_process([*vs, "verify", str(disk_out)], env))
        # Start-up.
        add("import numpy, safetensors", run_process([py, "-c", "import numpy, safetensors"]))
        add("mlp spec end to end", run_process(
            [*vs, "generate", str(ROOT / "configs" / "mlp.yaml"), "-o", str(OUT / "mlp.safetensors"), "--force", "--quiet"], env))
        # Peers. They do not fsync, so each is paired with varscale's default run without
        # --fsync's flush too (the same work: sample, check, write to the page cache).
        peer_out = OUT / "peer.safetensors"
        fresh(peer_out)
        add("generate --no-fsync (disk, like the peers)", run_process(generate(peer_out, None, "--no-fsync"), env))
        fresh(peer_out)
        add("numpy Generator + save_file", run_process([py, "baseline_numpy.py", "trunc_normal", "float32", str(peer_out)]))
        if have_torch:
            fresh(peer_out)
            add("torch nn.init + save_file", run_process([py, "baseline_torch.py", "trunc_normal", "float32", str(peer_out)]))
        if have_hf:
            fresh(OUT / "hf" / "model.safetensors")
            add("HF from_config + save_pretrained", run_process([py, "baseline_hf.py", str(OUT / "hf")]))
        fresh(peer_out)
    # Memory flatness: the same model with 4x the layers and the vocabulary (~4.3 GB).
    big = OUT / "big.json"
    big.write_text(subprocess.check_output(
        [sys.executable, "llama_spec.py", "truncated_normal", "float32", "64", "128000"], cwd=HERE
    ).decode())
    big_run = run_process([*vs, "generate", str(big), "-o", str(OUT / "big.safetensors"), "--force", "--quiet"], env)
    big_run["bytes"] = (OUT / "big.safetensors").stat().st_size
    (OUT / "big.safetensors").unlink()
    return {"runs": runs, "size": size, "big": big_run, "cores": cores, "have_torch": have_torch,
            "have_hf": have_hf, "tmpfs": shm is not None}


def _ratio(a: list[dict], b: list[dict], key: str = "wall") -> float:
    return statistics.median(x[key] / y[key] for x, y in zip(a, b, strict=True))


def write_markdown(kernels: list[dict], e2e: dict | None, rounds: int) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}. The machine is shared: "
        "compare the ratios, which pair each run with a floor or peer measured in the same round.",
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
    lines += ["", "`native` is the fused stream (Philox, transform and cast in one C pass, vsstream.c).", ""]
    if e2e is None:
        return "\n".join(lines) + "\n"
    runs = e2e["runs"]
    size = e2e["size"]
    lines += [
        f"## End to end: Llama-style spec, 271,090,688 parameters, {size / 1e9:.2f} GB safetensors "
        f"({rounds} interleaved rounds, medians)",
        "",
        "| run | wall s | wall range s | CPU s | peak RSS MiB | GB/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        spread = f"{min(r['wall'] for r in rs):.2f}-{max(r['wall'] for r in rs):.2f}"
        cpu = statistics.median(r["cpu"] for r in rs)
        rss = statistics.median(r["rss_mib"] for r in rs)
        rate = f"{size / wall / 1e9:.2f}" if "import" not in name and "mlp" not in name else ""
        lines.append(f"| {name} | {wall:.2f} | {spread} | {cpu:.2f} | {rss:.0f} | {rate} |")
    gen = runs["generate durable (disk)"]
    checks = [
        ("durable generate (default) / dd conv=fsync, same bytes", _ratio(gen, runs["dd conv=fsync (disk)"]), "<= 1.25"),
        ("durable generate --no-check / dd conv=fsync, same bytes", _ratio(runs["generate durable --no-check (disk)"], runs["dd conv=fsync (disk) #2"]), "(context)"),
        ("durable generate (default) / dd oflag=direct conv=fsync (the device's rate)", _ratio(gen, runs["dd oflag=direct conv=fsync (disk)"]), "(floor)"),
    ]
    if e2e["tmpfs"]:
        w1 = runs["generate tmpfs --workers 1"]
        for w in range(2, e2e["cores"] + 1):
            checks.append((f"tmpfs --workers {w} / --workers 1", _ratio(runs[f"generate tmpfs --workers {w}"], w1), "<= 0.6" if w == 2 else "(scaling)"))
        # Amdahl: a run's fixed start-up (imports, spec, header: the whole MLP run is an upper
        # bound of it) does not shrink with workers; the rest at best halves on two.
        fixed = runs["mlp spec end to end"]
        bound = statistics.median(
            (f["wall"] + (a["wall"] - f["wall"]) / 2) / a["wall"] for f, a in zip(fixed, w1, strict=True)
        )
        checks.append(("best --workers 2 / --workers 1 with the MLP run as fixed start-up (Amdahl)", bound, "(context)"))
        checks.append(("tmpfs --workers 1 / dd to tmpfs, same bytes", _ratio(w1, runs["dd (tmpfs)"]), "(per-core rate)"))
        wn = runs[f"generate tmpfs --workers {e2e['cores']}"]
        checks.append((f"tmpfs --workers {e2e['cores']} / dd to tmpfs, same bytes", _ratio(wn, runs["dd (tmpfs)"]), "(context)"))
    checks += [
        ("mlp spec end to end / bare import numpy, safetensors", _ratio(runs["mlp spec end to end"], runs["import numpy, safetensors"]), "<= 2.5"),
        ("stats / durable generate of the same file", _ratio(runs["stats"], gen), "<= 1.0"),
        ("verify / durable generate of the same file", _ratio(runs["verify"], gen), "<= 1.0"),
        ("stats / cat of the cached file", _ratio(runs["stats"], runs["cat"]), "(context)"),
        ("verify / cat of the cached file", _ratio(runs["verify"], runs["cat"]), "(context)"),
    ]
    like_peers = runs["generate --no-fsync (disk, like the peers)"]
    peers = [("numpy Generator script", "numpy Generator + save_file", "(context)")]
    if e2e["have_torch"]:
        peers.append(("torch nn.init + save_file", "torch nn.init + save_file", "(context)"))
    if e2e["have_hf"]:
        peers.append(("HF from_config + save_pretrained", "HF from_config + save_pretrained", "<= 0.10"))
    for label, key, target in peers:
        checks.append((f"generate --no-fsync / {label} (neither flushes)", _ratio(like_peers, runs[key]), target))
        checks.append((f"durable generate / {label}", _ratio(gen, runs[key]), "(context)"))
    lines += [
        "",
        "| ratio (wall, paired per round, median) | measured | target |",
        "|---|---:|---:|",
    ]
    lines += [f"| {n} | {v:.2f} | {t} |" for n, v, t in checks]
    if not e2e["have_hf"]:
        lines += ["", "transformers is not installed in this environment: the HF peer was not run."]
    big = e2e["big"]

    def median_of(run: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[run])

    gen_cpu = median_of("generate durable (disk)", "cpu")
    check_cpu = gen_cpu - median_of("generate durable --no-check (disk)", "cpu")
    dd_wall = median_of("dd conv=fsync (disk)", "wall")
    cores = e2e["cores"]
    lines += [
        "",
        f"Where durable generate's time goes: it used {gen_cpu:.2f} s of CPU (median), so on "
        f"{cores} cores its wall time is at least {gen_cpu / cores:.2f} s, "
        f"{gen_cpu / cores / dd_wall:.2f}x dd's {dd_wall:.2f} s, before any start-up or disk wait: "
        "on this machine the floor is the CPU, not the disk. The post-write check is "
        f"{check_cpu:.2f} s of it (moments of every value, the KS subsamples, the read-back); "
        "sampling and the kernel's copies into the page cache most of the rest. What those copies "
        f"cost shows in dd itself: {median_of('dd conv=fsync (disk)', 'cpu'):.2f} s of CPU through "
        f"the page cache, {median_of('dd oflag=direct conv=fsync (disk)', 'cpu'):.2f} s with "
        "oflag=direct. Removing them is the next step: O_DIRECT writes of 4 KiB-aligned windows, "
        "which need sample buffers aligned to the file offsets and writer threads so that "
        "sampling never waits on the device.",
        "",
        f"Memory flatness: the spec above peaks at {statistics.median(r['rss_mib'] for r in gen):.0f} MiB; "
        f"with 64 layers and a 128k vocabulary ({big['bytes'] / 1e9:.2f} GB, one run, default options, "
        f"{big['wall']:.1f} s) at {big['rss_mib']:.0f} MiB (budget: 100 MiB at any size).",
        "",
        "Formats: safetensors is written by every worker at its own offsets (`engine/pwrite.py`). "
        "npz keeps the single streaming writer: its zip local headers carry each member's CRC-32, "
        "which needs the member's bytes in order (Python's zlib has no crc32_combine), so only "
        "the offsets, not the bytes, are known up front. HDF5 keeps h5py's writer: h5py allocates "
        "and places the dataset storage itself, and writing the raw bytes at the dataset's offset "
        "from other threads would go around the library that owns the file (its metadata cache, "
        "its free-space manager); both formats are sampled in parallel and written by one thread.",
        "",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
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
