"""The data directory the tools tests share: made by `bazaar init` on a real anvil."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BAZAAR = str(Path(sys.executable).with_name("bazaar"))


@dataclass
class Home:
    path: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAZAAR, *args], env=self.env, capture_output=True, text=True, timeout=300
        )

    def ok(self, *args: str) -> object:
        proc = self.run(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if "--json" in args else proc.stdout
