"""`bazaar --version` prints the installed distribution's version (package metadata)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

BAZAAR = str(Path(sys.executable).with_name("bazaar"))


def test_version_comes_from_package_metadata() -> None:
    proc = subprocess.run([BAZAAR, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"agentbazaar {version('agentbazaar')}"
    assert proc.stderr == ""
