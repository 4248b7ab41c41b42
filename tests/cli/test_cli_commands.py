"""Every command module is registered: a module with ``register(app)`` that is missing from
``COMMAND_MODULES`` is a command that silently vanishes from ``bazaar``."""

from __future__ import annotations

import importlib
import pkgutil

from typer.testing import CliRunner

import agentbazaar.cli as cli
from agentbazaar.errors import InputError


def _modules_with_register() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"agentbazaar.cli.{info.name}")
        if callable(getattr(module, "register", None)):
            found.add(module.__name__)
    return found


def test_every_command_module_is_listed() -> None:
    listed = {module.__name__ for module in cli.COMMAND_MODULES}
    assert _modules_with_register() - listed == set()


def test_help_names_the_commands_of_every_layer() -> None:
    result = CliRunner().invoke(cli.app, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for command in ("contract", "data", "job", "stake", "mcp", "dashboard", "pay", "wallet"):
        assert f" {command} " in result.output, command


def test_an_unknown_log_format_is_refused_before_anything_runs() -> None:
    result = CliRunner().invoke(cli.app, ["--log-format", "xml", "wallet", "list"])
    assert isinstance(result.exception, InputError)
    assert "text or json" in str(result.exception)
