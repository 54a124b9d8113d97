"""echo.show / elide: every echoed value is one bounded line that keeps both ends."""

from __future__ import annotations

from varscale_cli.echo import SHOW_LIMIT, closest_match, elide, show, show_py


def test_short_values_are_shown_as_written() -> None:
    assert show("he_normal") == "'he_normal'"
    assert show(True) == "true" and show(None) == "null" and show_py(True) == "True"
    assert show(1.5) == "1.5" and show([1, 2]) == "[1, 2]"
    assert elide("factor") == "factor"


def test_long_strings_keep_both_ends_and_say_how_long() -> None:
    name = "model.layers.0." + "x" * 100_000 + ".self_attn.q_proj.weight"
    text = show(name)
    assert text.startswith("'model.layers.0.") and text.endswith(".weight' (100,039 characters)")
    assert len(text) < SHOW_LIMIT + 40
    assert elide(name).endswith(".weight (100,039 characters)")
    # repr escapes survive the cut: a newline never reaches the message raw
    assert "\n" not in show("\n" * 1000) and "\\n" in show("\n" * 1000)


def test_huge_numbers_and_containers_are_bounded() -> None:
    assert show(10**100_000) == "an integer of 332,193 bits"  # repr() itself would refuse
    assert show_py(10**400).startswith("1000") and "characters)" in show_py(10**400)
    assert len(show(list(range(100_000)))) < SHOW_LIMIT + 40


def test_closest_match_skips_words_that_cannot_match() -> None:
    assert closest_match("he_normall", ["he_normal", "he_uniform"]) == "he_normal"
    assert closest_match("x" * 2_000_000, ["he_normal"]) is None
    assert closest_match("anything", []) is None
