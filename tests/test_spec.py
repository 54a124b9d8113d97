"""Spec parsing and validation: a table of valid specs, a table of invalid specs with their exact
messages, and a property test that no mutation of a valid spec escapes as anything but SpecError.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varscale_cli.errors import SpecError, UnsupportedDtype
from varscale_cli.spec import Spec, TensorPlan, load_spec, parse_spec, schema

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# The example at the top of docs/spec.md, verbatim.
EXAMPLE = """\
version: 1
seed: 1234
defaults: {dtype: float32, layout: keras, initializer: glorot_uniform}
rules:                      # optional, first match wins, before defaults
  - {match: "*bias", initializer: zeros}
tensors:                    # a mapping name -> entry, or a list of entries with `name:`
  dense/kernel: {shape: [784, 256]}
  dense/bias: {shape: [256]}
  conv/kernel: {shape: [3, 3, 64, 128], initializer: he_normal}
  fc.weight: {shape: [256, 784], layout: torch, initializer: {name: torch.kaiming_uniform, a: 2.23606797749979}}
  attn/qkv: {shape: [512, 8, 64], in_axis: 0, out_axis: [1, 2]}
  old: {shape: [100, 100], initializer: {name: variance_scaling, scale: 2.0, mode: fan_in, distribution: truncated_normal, corrected: false}}
  contrib: {shape: [3, 3, 48, 96], initializer: {name: variance_scaling_initializer, factor: 1.0, mode: FAN_AVG, uniform: true}}
  W_part1: {shape: [1000, 512], partition: {of: W, full_shape: [4000, 512], offset: [1000, 0]}}
"""


def parse(text: str, fmt: str = "yaml") -> Spec:
    return parse_spec(textwrap.dedent(text), path=Path(f"spec.{fmt}"))


def one(text: str, fmt: str = "yaml") -> TensorPlan:
    (plan,) = parse(text, fmt).tensors
    return plan


def y(tensors: str, head: str = "") -> str:
    """A YAML spec with version 1, optional extra top-level lines, and the given tensors."""
    return f"version: 1\n{head}tensors: {tensors}\n"


# --- the API ------------------------------------------------------------------------------------


def test_dataclass_fields_are_the_documented_api():
    assert [f.name for f in dataclasses.fields(TensorPlan)] == [
        "name", "shape", "dtype", "initializer", "layout", "in_axis", "out_axis", "batch_axis",
        "stream", "full_shape", "offset", "source", "zero_rows",
    ]  # fmt: skip
    assert [f.name for f in dataclasses.fields(Spec)] == [
        "path", "version", "seed", "tensors", "sha256", "hf_config",
    ]  # fmt: skip
    plan = one(y("{a: {shape: [2]}}"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "b"  # type: ignore[misc]


def test_issue_example_parses_fully():
    spec = parse(EXAMPLE)
    assert spec.version == 1 and spec.seed == 1234 and spec.path == Path("spec.yaml")
    assert spec.sha256 == hashlib.sha256(EXAMPLE.encode()).hexdigest()
    t = {p.name: p for p in spec.tensors}
    assert list(t) == [
        "dense/kernel", "dense/bias", "conv/kernel", "fc.weight", "attn/qkv", "old", "contrib",
        "W_part1",
    ]  # fmt: skip
    assert t["dense/kernel"].initializer.get_config()["distribution"] == "uniform"
    assert (t["dense/kernel"].shape, t["dense/kernel"].dtype) == ((784, 256), "float32")
    assert t["dense/bias"].initializer.name == "zeros"
    assert t["dense/bias"].source["origin"]["initializer"] == "rules[0]"
    assert t["conv/kernel"].initializer.preset == "he_normal"
    fc = t["fc.weight"]
    assert fc.layout == "torch" and fc.initializer.name == "torch.kaiming_uniform"
    assert fc.initializer.a == pytest.approx(5**0.5)
    qkv = t["attn/qkv"]
    assert (qkv.in_axis, qkv.out_axis, qkv.batch_axis) == ((0,), (1, 2), ())
    old = t["old"].initializer
    assert old.get_config()["corrected"] is False and old.scale == 2.0
    contrib = t["contrib"].initializer
    assert (contrib.name, contrib.get_config()["mode"]) == (
        "variance_scaling_initializer",
        "FAN_AVG",
    )
    part = t["W_part1"]
    assert (part.stream, part.full_shape, part.offset) == ("W", (4000, 512), (1000, 0))
    assert part.source["partition"] == {"of": "W", "full_shape": [4000, 512], "offset": [1000, 0]}
    for p in spec.tensors:
        json.dumps(p.source)  # JSON-able provenance
        if p.name != "W_part1":
            assert (p.stream, p.full_shape, p.offset) == (p.name, p.shape, (0,) * len(p.shape))


def test_load_spec_hashes_the_file_bytes(tmp_path):
    f = tmp_path / "s.yaml"
    data = b"\xef\xbb\xbf" + EXAMPLE.encode()  # a BOM is tolerated but hashed
    f.write_bytes(data)
    spec = load_spec(f)
    assert spec.path == f and spec.sha256 == hashlib.sha256(data).hexdigest()
    assert len(spec.tensors) == 8


def test_load_spec_picks_json_by_suffix(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps(yaml.safe_load(EXAMPLE)))
    assert [p.name for p in load_spec(f).tensors] == [p.name for p in parse(EXAMPLE).tensors]


def test_load_spec_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.yaml'?: cannot read the spec: No such file"):
        load_spec(tmp_path / "nope.yaml")


def test_load_spec_not_utf8(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_bytes(b"version: 1\n\xff\n")
    with pytest.raises(SpecError, match=r"s\.yaml: the spec is not UTF-8 text \(byte 11\)$"):
        load_spec(f)


def test_schema_is_a_valid_draft_2020_12_schema():
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # the list form accepts exactly the mapping form's keys plus `name`
    d = s["$defs"]
    assert d["named_tensor"]["properties"] == {
        "name": {"type": "string"},
        **d["tensor"]["properties"],
    }
    s["title"] = "changed"
    assert schema()["title"] != "changed"  # a fresh copy every time


def test_schema_limits_match_the_documented_constants():
    from varscale_cli import spec as spec_module

    dim = schema()["$defs"]["dim"]
    assert (dim["minimum"], dim["maximum"]) == (0, spec_module.MAX_DIM) == (0, 2**40)
    assert spec_module.MAX_ELEMENTS == 2**48
    assert schema()["properties"]["seed"]["maximum"] == 2**63 - 1


def test_schema_accepts_the_example_and_configs():
    validator = jsonschema.Draft202012Validator(schema())
    docs = [yaml.safe_load(EXAMPLE)] + [
        yaml.safe_load(p.read_text()) for p in CONFIGS.glob("*.yaml")
    ]
    for doc in docs:
        assert not list(validator.iter_errors(doc))


@pytest.mark.parametrize("name", ["mlp", "convnet", "gpt_block"])
def test_configs_load_and_stay_small(name):
    spec = load_spec(CONFIGS / f"{name}.yaml")
    assert 0 < sum(math.prod(p.shape) for p in spec.tensors) < 2_000_000
    for p in spec.tensors:
        if p.name.endswith(("bias", "beta", "moving_mean")):
            assert p.initializer.name == "zeros", p.name


def test_config_details():
    mlp = {p.name: p for p in load_spec(CONFIGS / "mlp.yaml").tensors}
    assert [p.shape for p in mlp.values() if p.name.endswith("kernel")] == [
        (784, 512), (512, 256), (256, 10),
    ]  # fmt: skip
    assert {p.layout for p in mlp.values()} == {"keras"}
    conv = {p.name: p for p in load_spec(CONFIGS / "convnet.yaml").tensors}
    assert conv["conv2/kernel"].shape == (3, 3, 32, 64)
    assert conv["conv2/kernel"].initializer.preset == "he_normal"
    assert conv["bn1/gamma"].initializer.name == "ones"
    gpt = {p.name: p for p in load_spec(CONFIGS / "gpt_block.yaml").tensors}
    assert {p.layout for p in gpt.values()} == {"torch"}
    emb = gpt["tok_emb.weight"]
    assert emb.shape == (1000, 256) and (emb.initializer.name, emb.initializer.stddev) == (
        "random_normal", 0.02,
    )  # fmt: skip
    assert gpt["blocks.0.attn.qkv.weight"].shape == (768, 256)
    assert gpt["blocks.0.mlp.fc.weight"].shape == (1024, 256)
    assert gpt["blocks.0.mlp.proj.weight"].shape == (256, 1024)
    assert gpt["blocks.0.ln_1.weight"].initializer.name == "ones"
    assert gpt["blocks.0.ln_1.bias"].initializer.name == "zeros"


# --- valid specs --------------------------------------------------------------------------------

# (id, yaml text, {tensor name: {attribute: expected}}); attributes "init" and "init.<param>"
# look into the initializer.
VALID = [
    (
        "minimal",
        y("{w: {shape: [3, 4]}}"),
        {
            "w": {
                "shape": (3, 4),
                "dtype": "float32",
                "layout": "keras",
                "init": "glorot_uniform",
                "in_axis": None,
                "out_axis": None,
                "batch_axis": (),
                "stream": "w",
            }
        },
    ),
    (
        "scalar and zero-size",
        y("{s: {shape: []}, z: {shape: [0, 5]}}"),
        {"s": {"shape": (), "offset": ()}, "z": {"shape": (0, 5)}},
    ),
    (
        "dtype aliases",
        y(
            "{a: {shape: [1], dtype: half}, b: {shape: [1], dtype: bf16}, "
            "c: {shape: [1], dtype: double}, d: {shape: [1], dtype: f32}}"
        ),
        {
            "a": {"dtype": "float16"},
            "b": {"dtype": "bfloat16"},
            "c": {"dtype": "float64"},
            "d": {"dtype": "float32"},
        },
    ),
    ("seed missing", y("{a: {shape: [1]}}"), {"a": {"shape": (1,)}}),
    (
        "torch initializer defaults to torch layout",
        y("{w: {shape: [4, 3], initializer: torch.kaiming_normal}}"),
        {"w": {"layout": "torch"}},
    ),
    (
        "defaults layout beats the initializer's",
        y("{w: {shape: [4, 3], initializer: torch.kaiming_normal}}", "defaults: {layout: keras}\n"),
        {"w": {"layout": "keras"}},
    ),
    (
        "axes inside the initializer",
        y(
            "{q: {shape: [8, 2, 4], initializer: {name: he_normal, "
            "in_axis: 0, out_axis: [-2, -1], layout: keras}}}"
        ),
        {"q": {"in_axis": (0,), "out_axis": (1, 2), "init": "he_normal"}},
    ),
    (
        "same axis in both places is fine",
        y("{q: {shape: [8, 4], in_axis: 0, initializer: {name: he_normal, in_axis: [0]}}}"),
        {"q": {"in_axis": (0,)}},
    ),
    (
        "batch axis",
        y("{e: {shape: [4, 8, 16], batch_axis: 0}}"),
        {"e": {"batch_axis": (0,), "in_axis": None}},
    ),
    (
        "negative axes normalised",
        y("{e: {shape: [4, 8, 16], in_axis: -3, out_axis: -1}}"),
        {"e": {"in_axis": (0,), "out_axis": (2,)}},
    ),
    (
        "keras serialize dict",
        y("""{k: {shape: [3, 3], initializer: {module: keras.initializers,
        class_name: VarianceScaling, config: {scale: 2.0, mode: fan_out, distribution: uniform,
        seed: null}, registered_name: null}}}"""),
        {"k": {"init": "variance_scaling", "init.scale": 2.0, "init.mode": "fan_out"}},
    ),
    (
        "TF get_config dict",
        y(
            "{k: {shape: [3, 3], initializer: {scale: 1.0, mode: fan_avg, "
            "distribution: normal, seed: null, dtype: float64}}}"
        ),
        {"k": {"init": "variance_scaling", "init.mode": "fan_avg", "dtype": "float64"}},
    ),
    (
        "plain initializers",
        y("""{c: {shape: [2], initializer: {name: constant, value: 0.5}},
        u: {shape: [2], initializer: {name: random_uniform, minval: -1, maxval: 1}},
        t: {shape: [2], initializer: {name: truncated_normal, mean: 0, stddev: 2}}}"""),
        {"c": {"init.value": 0.5}, "u": {"init.maxval": 1.0}, "t": {"init.stddev": 2.0}},
    ),
    (
        "yaml 1.1: 1e-3 in a float field",
        y("{w: {shape: [2, 2], initializer: {name: random_normal, stddev: 1e-3, mean: -2E+1}}}"),
        {"w": {"init.stddev": 0.001, "init.mean": -20.0}},
    ),
    (
        "yaml 1.1: yes in a boolean field",
        y("{w: {shape: [2, 2], initializer: {name: variance_scaling_initializer, uniform: yes}}}"),
        {"w": {"init.uniform": True}},
    ),
    (
        "yaml anchors and merge keys",
        """\
        version: 1
        defaults: {initializer: &vs {name: variance_scaling, scale: 2.0, mode: fan_in}}
        tensors:
          a: &base {shape: [4, 4], initializer: *vs}
          b: {<<: *base, dtype: float64}
        """,
        {"a": {"init.scale": 2.0}, "b": {"shape": (4, 4), "dtype": "float64", "init.scale": 2.0}},
    ),
    (
        "a key beside a merge key overrides it",
        "version: 1\ntensors:\n  a: &b {shape: [4, 4], dtype: f16}\n  b: {<<: *b, shape: [2]}\n",
        {"b": {"shape": (2,), "dtype": "float16"}},
    ),
    (
        "json with a BOM",
        '\ufeff{"version": 1, "tensors": {"a": {"shape": [1]}}}',
        {"a": {"shape": (1,)}},
    ),
    ("hex ints are unambiguous", y("{a: {shape: [0x10]}}"), {"a": {"shape": (16,)}}),
    (
        "$schema key for editors",
        y("{a: {shape: [1]}}", "$schema: ./spec_schema.json\n"),
        {"a": {"shape": (1,)}},
    ),
    (
        "the same partition twice, and of the whole tensor",
        """\
        version: 1
        tensors:
          W: {shape: [4, 6]}
          W0: {shape: [2, 6], partition: {of: W, full_shape: [4, 6], offset: [0, 0]}}
          W0b: {shape: [2, 6], partition: {of: W, full_shape: [4, 6], offset: [0, 0]}}
          self: {shape: [2, 2], partition: {full_shape: [4, 4], offset: [2, 2]}}
        """,
        {
            "W": {"stream": "W"},
            "W0": {"stream": "W", "full_shape": (4, 6)},
            "W0b": {"offset": (0, 0)},
            "self": {"stream": "self", "offset": (2, 2)},
        },
    ),
    (
        "partition with -1 axis equals the full tensor's 1",
        """\
        version: 1
        tensors:
          W: {shape: [4, 6], in_axis: 1, out_axis: 0}
          W0: {shape: [2, 6], in_axis: -1, out_axis: -2,
               partition: {of: W, full_shape: [4, 6], offset: [2, 0]}}
        """,
        {"W0": {"in_axis": (1,), "out_axis": (0,)}},
    ),
    (
        "quoted names that look like numbers",
        y("{'1:30': {shape: [1]}, 'yes': {shape: [1]}}"),
        {"1:30": {"shape": (1,)}, "yes": {"shape": (1,)}},
    ),
]


def _attr(plan: TensorPlan, key: str):
    if key == "init":
        return getattr(plan.initializer, "preset", None) or plan.initializer.name
    if key.startswith("init."):
        return getattr(plan.initializer, key[5:])
    return getattr(plan, key)


@pytest.mark.parametrize("text, expected", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid(text, expected):
    fmt = "json" if text.lstrip("\ufeff").startswith("{") else "yaml"
    plans = {p.name: p for p in parse(text, fmt).tensors}
    assert set(expected) <= set(plans)
    for name, attrs in expected.items():
        for key, value in attrs.items():
            assert _attr(plans[name], key) == value, (name, key)


def test_rule_precedence():
    spec = parse("""\
        version: 1
        defaults: {dtype: float64, layout: torch, initializer: lecun_normal}
        rules:
          - {match: "enc/*", dtype: float16}
          - {match: "*/kernel", initializer: he_uniform, dtype: bfloat16}
          - {match: "*", layout: keras, initializer: zeros}
        tensors:
          enc/kernel: {shape: [2, 3]}
          enc/kernel_own: {shape: [2, 3], dtype: float32, initializer: ones}
          dec/kernel: {shape: [2, 3]}
          dec/bias: {shape: [3]}
          Dec/KERNEL: {shape: [3]}
        """)
    t = {p.name: p for p in spec.tensors}
    # first matching rule wins for each key it sets; later rules still supply other keys
    assert (t["enc/kernel"].dtype, t["enc/kernel"].initializer.preset, t["enc/kernel"].layout) == (
        "float16", "he_uniform", "keras",
    )  # fmt: skip
    assert t["enc/kernel"].source["origin"] == {
        "initializer": "rules[1]", "dtype": "rules[0]", "layout": "rules[2]",
    }  # fmt: skip
    # the tensor's own keys beat every rule
    assert (t["enc/kernel_own"].dtype, t["enc/kernel_own"].initializer.name) == ("float32", "ones")
    assert (t["dec/kernel"].dtype, t["dec/kernel"].initializer.preset) == ("bfloat16", "he_uniform")
    # `*` matches `/`, so "*" catches everything; defaults only fill what no rule sets
    assert (t["dec/bias"].initializer.name, t["dec/bias"].dtype) == ("zeros", "float64")
    # matching is case-sensitive on every platform
    assert t["Dec/KERNEL"].initializer.name == "zeros"


def test_rule_axes_embedded_in_the_initializer_apply_to_matches():
    spec = parse("""\
        version: 1
        rules:
          - {match: "*/qkv", initializer: {name: lecun_normal, in_axis: 0, out_axis: [1, 2]}}
        tensors:
          l0/qkv: {shape: [16, 2, 8]}
          l1/qkv: {shape: [16, 2, 8], initializer: he_normal}
          l1/other: {shape: [16, 2, 8]}
        """)
    t = {p.name: p for p in spec.tensors}
    assert (t["l0/qkv"].in_axis, t["l0/qkv"].initializer.preset) == ((0,), "lecun_normal")
    assert (t["l1/qkv"].out_axis, t["l1/qkv"].initializer.preset) == ((1, 2), "he_normal")
    assert t["l1/other"].in_axis is None


def test_split_expansion():
    spec = parse("""\
        version: 1
        rules: [{match: "qkv", initializer: he_normal}]
        tensors:
          qkv: {shape: [6, 4], split: {axis: 0, parts: 3}}
          cols: {shape: [2, 6], split: {axis: -1, parts: 2}}
          last: {shape: [1]}
        """)
    names = [p.name for p in spec.tensors]
    assert names == ["qkv/part_0", "qkv/part_1", "qkv/part_2", "cols/part_0", "cols/part_1", "last"]
    parts = spec.tensors[:3]
    assert [p.offset for p in parts] == [(0, 0), (2, 0), (4, 0)]
    assert {(p.shape, p.full_shape, p.stream) for p in parts} == {((2, 4), (6, 4), "qkv")}
    # rules see the name as written, so every part gets the same initializer
    assert {p.initializer.preset for p in parts} == {"he_normal"}
    assert parts[1].source["split"] == {"axis": 0, "parts": 3, "index": 1}
    assert spec.tensors[4].offset == (0, 3) and spec.tensors[4].shape == (2, 3)


def test_list_form_equals_mapping_form():
    mapping = parse(EXAMPLE)
    doc = yaml.safe_load(EXAMPLE)
    doc["tensors"] = [{"name": k, **v} for k, v in doc["tensors"].items()]
    listed = parse(yaml.safe_dump(doc, sort_keys=False))
    assert _plans(listed) == _plans(mapping)


def _plans(spec: Spec) -> list[tuple]:
    return [(dataclasses.astuple(p)[:-1], p.source) for p in spec.tensors]


def test_json_and_yaml_are_equivalent():
    doc = yaml.safe_load(EXAMPLE)
    from_json = parse(json.dumps(doc, indent=1), "json")
    from_yaml = parse(EXAMPLE)
    assert _plans(from_json) == _plans(from_yaml)
    assert from_json.sha256 != from_yaml.sha256


def test_fmt_overrides_the_suffix():
    text = json.dumps({"version": 1, "tensors": {"a": {"shape": [1]}}})
    assert parse_spec(text, path=Path("x.txt"), fmt="json").tensors[0].name == "a"
    assert parse_spec(text).path is None  # JSON is YAML too, mostly
    with pytest.raises(
        SpecError, match=r"^<spec>: unknown spec format 'toml'; allowed: json, yaml$"
    ):
        parse_spec(text, fmt="toml")


def test_1e3_handling():
    # YAML: PyYAML reads 1e-3 as a string; float parameters convert it
    assert (
        one(y("{w: {shape: [2], initializer: {name: constant, value: 1e-3}}}")).initializer.value
        == 0.001
    )
    # ... but only float-looking strings
    with pytest.raises(SpecError, match=r"tensor 'w': initializer: `value` must be a finite number"):
        parse(y("{w: {shape: [2], initializer: {name: constant, value: 1e-3x}}}"))
    # ... and only in float parameters
    with pytest.raises(SpecError, match=r"tensors\.w\.shape\[0\]: '1e3' is not of type 'integer'$"):
        parse(y("{w: {shape: [1e3]}}"))
    # JSON has real numbers, so a string stays a string
    with pytest.raises(SpecError, match=r"^spec\.json: tensor 'w': initializer: "):
        parse(
            '{"version": 1, "tensors": {"w": {"shape": [2], '
            '"initializer": {"name": "constant", "value": "1e-3"}}}}',
            "json",
        )
    assert (
        one(
            '{"version": 1, "tensors": {"w": {"shape": [2], '
            '"initializer": {"name": "constant", "value": 1e-3}}}}',
            "json",
        ).initializer.value
        == 0.001
    )


def test_seed_kinds():
    assert parse(y("{a: {shape: [1]}}", "seed: 0\n")).seed == 0
    assert parse(y("{a: {shape: [1]}}", "seed: 9223372036854775807\n")).seed == 2**63 - 1
    assert parse(y("{a: {shape: [1]}}", "seed: null\n")).seed is None
    assert parse(y("{a: {shape: [1]}}")).seed is None


def test_streams_are_keyed_by_name_not_position():
    a = parse(y("{x: {shape: [2]}, y: {shape: [3]}, z: {shape: [4]}}"))
    b = parse(y("{z: {shape: [4]}, x: {shape: [2]}}"))
    by_name = {p.name: p for p in a.tensors}
    for p in b.tensors:
        assert dataclasses.astuple(p)[:-1] == dataclasses.astuple(by_name[p.name])[:-1]


def test_complex_needs_initializer_support():
    # variance_scaling (the default glorot_uniform is one) fills complex tensors; the plain
    # initializers cannot.
    assert one(y("{c: {shape: [2, 2], dtype: complex64}}")).dtype == "complex64"
    with pytest.raises(UnsupportedDtype, match="dtype 'complex64' cannot be produced"):
        parse(y("{c: {shape: [2, 2], dtype: complex64, initializer: random_normal}}"))


# --- invalid specs ------------------------------------------------------------------------------

S = "spec.yaml: "
J = "spec.json: "

# (id, text, expected message; "~" prefix = a stable fragment, else the exact message)
INVALID = [
    # syntax
    (
        "yaml syntax",
        "version: 1\ntensors:\n  a: {shape: [3, \n",
        "spec.yaml:4:1: invalid YAML: while parsing a flow node (line 4, column 1): "
        "expected the node content, but found '<stream end>'",
    ),
    (
        "yaml tab",
        "version: 1\ntensors:\n\ta: 1\n",
        "spec.yaml:3:1: invalid YAML: while scanning for the next token: "
        "found character '\\t' that cannot start any token",
    ),
    (
        "yaml two documents",
        "version: 1\n---\nversion: 1\n",
        "spec.yaml:2:1: invalid YAML: expected a single document in the stream (line 1, column 1): "
        "but found another document",
    ),
    (
        "yaml control character",
        "version: 1\x07\n",
        "~spec.yaml: invalid YAML: unacceptable character #x0007",
    ),
    (
        "json syntax",
        '{"version": 1, "tensors": {"a": {"shape": [1,]}}}',
        "spec.json:1:46: invalid JSON: Expecting value",
    ),
    ("json trailing text", '{"version": 1} x', "spec.json:1:16: invalid JSON: Extra data"),
    # top level
    ("empty", "", S + "the spec is empty"),
    ("only comments", "# nothing\n", S + "the spec is empty"),
    ("whitespace only", "  \n", S + "the spec is empty"),
    (
        "top level list",
        "- 1\n",
        S + "the top level must be a mapping with `version` and `tensors`, got a list",
    ),
    (
        "top level string",
        "hello\n",
        S + "the top level must be a mapping with `version` and `tensors`, got a string",
    ),
    (
        "version 2",
        "version: 2\ntensors: {a: {shape: [1]}}\n",
        S + "version: 2 is not a supported spec version; this varscale reads version 1",
    ),
    (
        "version string",
        "version: '1'\ntensors: {a: {shape: [1]}}\n",
        S + "version: '1' is not a supported spec version; this varscale reads version 1",
    ),
    (
        "version bool",
        "version: true\ntensors: {a: {shape: [1]}}\n",
        S + "version: true is not a supported spec version; this varscale reads version 1",
    ),
    ("version missing", "tensors: {a: {shape: [1]}}\n", S + "missing required key 'version'"),
    ("tensors missing", "version: 1\n", S + "missing required key 'tensors'"),
    ("tensors empty", y("{}"), S + "tensors: must not be empty"),
    ("tensors empty list", y("[]"), S + "tensors: must not be empty"),
    ("tensors scalar", y("3"), S + "tensors: 3 is not of type 'object' or 'array'"),
    # unknown keys, with suggestions
    (
        "typo top",
        "version: 1\ntenosrs: {a: {shape: [1]}}\n",
        S + "unknown key 'tenosrs' (did you mean 'tensors'?); allowed: $schema, defaults, "
        "hf_config, rules, seed, tensors, version",
    ),
    (
        "typo tensor",
        y("{dense/kernel: {shape: [1], intializer: zeros}}"),
        S
        + "tensors.dense/kernel: unknown key 'intializer' (did you mean 'initializer'?); allowed: "
        "batch_axis, dtype, in_axis, initializer, layout, out_axis, partition, shape, split, "
        "zero_rows",
    ),
    (
        "typo over missing",
        y("{a: {shpe: [1]}}"),
        "~" + S + "tensors.a: unknown key 'shpe' (did you mean 'shape'?)",
    ),
    (
        "typo no suggestion",
        y("{a: {shape: [1], zzz: 1}}"),
        "~" + S + "tensors.a: unknown key 'zzz'; allowed: ",
    ),
    (
        "typo defaults",
        y("{a: {shape: [1]}}", "defaults: {dtyp: float32}\n"),
        S
        + "defaults: unknown key 'dtyp' (did you mean 'dtype'?); allowed: dtype, initializer, layout",
    ),
    (
        "typo rule",
        y("{a: {shape: [1]}}", "rules: [{match: a, initialiser: zeros}]\n"),
        "~" + S + "rules[0]: unknown key 'initialiser' (did you mean 'initializer'?)",
    ),
    (
        "typo partition",
        y("{a: {shape: [1], partition: {of: b, full_shape: [2], ofset: [0]}}}"),
        "~" + S + "tensors.a.partition: unknown key 'ofset' (did you mean 'offset'?)",
    ),
    (
        "typo list form",
        y("[{name: a, shape: [1], lyout: torch}]"),
        "~" + S + "tensors[0] (tensor 'a'): unknown key 'lyout' (did you mean 'layout'?)",
    ),
    (
        "rule without match",
        y("{a: {shape: [1]}}", "rules: [{dtype: float16}]\n"),
        S + "rules[0]: missing required key 'match'",
    ),
    (
        "rule sets nothing",
        y("{a: {shape: [1]}}", "rules: [{match: a}]\n"),
        S + "rules[0]: the rule sets nothing; give it initializer, dtype or layout",
    ),
    ("list entry without name", y("[{shape: [1]}]"), S + "tensors[0]: missing required key 'name'"),
    ("shape missing", y("{a: {dtype: float32}}"), S + "tensors.a: missing required key 'shape'"),
    # duplicates
    (
        "yaml duplicate key",
        "version: 1\ntensors:\n  a: {shape: [1], shape: [2]}\n",
        "spec.yaml:3:19: duplicate key 'shape' (first at line 3, column 7); "
        "YAML would silently keep the last one",
    ),
    (
        "yaml duplicate tensor",
        "version: 1\ntensors:\n  a: {shape: [1]}\n  a: {shape: [2]}\n",
        "spec.yaml:4:3: duplicate key 'a' (first at line 3, column 3); "
        "YAML would silently keep the last one",
    ),
    (
        "yaml duplicate top",
        "version: 1\nversion: 1\ntensors: {a: {shape: [1]}}\n",
        "~spec.yaml:2:1: duplicate key 'version'",
    ),
    (
        "json duplicate key",
        '{"version": 1, "tensors": {"a": {"shape": [1], "shape": [2]}}}',
        J + "tensors.a: duplicate key 'shape'; JSON would silently keep the last one",
    ),
    (
        "json duplicate tensor",
        '{"version": 1, "tensors": {"a": {"shape": [1]}, "a": {"shape": [1]}}}',
        J + "tensors: duplicate key 'a'; JSON would silently keep the last one",
    ),
    (
        "duplicate list names",
        y("[{name: a, shape: [1]}, {name: b, shape: [1]}, {name: a, shape: [2]}]"),
        S + "tensor name 'a' is defined twice (tensors[0] and tensors[2])",
    ),
    (
        "duplicate after split",
        y("{a: {shape: [4], split: {axis: 0, parts: 2}}, a/part_1: {shape: [2]}}"),
        S + "tensor name 'a/part_1' is defined twice (the split of 'a' and tensors.a/part_1)",
    ),
    # dims
    (
        "negative dim",
        y("{dense/kernel: {shape: [784, -3]}}"),
        S + "tensors.dense/kernel.shape[1]: -3 is less than the minimum of 0",
    ),
    ("float dim", y("{a: {shape: [3.0]}}"), S + "tensors.a.shape[0]: 3.0 is not of type 'integer'"),
    (
        "bool dim",
        y("{a: {shape: [true, 2]}}"),
        S + "tensors.a.shape[0]: true is not of type 'integer'",
    ),
    (
        "string dim",
        y("{a: {shape: ['3']}}"),
        S + "tensors.a.shape[0]: '3' is not of type 'integer'",
    ),
    ("shape not a list", y("{a: {shape: 3}}"), S + "tensors.a.shape: 3 is not of type 'array'"),
    ("null entry", y("{a: }"), S + "tensors.a: null is not of type 'object'"),
    (
        "absurd dim",
        y("{a: {shape: [1099511627777]}}"),
        S
        + "tensors.a.shape[0]: 1099511627777 is greater than the maximum of 1099511627776 (2**40)",
    ),
    (
        "absurd total",
        y("{a: {shape: [1099511627776, 1024]}}"),
        S + "tensor 'a': shape [1099511627776, 1024] has 1125899906842624 elements, more than the "
        "limit of 281474976710656 (2**48)",
    ),
    (
        "absurd full shape",
        y("{a: {shape: [1, 1], partition: {full_shape: [1099511627776, 1024], offset: [0, 0]}}}"),
        "~" + S + "tensor 'a': shape [1099511627776, 1024] has 1125899906842624 elements",
    ),
    (
        "absurd rank",
        y("{a: {shape: [" + ", ".join(["1"] * 65) + "]}}"),
        S + "tensors.a.shape: has 65 items, more than the maximum of 64",
    ),
    (
        "path quoting",
        y("{fc.weight: {shape: [-1]}}"),
        S + "tensors['fc.weight'].shape[0]: -1 is less than the minimum of 0",
    ),
    (
        "list path names the tensor",
        y("[{name: a, shape: [1]}, {name: b, shape: [3, -1]}]"),
        S + "tensors[1].shape[1] (tensor 'b'): -1 is less than the minimum of 0",
    ),
    # seeds
    (
        "negative seed",
        y("{a: {shape: [1]}}", "seed: -1\n"),
        S + "seed: -1 is less than the minimum of 0",
    ),
    (
        "huge seed",
        y("{a: {shape: [1]}}", "seed: 9223372036854775808\n"),
        S
        + "seed: 9223372036854775808 is greater than the maximum of 9223372036854775807 (2**63 - 1)",
    ),
    (
        "float seed",
        y("{a: {shape: [1]}}", "seed: 1.5\n"),
        S + "seed: 1.5 is not of type 'integer' or 'null'",
    ),
    (
        "bool seed",
        y("{a: {shape: [1]}}", "seed: true\n"),
        S + "seed: true is not of type 'integer' or 'null'",
    ),
    (
        "string seed",
        y("{a: {shape: [1]}}", "seed: '12'\n"),
        S + "seed: '12' is not of type 'integer' or 'null'",
    ),
    # YAML 1.1 traps
    (
        "yes as seed",
        y("{a: {shape: [1]}}", "seed: yes\n"),
        "spec.yaml:2:7: seed: unquoted 'yes' is read as the boolean true by YAML 1.1; quote it, "
        "or write true/false where a boolean is meant",
    ),
    (
        "off as a name",
        y("[{name: off, shape: [1]}]"),
        "spec.yaml:2:18: tensors[0].name: unquoted 'off' is read as the boolean false by YAML 1.1; "
        "quote it, or write true/false where a boolean is meant",
    ),
    (
        "on as a key",
        y("{on: {shape: [1]}}"),
        "~spec.yaml:2:11: tensors: unquoted 'on' is read as the boolean true by YAML 1.1",
    ),
    (
        "No in a string param",
        y("{a: {shape: [1], initializer: {name: torch.kaiming_normal, mode: No}}}"),
        "~spec.yaml:2:75: tensors.a.initializer.mode: unquoted 'No' is read as the boolean false",
    ),
    (
        "octal dim",
        y("{a: {shape: [017]}}"),
        "spec.yaml:2:23: tensors.a.shape[0]: '017' is read as the octal number 15 by YAML 1.1; "
        "drop the leading zero, or quote it",
    ),
    (
        "sexagesimal key",
        y("{12:30: {shape: [1]}}"),
        "spec.yaml:2:11: tensors: '12:30' is read as the base-60 number 750 by YAML 1.1; quote it",
    ),
    (
        "sexagesimal float",
        y("{a: {shape: [1], initializer: {name: constant, value: 1:30.5}}}"),
        "~spec.yaml:2:64: tensors.a.initializer.value: '1:30.5' is read as the base-60 number 90.5",
    ),
    (
        "date",
        y("{a: {shape: [1], dtype: 2020-01-01}}"),
        S
        + "tensors.a.dtype: '2020-01-01' is read as a YAML date, which a spec cannot hold; quote it",
    ),
    ("non-string key", y("{3: {shape: [1]}}"), S + "tensors: key 3 must be a string; quote it"),
    ("null key", y("{~: {shape: [1]}}"), S + "tensors: key null must be a string; quote it"),
    # NaN / infinity
    (
        "json NaN",
        '{"version": 1, "tensors": {"a": {"shape": [1], "initializer": '
        '{"name": "variance_scaling", "scale": NaN}}}}',
        J
        + "tensors.a.initializer.scale: NaN is not a finite number; NaN and infinities are not allowed",
    ),
    (
        "json Infinity",
        '{"version": 1, "seed": -Infinity, "tensors": {}}',
        J + "seed: -Infinity is not a finite number; NaN and infinities are not allowed",
    ),
    (
        "json overflow",
        '{"version": 1, "tensors": {"a": {"shape": [1], "initializer": '
        '{"name": "constant", "value": 1e400}}}}',
        J
        + "tensors.a.initializer.value: 1e400 is not a finite number; NaN and infinities are not allowed",
    ),
    (
        "yaml nan",
        y("{a: {shape: [1], initializer: {name: variance_scaling, scale: .nan}}}"),
        S
        + "tensors.a.initializer.scale: nan is not a finite number; NaN and infinities are not allowed",
    ),
    (
        "yaml 1e999 string",
        y("{a: {shape: [1], initializer: {name: variance_scaling, scale: 1e999}}}"),
        S
        + "tensors.a.initializer.scale: inf is not a finite number; NaN and infinities are not allowed",
    ),
    # initializers (messages from initializers.deserialize; only our prefix is pinned)
    (
        "unknown preset",
        y("{conv1/kernel: {shape: [3, 3], initializer: he_norml}}"),
        "~" + S + "tensor 'conv1/kernel': initializer: unknown initializer 'he_norml'",
    ),
    (
        "unknown mode",
        y("{a: {shape: [3], initializer: {name: variance_scaling, mode: fan_mid}}}"),
        "~" + S + "tensor 'a': initializer: Invalid `mode` argument: 'fan_mid'",
    ),
    (
        "unknown distribution",
        y("{a: {shape: [3], initializer: {name: variance_scaling, distribution: gaussian}}}"),
        "~" + S + "tensor 'a': initializer: Invalid `distribution` argument: 'gaussian'",
    ),
    (
        "zero scale",
        y("{a: {shape: [3], initializer: {name: variance_scaling, scale: 0}}}"),
        "~" + S + "tensor 'a': initializer: Argument `scale` must be positive float",
    ),
    (
        "negative scale",
        y("{a: {shape: [3], initializer: {name: variance_scaling, scale: -1.0}}}"),
        "~" + S + "tensor 'a': initializer: Argument `scale` must be positive float",
    ),
    (
        "contrib lowercase mode",
        y("{a: {shape: [3], initializer: {name: variance_scaling_initializer, mode: fan_in}}}"),
        "~" + S + "tensor 'a': initializer: Unknown mode 'fan_in'",
    ),
    (
        "unknown param",
        y("{a: {shape: [3], initializer: {name: random_normal, std: 1.0}}}"),
        "~" + S + "tensor 'a': initializer: ",
    ),
    (
        "yes in a float param",
        y("{a: {shape: [3], initializer: {name: constant, value: yes}}}"),
        "~spec.yaml:2:64: tensors.a.initializer.value: unquoted 'yes' is read as the boolean true",
    ),
    (
        "empty initializer name",
        y("{a: {shape: [3], initializer: ''}}"),
        S + "tensors.a.initializer: must not be empty",
    ),
    (
        "initializer a number",
        y("{a: {shape: [3], initializer: 3}}"),
        S + "tensors.a.initializer: 3 is not of type 'string' or 'object'",
    ),
    (
        "initializer only axes",
        y("{a: {shape: [3, 3], initializer: {in_axis: 0}}}"),
        S
        + "tensor 'a': the initializer mapping is empty once layout, dtype and axes are taken out; "
        "give it a `name`",
    ),
    (
        "bad rule initializer",
        y("{a: {shape: [1]}}", "rules: [{match: zz, initializer: nope}]\n"),
        "~" + S + "rules[0]: initializer: unknown initializer 'nope'",
    ),
    (
        "bad defaults initializer",
        y("{a: {shape: [1]}}", "defaults: {initializer: {name: he_normal, scale: 2}}\n"),
        "~" + S + "defaults: initializer: preset 'he_normal' takes no parameters",
    ),
    (
        "keras input_axes",
        y(
            "{a: {shape: [3, 3], initializer: {class_name: VarianceScaling, "
            "config: {input_axes: 0, output_axes: [1]}}}}"
        ),
        "~" + S + "tensor 'a': initializer: Keras input_axes must be a list of ints or null, "
        "got 0; write e.g. [0]",
    ),
    # dtypes
    (
        "int dtype",
        y("{x: {shape: [3], dtype: int32, initializer: he_normal}}"),
        S + "tensor 'x': dtype 'int32' cannot be produced by initializer 'he_normal'; "
        "allowed: bfloat16, complex128, complex64, float16, float32, float64, float8_e4m3fn, "
        "float8_e5m2",
    ),
    (
        "dtype typo",
        y("{x: {shape: [3], dtype: flaot32}}"),
        S + "tensor 'x': dtype 'flaot32' cannot be produced by initializer 'glorot_uniform'; "
        "allowed: bfloat16, complex128, complex64, float16, float32, float64, float8_e4m3fn, "
        "float8_e5m2 (did you mean 'float32'?)",
    ),
    ("dtype case", y("{x: {shape: [3], dtype: Float32}}"), "~(did you mean 'float32'?)"),
    (
        "complex dtype",
        y("{x: {shape: [3], dtype: complex128, initializer: zeros}}"),
        S + "tensor 'x': dtype 'complex128' cannot be produced by initializer 'zeros'; "
        "allowed: bfloat16, float16, float32, float64, float8_e4m3fn, float8_e5m2",
    ),
    (
        "dtype via defaults",
        y("{x: {shape: [3]}}", "defaults: {dtype: int8}\n"),
        S
        + "defaults: dtype 'int8' is not a known dtype; allowed: bfloat16, complex128, complex64, "
        "float16, float32, float64, float8_e4m3fn, float8_e5m2",
    ),
    (
        "dtype via rule",
        y("{x: {shape: [3]}}", "rules: [{match: y, dtype: f8}]\n"),
        "~" + S + "rules[0]: dtype 'f8' is not a known dtype",
    ),
    (
        "dtype not a string",
        y("{x: {shape: [3], dtype: 32}}"),
        S + "tensors.x.dtype: 32 is not of type 'string'",
    ),
    (
        "dtype inside get_config",
        y("{x: {shape: [3], initializer: {scale: 1.0, dtype: int32}}}"),
        "~" + S + "tensor 'x': dtype 'int32' cannot be produced by initializer 'variance_scaling'",
    ),
    # layouts and axes
    (
        "unknown layout",
        y("{a: {shape: [3], layout: tf}}"),
        S + "tensors.a.layout: 'tf' is not one of 'keras', 'torch'",
    ),
    (
        "unknown embedded layout",
        y("{a: {shape: [3], initializer: {name: he_normal, layout: jax}}}"),
        S + "tensors.a.initializer.layout: 'jax' is not one of 'keras', 'torch'",
    ),
    (
        "layout conflict",
        y("{a: {shape: [3], layout: keras, initializer: {name: he_normal, layout: torch}}}"),
        S + "tensor 'a': layout 'keras' conflicts with layout 'torch' inside its initializer; "
        "set it in one place",
    ),
    (
        "axis conflict",
        y("{a: {shape: [3, 3], in_axis: 0, initializer: {name: he_normal, in_axis: 1}}}"),
        S
        + "tensor 'a': in_axis 0 conflicts with in_axis 1 inside its initializer; set it in one place",
    ),
    (
        "dtype conflict",
        y("{a: {shape: [3], dtype: f16, initializer: {name: zeros, dtype: float32}}}"),
        S + "tensor 'a': dtype 'f16' conflicts with dtype 'float32' inside its initializer; "
        "set it in one place",
    ),
    (
        "axis out of range",
        y("{attn/qkv: {shape: [512, 8, 64], in_axis: 0, out_axis: [1, 3]}}"),
        S + "tensor 'attn/qkv': out_axis 3 is out of range for a rank-3 shape (allowed: -3 .. 2)",
    ),
    (
        "negative axis out of range",
        y("{a: {shape: [2, 2], in_axis: -3}}"),
        S + "tensor 'a': in_axis -3 is out of range for a rank-2 shape (allowed: -2 .. 1)",
    ),
    (
        "rank-1 axes without in_axis",
        y("{b: {shape: [7], out_axis: 0}}"),
        S + "tensor 'b': a rank-1 tensor with explicit axes needs an explicit in_axis (JAX "
        "refuses its default in_axis=-2 there); give in_axis: 0, or no axes for the (k, k) rule",
    ),
    (
        "batch overlaps",
        y("{a: {shape: [1, 2, 3], batch_axis: -1}}"),
        S + "tensor 'a': batch_axis [2] overlaps in_axis or out_axis",
    ),
    (
        "repeated axis",
        y("{a: {shape: [1, 2, 3], out_axis: [1, -2]}}"),
        S + "tensor 'a': out_axis [1, -2] repeats an axis",
    ),
    (
        "axis on a scalar",
        y("{a: {shape: [], in_axis: 0}}"),
        "~" + S + "tensor 'a': a 0-d tensor has no axes",
    ),
    (
        "axis a string",
        y("{a: {shape: [2, 2], in_axis: '0'}}"),
        S + "tensors.a.in_axis: '0' is not of type 'integer' or 'array'",
    ),
    (
        "axis list of floats",
        y("{a: {shape: [2, 2], out_axis: [1.0]}}"),
        S + "tensors.a.out_axis[0]: 1.0 is not of type 'integer'",
    ),
    # names
    (
        "leading slash",
        y("{/a: {shape: [1]}}"),
        S + "tensor name '/a' must not start or end with '/'",
    ),
    (
        "trailing slash",
        y("{a/: {shape: [1]}}"),
        S + "tensor name 'a/' must not start or end with '/'",
    ),
    ("double slash", y("{a//b: {shape: [1]}}"), S + "tensor name 'a//b' must not contain '//'"),
    ("empty name", y("{'': {shape: [1]}}"), S + "tensor name must not be empty"),
    ("empty list name", y("[{name: '', shape: [1]}]"), S + "tensor name must not be empty"),
    (
        "reserved metadata",
        y("{__metadata__: {shape: [1]}}"),
        S + "tensor name '__metadata__' is reserved (output formats keep their metadata under it); "
        "reserved: __metadata__, __varscale__",
    ),
    (
        "reserved varscale",
        y("[{name: __varscale__, shape: [1]}]"),
        "~" + S + "tensor name '__varscale__' is reserved",
    ),
    (
        "name not a string",
        y("[{name: 3, shape: [1]}]"),
        S + "tensors[0].name: 3 is not of type 'string'",
    ),
    (
        "bad partition of",
        y("{a: {shape: [1], partition: {of: /w, full_shape: [2], offset: [0]}}}"),
        S + "tensor 'a': partition.of '/w' must not start or end with '/'",
    ),
    # partitions
    (
        "partition outside",
        y(
            "{W_part3: {shape: [1000, 512], partition: {of: W, full_shape: [4000, 512], "
            "offset: [3500, 0]}}}"
        ),
        S + "tensor 'W_part3': partition does not fit in full_shape [4000, 512]: on axis 0, "
        "offset 3500 + shape 1000 = 4500 > 4000",
    ),
    (
        "partition negative offset",
        y("{a: {shape: [1], partition: {full_shape: [2], offset: [-1]}}}"),
        S + "tensors.a.partition.offset[0]: -1 is less than the minimum of 0",
    ),
    (
        "partition rank",
        y("{a: {shape: [2, 2], partition: {full_shape: [4, 2], offset: [0]}}}"),
        S + "tensor 'a': partition full_shape [4, 2] and offset [0] must both have the rank of "
        "shape [2, 2] (2)",
    ),
    (
        "partition missing offset",
        y("{a: {shape: [2], partition: {full_shape: [4]}}}"),
        S + "tensors.a.partition: missing required key 'offset'",
    ),
    (
        "partition and split",
        y(
            "{a: {shape: [2], partition: {full_shape: [4], offset: [0]}, "
            "split: {axis: 0, parts: 2}}}"
        ),
        S + "tensor 'a': a tensor cannot have both `partition` and `split`",
    ),
    (
        "partition shape differs",
        "version: 1\ntensors:\n  W: {shape: [4000, 500]}\n"
        "  W_part1: {shape: [1000, 512], partition: {of: W, full_shape: [4000, 512], offset: [1000, 0]}}\n",
        S
        + "tensor 'W_part1': full_shape [4000, 512] differs from shape [4000, 500] of tensor 'W'; "
        "tensors that share the random stream 'W' must agree on it",
    ),
    (
        "partition initializer differs",
        "version: 1\ntensors:\n  W: {shape: [4, 4], initializer: he_normal}\n"
        "  W0: {shape: [2, 4], partition: {of: W, full_shape: [4, 4], offset: [0, 0]}}\n",
        "~" + S + "tensor 'W0': initializer VarianceScaling(scale=1.0, mode='fan_avg'",
    ),
    (
        "partition dtype differs",
        "version: 1\ntensors:\n  W: {shape: [4, 4], dtype: float16}\n"
        "  W0: {shape: [2, 4], partition: {of: W, full_shape: [4, 4], offset: [0, 0]}}\n",
        S + "tensor 'W0': dtype 'float32' differs from dtype 'float16' of tensor 'W'; "
        "tensors that share the random stream 'W' must agree on it",
    ),
    (
        "partition layout differs",
        "version: 1\ntensors:\n  W: {shape: [4, 4], layout: torch}\n"
        "  W0: {shape: [2, 4], partition: {of: W, full_shape: [4, 4], offset: [0, 0]}}\n",
        "~" + S + "tensor 'W0': layout 'keras' differs from layout 'torch' of tensor 'W'",
    ),
    (
        "sibling partitions differ",
        "version: 1\ntensors:\n"
        "  a: {shape: [2, 4], partition: {of: W, full_shape: [4, 4], offset: [0, 0]}}\n"
        "  b: {shape: [2, 4], in_axis: 1, out_axis: 0, partition: {of: W, full_shape: [4, 4], offset: [2, 0]}}\n",
        S + "tensor 'b': in_axis [1] differs from in_axis null of tensor 'a'; "
        "tensors that share the random stream 'W' must agree on it",
    ),
    (
        "partition of a partition",
        "version: 1\ntensors:\n"
        "  a: {shape: [2, 4], partition: {of: W, full_shape: [4, 4], offset: [0, 0]}}\n"
        "  b: {shape: [1, 4], partition: {of: a, full_shape: [2, 4], offset: [1, 0]}}\n",
        S + "tensor 'b': partition of 'a', which is itself a slice of 'W'; point `of` at 'W'",
    ),
    (
        "partition of a split tensor part",
        "version: 1\ntensors:\n"
        "  q: {shape: [4, 4], split: {axis: 0, parts: 2}}\n"
        "  r: {shape: [1, 4], partition: {of: q/part_0, full_shape: [2, 4], offset: [0, 0]}}\n",
        S
        + "tensor 'r': partition of 'q/part_0', which is itself a slice of 'q'; point `of` at 'q'",
    ),
    # split
    (
        "split indivisible",
        y("{a: {shape: [2, 3], split: {axis: 1, parts: 2}}}"),
        S + "tensor 'a': split: axis 1 has size 3, which is not divisible into 2 parts",
    ),
    (
        "split axis range",
        y("{a: {shape: [2, 3], split: {axis: 2, parts: 1}}}"),
        S + "tensor 'a': split axis 2 is out of range for shape [2, 3] (allowed: -2 .. 1)",
    ),
    (
        "split scalar",
        y("{a: {shape: [], split: {axis: 0, parts: 1}}}"),
        S + "tensor 'a': split axis 0 is out of range for shape [] (a 0-d tensor has no axes)",
    ),
    (
        "split zero parts",
        y("{a: {shape: [2], split: {axis: 0, parts: 0}}}"),
        S + "tensors.a.split.parts: 0 is less than the minimum of 1",
    ),
    (
        "split too many parts",
        y("{a: {shape: [0], split: {axis: 0, parts: 1048577}}}"),
        S + "tensors.a.split.parts: 1048577 is greater than the maximum of 1048576",
    ),
    # abuse
    (
        "alias bomb",
        "version: 1\n"
        + "\n".join(
            [
                f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 10) + "]"
                for i in range(8)
            ]
        )
        + "\ntensors: {a: {shape: [1]}}\n",
        S + "the spec holds more than 2,000,000 values (mappings, lists, numbers and strings, "
        "each use of a YAML alias counted again): 8 per tensor at the limit of 250,000 tensors",
    ),
    (
        "deep nesting",
        "version: 1\ntensors: {a: {shape: [1], initializer: " + "[" * 40 + "]" * 40 + "}}\n",
        "~" + S + "tensors.a.initializer",
    ),
    ("very deep nesting", '{"version": 1, "x": ' + "[" * 100000 + "]" * 100000 + "}", "~spec."),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid(text, expected):
    fmt = "json" if text.startswith("{") else "yaml"
    with pytest.raises(SpecError) as info:
        parse_spec(text, path=Path(f"spec.{fmt}"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("spec.")
    if expected.startswith("~"):
        assert expected[1:] in message
    else:
        assert message == expected


def test_dtype_errors_are_unsupported_dtype():
    for case in (
        "int dtype",
        "dtype typo",
        "complex dtype",
        "dtype via defaults",
        "dtype not a string",
    ):
        text = next(c[1] for c in INVALID if c[0] == case)
        with pytest.raises(UnsupportedDtype):
            parse(text)
    with pytest.raises(SpecError) as info:
        parse(y("{a: {shape: [-1]}}"))
    assert not isinstance(info.value, UnsupportedDtype)


def test_spec_error_exit_code():
    with pytest.raises(SpecError) as info:
        parse(y("{a: {shape: [-1]}}"))
    assert info.value.exit_code == 2


# --- property: any mutation either validates or raises SpecError ----------------------------------

BASE = yaml.safe_load(EXAMPLE)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["he_normal", "torch", "keras", "float16", "int8", "fan_out", "W", "*", "yes"]),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.sampled_from(["name", "scale", "of", "axis", "x"]), scalars, max_size=3),
)


def _containers(obj, path=()):
    yield path, obj
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for k, v in items:
        yield from _containers(v, (*path, k))


@st.composite
def mutated_specs(draw):
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        spots = [(p, o) for p, o in _containers(doc) if isinstance(o, dict | list) and o]
        if not spots:
            break
        _, node = draw(st.sampled_from(spots))
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(values)
    return doc


def _parse_or_spec_error(text: str, fmt: str) -> None:
    try:
        spec = parse_spec(text, path=Path(f"m.{fmt}"))
    except SpecError as e:
        assert "\n" not in str(e) and str(e).startswith(f"m.{fmt}")
    else:
        assert isinstance(spec, Spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated_specs(), fmt=st.sampled_from(["json", "yaml"]))
def test_mutations_validate_or_raise_spec_error(doc, fmt):
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc, allow_unicode=False)
    _parse_or_spec_error(text, fmt)


@settings(max_examples=200, deadline=None)
@given(
    pos=st.integers(0, len(EXAMPLE)),
    junk=st.text(max_size=6),
    fmt=st.sampled_from(["json", "yaml"]),
)
def test_text_mutations_validate_or_raise_spec_error(pos, junk, fmt):
    base = EXAMPLE if fmt == "yaml" else json.dumps(BASE)
    _parse_or_spec_error(base[:pos] + junk + base[pos:], fmt)
