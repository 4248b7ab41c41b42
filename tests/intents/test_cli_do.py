"""`bazaar intent`, `bazaar quote` and `bazaar do` as a user runs them: the real console script,
a real anvil, `bazaar init` (suite + seeded pools + demo wallets) in a temp data directory."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import default_cache_dir
from agentbazaar.config import load_config
from agentbazaar.intents import STABLE_KEYS
from agentbazaar.wallet import Ledger

pytestmark = pytest.mark.anvil
BAZAAR = str(Path(sys.executable).with_name("bazaar"))


@dataclass
class Cli:
    home: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAZAAR, *args], env=self.env, capture_output=True, text=True, timeout=180
        )

    def json(self, *args: str) -> Any:
        proc = self.run(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def ledger_size(self) -> int:
        path = self.home / "ledger.sqlite"
        return Ledger(path).count() if path.exists() else 0


def _env(home: Path, port: int) -> dict[str, str]:
    home.mkdir(parents=True)
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {port}\n')
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (home / "artifacts").symlink_to(cache, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="do-pass", BAZAAR_SCRYPT_N="1024")
    env["COLUMNS"] = "200"
    return env


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("do") / "home"
    env = _env(home, free_port())
    node = AnvilNode(load_config(home, env={}))
    try:
        proc = subprocess.run(
            [BAZAAR, "init", "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        yield Cli(home, env)
    finally:
        node.stop()


def test_intent_prints_exactly_the_stable_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env["BAZAAR_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [BAZAAR, "intent", "buy $20 of WETH with at most 1% slippage", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {*STABLE_KEYS, "parser"}
    assert doc == {
        "action": "swap",
        "amount": "20",
        "amount_side": "in",
        "fraction": None,
        "token_in": "USDC",
        "token_out": "WETH",
        "to": None,
        "max_slippage_bps": 100,
        "max_price": None,
        "deadline_seconds": None,
        "parser": "rules",
    }
    asked = subprocess.run(
        [BAZAAR, "intent", "swap 100 USDC", "--json", "--language-model", "off"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert asked.returncode == 3 and "Traceback" not in asked.stderr
    question = json.loads(asked.stdout)
    assert question["missing"] == ["token_out"] and question["parser"] == "rules"
    assert question["partial"] == {
        "action": "swap",
        "amount": "100",
        "amount_side": "in",
        "token_in": "USDC",
    }
    assert "What do you want to get for 100 USDC?" in question["question"]


def test_quote_dry_run_and_swap_through_the_cli(cli: Cli) -> None:
    quote = cli.json("quote", "100", "USDC", "WETH")
    assert int(quote["amount_out"]) > 0 and quote["routes"]
    size = cli.ledger_size()
    dry = cli.json("do", "swap 100 USDC for WETH", "--wallet", "alice")
    assert dry["executed"] is False and dry["result"] is None
    assert dry["plan"]["amount_in"] == "100000000"
    assert cli.ledger_size() == size  # planning signs and records nothing
    done = cli.json("do", "swap 100 USDC for WETH", "--wallet", "alice", "--yes")
    assert done["executed"] is True
    result = done["result"]
    assert result["at_least_min_out"] is True
    assert int(result["received"]) >= int(done["plan"]["min_out"])
    balances = cli.json("do", "what's my WETH balance", "--wallet", "alice")["result"]["balances"]
    assert balances == [
        {
            "symbol": "WETH",
            "address": balances[0]["address"],
            "decimals": 18,
            "units": result["received"],
            "amount": balances[0]["amount"],
        }
    ]


def test_send_and_refusals_through_the_cli(cli: Cli) -> None:
    sent = cli.json("do", "send 5 USDC to bob", "--wallet", "alice", "--yes")
    assert sent["result"]["status"] == "settled" and sent["result"]["amount"] == "5000000"
    size = cli.ledger_size()
    for sentence, message in [
        ("swap 100000 USDC for WETH", "per-payment maximum"),  # the default policy first
        ("hire an agent to translate text for 1 USDC", "not executed from a sentence"),
    ]:
        proc = cli.run("do", sentence, "--wallet", "alice", "--yes")
        assert proc.returncode == 1, (sentence, proc.stdout)
        assert message in proc.stderr and "Traceback" not in proc.stderr
    assert cli.ledger_size() == size


def _on_a_terminal(cli: Cli, args: list[str], reply: str) -> tuple[int, str]:
    """Run ``bazaar`` with a terminal as stdin (so that it asks) and ``reply`` typed in."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [BAZAAR, *args],
            env=cli.env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, reply.encode() + b"\n")
        out, err = proc.communicate(timeout=180)
        return proc.returncode, out + err
    finally:
        os.close(master)
        os.close(slave)


def test_do_asks_for_what_is_missing_and_carries_on(cli: Cli) -> None:
    size = cli.ledger_size()
    asked = cli.run("do", "send 5 to bob", "--wallet", "alice", "--yes", "--json")
    assert asked.returncode == 3, asked.stderr
    question = json.loads(asked.stdout)
    assert question["missing"] == ["token_in"] and question["parser"] == "rules"
    assert question["partial"] == {"action": "send", "amount": "5", "to": "bob"}
    assert cli.ledger_size() == size  # a question plans and signs nothing
    code, shown = _on_a_terminal(cli, ["do", "send 5 to bob", "--wallet", "alice", "--yes"], "USDC")
    assert code == 0, shown
    assert "5 of which token to bob?" in shown and "settled" in shown
    assert cli.ledger_size() == size + 1


def test_standing_orders_through_the_cli(cli: Cli) -> None:
    added = cli.json(
        "orders", "add", "buy 0.001 WETH with USDC every day for a week", "--wallet", "bob"
    )
    assert added["trigger"] == {"kind": "every", "interval": 86_400, "count": 7}
    assert (added["status"], added["wallet"]) == ("active", "bob")
    asked = cli.run("orders", "add", "buy 0.1 WETH every day for a week", "--json")
    assert asked.returncode == 3, asked.stderr
    assert json.loads(asked.stdout)["missing"] == ["token_in"]
    refused = cli.run("orders", "add", "when WETH drops below 0 USDC buy 1 WETH with USDC")
    assert refused.returncode == 1 and "never be reached" in refused.stderr
    nobody = cli.run("orders", "add", "buy 1 WETH with USDC every day for a week", "-w", "zed")
    assert nobody.returncode == 1 and "zed" in nobody.stderr and "Traceback" not in nobody.stderr

    size = cli.ledger_size()
    ran = cli.json("orders", "run", "--once", "--wallet", "bob")
    assert [(f["slot"], f["status"]) for f in ran] == [(0, "filled")]
    assert ran[0]["idempotency_key"] == f"order-{added['id']}-0"
    assert cli.json("orders", "run", "--once", "--wallet", "bob") == []  # not due again today
    assert cli.ledger_size() > size

    listed = cli.json("orders", "list", "--wallet", "bob")
    assert [o["id"] for o in listed] == [added["id"]]
    assert [f["status"] for f in listed[0]["fills"]] == ["filled"]
    assert cli.json("orders", "cancel", str(added["id"]))["status"] == "cancelled"
    again = cli.run("orders", "cancel", str(added["id"]))
    assert again.returncode == 1 and "cancelled" in again.stderr
    shown = cli.run("orders", "list")
    assert shown.returncode == 0 and "every 1d, 7 times" in shown.stdout
