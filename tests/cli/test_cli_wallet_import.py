"""`bazaar wallet import` without a terminal: nothing is prompted, the passphrases come from their
variables, and a refusal names the variable to set (or the missing file) before anything is asked
or written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from agentbazaar.testing.cli import CliHome, make_home

KEY = "0x" + "11" * 32
FILE_PASSPHRASE = "the file's own passphrase"


@pytest.fixture
def home(tmp_path: Path) -> CliHome:
    return make_home(tmp_path / "home")


@pytest.fixture
def keystore_file(tmp_path: Path) -> Path:
    path = tmp_path / "exported.json"
    encrypted = Account.encrypt(bytes.fromhex(KEY[2:]), FILE_PASSPHRASE, kdf="pbkdf2", iterations=2)
    path.write_text(json.dumps(encrypted))
    return path


def _one_line_refusal(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1
    stderr = proc.stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr
    assert proc.stdout == ""


def _imported(home: CliHome) -> list[str]:
    keystores = home.home / "keystores"
    return sorted(p.name for p in keystores.glob("carol*")) if keystores.exists() else []


def test_a_missing_keystore_file_is_refused_before_any_passphrase_is_asked(home: CliHome) -> None:
    proc = home.run("wallet", "import", "carol", "--keystore", "/nowhere/exported.json", stdin="")
    _one_line_refusal(proc, "no keystore file at /nowhere/exported.json")
    assert _imported(home) == []


def test_a_keystore_file_without_its_passphrase_variable_names_it(
    home: CliHome, keystore_file: Path
) -> None:
    proc = home.run("wallet", "import", "carol", "--keystore", str(keystore_file), stdin="")
    _one_line_refusal(proc, "no terminal", "BAZAAR_IMPORT_PASSPHRASE")
    assert _imported(home) == []


def test_a_piped_key_without_the_wallet_passphrase_names_its_variable(home: CliHome) -> None:
    proc = home.run("wallet", "import", "carol", stdin=KEY + "\n", BAZAAR_PASSPHRASE="")
    _one_line_refusal(proc, "no terminal", "BAZAAR_PASSPHRASE")
    assert _imported(home) == []


def test_a_keystore_file_imports_from_the_variables_alone(
    home: CliHome, keystore_file: Path
) -> None:
    proc = home.run(
        "wallet",
        "import",
        "carol",
        "--keystore",
        str(keystore_file),
        "--json",
        stdin="",
        BAZAAR_IMPORT_PASSPHRASE=FILE_PASSPHRASE,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["address"] == Account.from_key(KEY).address
    assert _imported(home) == ["carol.json"]
