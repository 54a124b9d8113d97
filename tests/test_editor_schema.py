"""`varscale schema`: the editor's schema knows the initializer names, their parameters and
choices, the layouts and the dtypes (generated from the registry), accepts every spec the
loader accepts, and leaves the loader's own one-line messages as they were."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from varscale_cli.cli import cli
from varscale_cli.core.initializers import ALIASES, CLASSES, KERAS_CLASSES, PRESETS, get, names
from varscale_cli.errors import SpecError
from varscale_cli.spec import parse_spec
from varscale_cli.spec.editor_schema import CHOICES, editor_schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    doc = editor_schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def _spec(init: Any = "he_normal", **entry: Any) -> dict[str, Any]:
    return {"version": 1, "seed": 0, "tensors": {"w": {"shape": [64, 32], "initializer": init, **entry}}}


def _loader_accepts(doc: dict[str, Any]) -> bool:
    try:
        parse_spec(json.dumps(doc), path=Path("s.json"))
    except SpecError:
        return False
    return True


def _errors(validator: jsonschema.Draft202012Validator, doc: dict[str, Any]) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def test_schema_command_prints_the_editor_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == editor_schema()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_spec("he_normall"), "'he_normall' is not one of"),
        (_spec({"name": "random_normal", "std": 0.1}), "'std' was unexpected"),
        (_spec({"name": "variance_scaling", "mode": "fanin"}), "'fanin' is not one of"),
        (_spec(dtype="float8"), "'float8' is not one of"),
        (_spec(layout="pytorch"), "'pytorch' is not one of"),
        (_spec({"name": "torch.kaiming_normal", "nonlinearity": "ReLU"}), "'ReLU' is not one of"),
        (_spec(dtype="complex64"), "'complex64' is not one of"),  # no initializer produces it
        (_spec({"class_name": "HeNormall"}), "'HeNormall' is not one of"),
        (_spec({"scale": 2.0, "std": 1.0}), "'std' was unexpected"),
        ({"version": 1, "defaults": {"initializer": "he_normall"}, "tensors": {"w": {"shape": [2]}}}, "'he_normall'"),
        ({"version": 1, "rules": [{"match": "*", "dtype": "float8"}], "tensors": {"w": {"shape": [2]}}}, "'float8'"),
    ],
)
def test_editor_schema_flags_typos_the_loader_also_refuses(
    validator: jsonschema.Draft202012Validator, doc: dict[str, Any], message: str
) -> None:
    errors = _errors(validator, doc)
    assert any(message in e for e in errors), errors
    assert not _loader_accepts(doc)


def _valid_initializers() -> list[Any]:
    """Every name bare and with its full config, Keras and TF dicts, embedded keys."""
    out: list[Any] = list(names())
    for name in names():
        preset = ALIASES.get(name, name) in PRESETS  # presets take only seed and dtype
        config = {} if preset else {k: v for k, v in get(name).get_config().items() if k != "dtype"}
        out.append({"name": name, **config, "seed": 3, "dtype": "float16"})
    out += [{"class_name": c, "config": {"seed": None}, "module": "keras.initializers"} for c in KERAS_CLASSES]
    out += [
        {"scale": 2.0, "mode": "fan_avg", "distribution": "Uniform", "seed": None},
        {"name": "variance_scaling", "distribution": "UNTRUNCATED_NORMAL", "corrected": False},
        {"name": "torch.kaiming_uniform", "mode": "FAN_OUT", "a": 2.23, "nonlinearity": "leaky_relu"},
        {"name": "he_normal", "layout": "torch", "in_axis": 1, "out_axis": [0]},
    ]
    return out


@pytest.mark.parametrize("init", _valid_initializers(), ids=str)
def test_editor_schema_accepts_what_the_loader_accepts(validator: jsonschema.Draft202012Validator, init: Any) -> None:
    doc = _spec(init)
    assert _loader_accepts(doc)
    assert _errors(validator, doc) == []


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    assert _errors(validator, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("dtype", sorted(editor_schema()["$defs"]["dtype"]["enum"]))
def test_dtype_enum_is_what_the_loader_accepts(dtype: str) -> None:
    assert _loader_accepts(_spec("he_normal", dtype=dtype))


@pytest.mark.parametrize(("key", "choice"), sorted(CHOICES.items()), ids=lambda x: str(x))
def test_choices_are_what_the_classes_accept(key: tuple[str, str], choice: tuple[tuple[str, ...], bool]) -> None:
    name, param = key
    values, ignore_case = choice
    assert name in CLASSES
    for value in values:
        get(name, **{param: value})
        other_case = value.swapcase()
        if ignore_case:
            get(name, **{param: other_case})
        else:
            with pytest.raises((ValueError, TypeError)):
                get(name, **{param: other_case})
    with pytest.raises((ValueError, TypeError)):
        get(name, **{param: "bogus"})


def test_loader_messages_are_unchanged() -> None:
    """The loader validates with the plain schema: its messages still name the file, say
    'did you mean' and list what is allowed."""
    with pytest.raises(SpecError) as exc:
        parse_spec(json.dumps(_spec("he_normall")), path=Path("s.json"))
    assert "did you mean 'he_normal'" in str(exc.value) and str(exc.value).startswith("s.json")
    with pytest.raises(SpecError) as exc:
        parse_spec(json.dumps(_spec({"name": "random_normal", "std": 0.1})), path=Path("s.json"))
    assert "allowed: dtype, mean, seed, stddev" in str(exc.value)


def test_editor_schema_is_a_fresh_copy() -> None:
    a = editor_schema()
    b = copy.deepcopy(a)
    a["$defs"]["dtype"]["enum"].append("x")
    assert editor_schema() == b
