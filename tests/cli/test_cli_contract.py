"""`bazaar contract` through the real console script: on the embedded chain (one process: the
stablecoin deployed and the wallet funded there), and on anvil for `verify` and `explain`, which
run in later processes against the records of the data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import default_cache_dir
from agentbazaar.config import load_config

BAZAAR = str(Path(sys.executable).with_name("bazaar"))
VEST = "vest 1,000 USDC to bob over 12 months with a 3 month cliff"


def _env(home: Path, backend: str, port: int | None = None) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    extra = f"anvil_port = {port}\n" if port else ""
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "{backend}"\n{extra}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="contract-pass", BAZAAR_SCRYPT_N="1024",
               BAZAAR_ARTIFACTS=str(default_cache_dir()), COLUMNS="200")  # fmt: skip
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BAZAAR, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = _env(tmp_path_factory.mktemp("contract-embedded") / "home", "embedded")
    for name in ("alice", "bob", "carol", "dave"):
        assert _run(env, "wallet", "new", name).returncode == 0
    # each embedded-chain process deploys its own stablecoin, unknown when alice's default
    # policy was written: let alice spend tokens her policy does not list
    assert _run(env, "wallet", "policy", "alice", "--unlisted-tokens", "allow").returncode == 0
    return env


def test_new_deploys_and_verifies_on_the_embedded_chain(embedded: dict[str, str]) -> None:
    proc = _run(embedded, "contract", "new", VEST, "--wallet", "alice", "--yes", "--json", "--no-model",
                "--examples", "3")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"template", "params", "source_id", "checks", "simulation", "address", "verified",
            "tx"} <= set(doc)  # fmt: skip
    assert doc["template"] == "vesting" and doc["params"]["amount"] == "1000000000"
    assert all(c["result"] == "pass" for c in doc["checks"])
    assert {c["name"] for c in doc["checks"]} >= {"compile", "static", "property:conservation"}
    assert any("250 USDC" in s["result"] for s in doc["simulation"])
    assert doc["address"] and doc["tx"] and doc["verified"] is True
    record = Path(embedded["BAZAAR_HOME"]) / "contracts" / "sources" / f"{doc['source_id']}.json"
    assert record.is_file()


def test_dry_run_signs_nothing(embedded: dict[str, str]) -> None:
    proc = _run(embedded, "contract", "new", "hold 50 USDC in escrow for carol until dave "
                "approves or 7 days pass", "-w", "alice", "--json", "--examples", "2", "--no-model")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["template"] == "escrow" and doc["address"] is None and doc["verified"] is None
    assert doc["tx"] is None and all(s["ok"] for s in doc["simulation"])


@pytest.mark.parametrize(
    ("sentence", "needle"),
    [
        ("lend 100 USDC to bob at 5% interest", "no contract template covers"),
        ("vest 1,000 USDC to zed over 12 months", "'zed' is no wallet here"),
        ("vest 1,000 USDC to bob over 3 months with a 12 month cliff", "longer than the vesting"),
        ("vest 1,000,000 USDC to bob over 12 months", "nothing was signed"),
    ],
)
def test_refusals_are_one_line(embedded: dict[str, str], sentence: str, needle: str) -> None:
    proc = _run(embedded, "contract", "new", sentence, "-w", "alice", "--yes", "--no-model")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: ") and needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_templates_lists_schemas(embedded: dict[str, str]) -> None:
    proc = _run(embedded, "contract", "templates", "--json")
    assert proc.returncode == 0, proc.stderr
    docs = {t["name"]: t for t in json.loads(proc.stdout)}
    assert set(docs) == {"vesting", "splitter", "escrow", "stream", "vault", "token", "timelock"}
    assert docs["vesting"]["schema"]["additionalProperties"] is False
    assert all(t["invariants"] for t in docs.values())


@pytest.fixture(scope="module")
def anvil_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("contract-anvil") / "home"
    env = _env(home, "local", free_port())
    node = AnvilNode(load_config(home, env={}))
    try:
        assert _run(env, "init", "--wallets", "alice,bob,carol,dave").returncode == 0
        yield env
    finally:
        node.stop()


@pytest.mark.anvil
@pytest.mark.slow  # `bazaar init` deploys the whole suite first
def test_verify_and_explain_in_later_processes(anvil_home: dict[str, str]) -> None:
    proc = _run(anvil_home, "contract", "new", "stream 2 USDC per day to bob for 30 days",
                "-w", "alice", "--yes", "--json", "--examples", "2", "--no-model")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    address, recipient = (
        json.loads(proc.stdout)["address"],
        json.loads(proc.stdout)["params"]["recipient"],
    )
    verified = _run(anvil_home, "contract", "verify", address, "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["status"] == "exact_match"
    explained = _run(anvil_home, "contract", "explain", address, "--no-model")
    assert explained.returncode == 0, explained.stderr
    # without a wallet (and its passphrase) the sealed address book is not read: addresses
    assert "Streams 60 USDC to " in explained.stdout
    assert recipient.lower() in explained.stdout.lower()
    unknown = _run(anvil_home, "contract", "verify", "0x" + "12" * 20)
    assert unknown.returncode == 1 and "no record of a contract" in unknown.stderr
