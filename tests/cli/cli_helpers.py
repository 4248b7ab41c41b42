"""Helpers of the CLI tests: a data directory on a local anvil, the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agentbazaar.wallet import Ledger

BAZAAR = str(Path(sys.executable).with_name("bazaar"))


@dataclass
class Env:
    home: Path
    env: dict[str, str]
    url: str

    def run(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAZAAR, *args],
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, **env: str) -> object:
        proc = self.run(*args, **env)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if "--json" in args else proc.stdout

    def ledger_rows(self) -> list[tuple[int, str]]:
        if not (self.home / "ledger.sqlite").exists():
            return []
        return [(r.id, r.status) for r in Ledger(self.home / "ledger.sqlite").records()]


def make_home(path: Path, port: int, extra: str = "") -> dict[str, str]:
    path.mkdir(parents=True)
    (path / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {port}\n{extra}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(path), BAZAAR_PASSPHRASE="cli-pass", BAZAAR_SCRYPT_N="1024")
    env["COLUMNS"] = "200"
    return env
