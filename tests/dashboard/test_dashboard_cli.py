"""`bazaar dashboard` as a new user meets it: listed in the help, and a clear one-line error
(never a traceback) where it cannot watch anything."""

from __future__ import annotations

from pathlib import Path

from agentbazaar.testing import make_home


def test_dashboard_is_a_command_and_refuses_the_embedded_chain(tmp_path: Path) -> None:
    cli = make_home(tmp_path / "home")
    usage = cli.ok("--help")
    assert "dashboard" in usage and "mcp" in usage
    proc = cli.run("--chain", "embedded", "dashboard", "--port", "1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the embedded chain lives in one process")
    assert "Traceback" not in proc.stderr and "bazaar chain up" in proc.stderr
    down = cli.run("dashboard", "--port", "1")  # the home's local chain was never started
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert down.stderr.startswith("error: the local chain is not running")
