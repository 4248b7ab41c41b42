"""A CLI home for tests: a data directory with its ``bazaar.toml``, the environment the
``bazaar`` command runs in, and helpers to run it.

    with cli_home(tmp_path / "home") as cli:       # `bazaar init`: local anvil, suite, wallets
        cli.ok("wallet", "send", "alice", "bob", "1 USDC")
        balances = cli.json("wallet", "balance", "alice")
    # the home's anvil is stopped (by PID) here, also when the block raised
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.config import load_config
from agentbazaar.loopback import free_port

BAZAAR = str(Path(sys.executable).with_name("bazaar"))
TEST_SCRYPT_N = "1024"  # throw-away keystores unlock in milliseconds


@dataclass
class CliHome:
    """A ``BAZAAR_HOME`` and the environment that points ``bazaar`` at it."""

    home: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, **env: str) -> Any:
        """``bazaar ARGS`` in a subprocess (extra ``env`` on top of the home's); returns the
        ``CompletedProcess`` (text)."""
        return subprocess.run(
            [BAZAAR, *args],
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ok(self, *args: str, **env: str) -> Any:
        """Run, require exit 0, and return the parsed JSON (with ``--json``) or stdout."""
        proc = self.run(*args, **env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if "--json" in args else proc.stdout

    def json(self, *args: str) -> Any:
        return self.ok(*args, "--json")

    @property
    def anvil(self) -> AnvilNode:
        """The home's local chain (running or not)."""
        return AnvilNode(load_config(self.home, env={}))


def make_home(
    home: Path, *, passphrase: str = "test-passphrase", port: int | None = None, toml: str = ""
) -> CliHome:
    """Create ``home`` with a local-chain ``bazaar.toml`` (a free anvil port unless given; extra
    ``toml`` appended) and the environment for it: no other ``BAZAAR_*`` variable leaks in."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {port}\n{toml}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE=passphrase, BAZAAR_SCRYPT_N=TEST_SCRYPT_N)
    env["COLUMNS"] = "200"
    return CliHome(home, env)


@contextmanager
def cli_home(
    home: Path, *, init: bool = True, passphrase: str = "test-passphrase", toml: str = ""
) -> Iterator[CliHome]:
    """A CLI home; with ``init``, after ``bazaar init`` (local anvil, suite, funded wallets).
    Whatever anvil the home started is stopped on exit."""
    cli = make_home(home, passphrase=passphrase, toml=toml)
    try:
        if init:
            proc = cli.run("init", "--json")
            assert proc.returncode == 0, proc.stderr
        yield cli
    finally:
        cli.anvil.stop()
