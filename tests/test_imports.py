"""The package's shape: no import cycles (function-level imports included) and small modules.

The import graph is read with `ast`, not by importing: every ``import`` and ``from ... import``
anywhere in a module counts (module level, inside functions, under ``if TYPE_CHECKING``), since
a function-level import of a module that imports you is still a cycle, only a later one. An
edge goes to the module named, and to ``pkg.name`` when ``from pkg import name`` names a
submodule (and to ``pkg`` only when some name is not a submodule). The parent packages Python
initialises on the way are not edges: a package
``__init__`` that imports its own submodules is the usual layout, not a cycle.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "varscale_cli"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: A module over this many lines does several jobs; split it along its section headers.
MAX_LINES = 500

def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _targets(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{alias.name}" for alias in node.names} & known.keys()
            out.update(subs)
            if len(subs) < len(node.names):  # some name is an attribute of `target` itself
                out.add(target)
    return {t for t in out if t in known and t != module}


def import_graph() -> dict[str, set[str]]:
    """Module -> the varscale_cli modules it imports anywhere in its text."""
    known = _modules()
    return {m: _targets(m, p, known) for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    # formats/__init__ imports its format modules by `from . import ...`.
    assert {"varscale_cli.formats.safetensors", "varscale_cli.formats.hdf5"} <= graph[
        "varscale_cli.formats"
    ]
    # stats' targets import the engine's resolver only inside a function (for --spec).
    assert "varscale_cli.engine.resolve" in graph["varscale_cli.stats.targets"]


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    bad = cycles(import_graph())
    assert not bad, f"import cycles: {bad}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_module_over_the_line_limit(module: str) -> None:
    lines = len(_modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines, over {MAX_LINES}"


def _modules_loaded_by(
    tmp_path: Path, spec_text: str, *commands: str,
    modules: tuple[str, ...] = ("h5py", "ml_dtypes", "rich", "jsonschema"),
    spec_name: str = "s.yaml",
) -> str:
    """Run ``commands`` (CLI argument lines, ``{spec}`` and ``{out}`` filled in) in a fresh
    interpreter, each required to succeed; return what its last line prints: whether each
    of ``modules`` was imported."""
    spec = tmp_path / spec_name
    spec.write_text(spec_text)
    script = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from varscale_cli.cli import cli\n"
        "for args in map(json.loads, sys.argv[1:]):\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        f"print(*(m in sys.modules for m in {modules!r}))\n"
    )
    out = tmp_path / "w.safetensors"
    lines = [json.dumps([a.format(spec=spec, out=out) for a in c.split()]) for c in commands]
    result = subprocess.run(
        [sys.executable, "-c", script, *lines], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_help_and_float32_safetensors_runs_do_not_import_h5py_or_ml_dtypes(tmp_path: Path) -> None:
    """The registry imports every format module; only opening or writing HDF5 imports h5py,
    nor ml_dtypes (0.15-0.5 s of start-up) for a float32 file: only 16- and 8-bit floats."""
    loaded = _modules_loaded_by(
        tmp_path, "version: 1\nseed: 0\ntensors:\n  w: {shape: [4, 3]}\n",
        "--help", "generate {spec} -o {out} -q", "verify {out}",
    )
    assert loaded.split()[:2] == ["False", "False"]


def test_a_quiet_generate_does_not_import_rich_or_jsonschema(tmp_path: Path) -> None:
    """rich is for printing: a --quiet run (the check included) never loads it; and a spec
    that conforms never loads jsonschema (spec/conforms.py), which only words errors."""
    loaded = _modules_loaded_by(
        tmp_path, "version: 1\nseed: 0\ntensors:\n  w: {shape: [400, 300]}\n  b: {shape: [300]}\n",
        "generate {spec} -o {out} -q",
    )
    assert loaded == "False False False False"


def test_a_generate_does_not_import_the_framework_conventions_or_the_thread_pool(
    tmp_path: Path,
) -> None:
    """Start-up: deriving specs from frameworks (yaml dumping, the rule tables), sharding,
    size parsing and the streaming writers' thread pool are not part of a plain generate."""
    loaded = _modules_loaded_by(
        tmp_path, "version: 1\nseed: 0\ntensors:\n  w: {shape: [40, 30]}\n",
        "generate {spec} -o {out} -q --workers 2",
        modules=(
            "varscale_cli.frameworks.conventions", "varscale_cli.frameworks.rules",
            "varscale_cli.engine.shards", "fractions", "concurrent.futures",
        ),
    )
    assert loaded == "False False False False False"
    # ... while the framework helpers still load on first use.
    import varscale_cli
    from varscale_cli import frameworks

    assert varscale_cli.spec_from_module is frameworks.spec_from_module
    assert "spec_from_keras" in dir(varscale_cli) and "dump_spec" in dir(frameworks)
    with pytest.raises(AttributeError):
        _ = frameworks.no_such_helper


@pytest.mark.parametrize(("spec_name", "loads_yaml"), [("s.json", "False"), ("s.yaml", "True")])
def test_only_a_yaml_spec_imports_yaml(tmp_path: Path, spec_name: str, loads_yaml: str) -> None:
    """PyYAML (~20 ms of start-up) is for YAML specs: a JSON spec's run never loads it."""
    loaded = _modules_loaded_by(
        tmp_path, '{"version": 1, "seed": 0, "tensors": {"w": {"shape": [4, 3]}}}',
        "generate {spec} -o {out} -q", "verify {out}", modules=("yaml",), spec_name=spec_name,
    )
    assert loaded == loads_yaml


def test_public_classes_have_docstrings():
    """A docstring placed after a class attribute is a no-op string and leaves ``__doc__``
    None (two readers had that): every public class says what it is."""
    missing = []
    for module in sorted(_modules()):
        if module.endswith("__main__"):
            continue
        mod = importlib.import_module(module)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and obj.__module__ == module and not name.startswith("_"):
                if not obj.__doc__:  # not inherited: a class without its own is None
                    missing.append(f"{module}.{name}")
    assert not missing
