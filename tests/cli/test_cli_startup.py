"""`bazaar` starts without its heavy libraries: the command modules import the chain, web3,
x402, the HTTP servers and the models inside the commands that use them, so `bazaar --help`
(and the help of every group and command) pays for none of them; and a command on the chain,
which opens ``Suite``, does not load the layers' packages it does not use.

Checked in a fresh interpreter, by what is in ``sys.modules``: this test process has imported
everything already."""

from __future__ import annotations

import json
import subprocess
import sys

# a library here at start-up costs from 0.1 s (httpx) to seconds (web3, torch)
HEAVY = (
    "web3",
    "eth_account",
    "torch",
    "sentence_transformers",
    "fastapi",
    "uvicorn",
    "x402",
    "httpx",
    "numpy",
    "agentbazaar.chain",
    "agentbazaar.intents",
)
# what reading a deployed suite needs none of
LAYERS = ("agentbazaar.payments", "agentbazaar.channels", "agentbazaar.data", "fastapi", "x402")

HELP_OF_EVERY_COMMAND = """
from typer.main import get_command
from typer.testing import CliRunner
import agentbazaar.cli as cli

group = get_command(cli.app)  # every command's parameters, resolved from its signature
paths = [[]] + [[name] for name in group.commands]
codes = {" ".join(p): CliRunner().invoke(cli.app, [*p, "--help"]).exit_code for p in paths}
codes["wallet send"] = CliRunner().invoke(cli.app, ["wallet", "send", "--help"]).exit_code
"""


def _run(code: str, watched: tuple[str, ...]) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; its ``codes`` (if any) and which of ``watched``
    it loaded."""
    report = (
        "\nimport json, sys\n"
        "print(json.dumps({'codes': globals().get('codes'),"
        " 'loaded': sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code + report, json.dumps(watched)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _run("import agentbazaar.cli", HEAVY)["loaded"] == []


def test_the_help_of_every_command_and_group_loads_no_heavy_library() -> None:
    found = _run(HELP_OF_EVERY_COMMAND, HEAVY)
    codes = found["codes"]
    assert isinstance(codes, dict)
    assert {"", "wallet", "wallet send", "job", "pay", "do"} <= set(codes)
    assert {path: code for path, code in codes.items() if code != 0} == {}
    assert found["loaded"] == []


def test_reading_a_deployed_suite_loads_no_layer_package() -> None:
    """Every command on the chain opens ``Suite``: the layers' packages (and fastapi and x402
    under them) load only when the list of contracts is read, for a deployment."""
    assert _run("import agentbazaar.suite", LAYERS)["loaded"] == []
    loaded = _run("from agentbazaar.deployment import SUITE", LAYERS)["loaded"]
    assert isinstance(loaded, list) and set(LAYERS[:3]) <= set(loaded)  # the list is all there
