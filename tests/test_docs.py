"""Docs stay honest: every command has help with an example, the README usage is current,
and output that is not a terminal carries no colour codes."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from varscale_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(cli.commands)


def test_readme_usage_block_is_current() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80, prog_name="varscale")
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Usage\n\n```text\n(.*?)\n```", readme, re.S)
    assert block, "README.md needs a '## Usage' section with a text block"
    assert block.group(1) == result.output.rstrip(), "regenerate it with: COLUMNS=80 varscale --help"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name: str) -> None:
    command = cli.commands[name]
    assert command.help and len(command.help.strip()) > 20
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"varscale {name}" in result.output
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"varscale {name} {param.opts[0]} has no help text"


def test_readme_names_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


@pytest.mark.parametrize("args", [["presets"], ["generate", "configs/mlp.yaml", "--dry-run"]])
def test_piped_output_has_no_escape_codes(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NO_COLOR", "1")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    assert "\x1b[" not in result.output
