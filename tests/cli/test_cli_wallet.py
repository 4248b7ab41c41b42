"""The real `bazaar` console script against a real anvil, in a temp data directory.

One node and one data directory for the whole module (`bazaar init` once); the bad-input cases run
side by side. Compiled contracts come from the shared compile cache (keyed by source hash).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_helpers import BAZAAR, Env, make_home

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.wallet import KeyStore, open_wallet

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("cli") / "home"
    env = make_home(home, free_port())
    node = AnvilNode(load_config(home, env={}))
    try:
        proc = subprocess.run(
            [BAZAAR, "init", "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        yield Env(home, env, node.running_url())
    finally:
        node.stop()


def test_init_list_new_import_balance(cli: Env) -> None:
    listed = cli.ok("wallet", "list", "--json")
    assert [w["name"] for w in listed] == ["alice", "bob"]  # type: ignore[attr-defined]
    carol = cli.ok("wallet", "new", "carol", "--json")
    dave_key = dev_account(7).key.hex()
    proc = cli.run("wallet", "import", "dave", "--json", stdin=dave_key + "\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["address"] == dev_account(7).address
    assert dave_key.removeprefix("0x") not in proc.stdout + proc.stderr
    bal = cli.ok("wallet", "balance", "alice", "--json")
    units = {b["symbol"]: b["units"] for b in bal["balances"]}  # type: ignore[index]
    assert units["USDC"] == "1000000000" and units["ETH"] == str(10 * 10**18)
    empty = cli.ok("wallet", "balance", carol["address"], "--json")  # type: ignore[index]
    assert all(b["units"] == "0" for b in empty["balances"])  # type: ignore[index]
    assert "alice" in str(cli.ok("wallet", "list"))


def test_send_policy_ledger_reconcile(cli: Env) -> None:
    pol = cli.ok(
        "wallet",
        "policy",
        "alice",
        "--max-per-payment",
        "5 USDC",
        "--daily",
        "8 USDC",
        "--approve-above",
        "2 USDC",
        "--json",
    )
    assert pol["tokens"]["USDC"]["daily"] == 8_000_000  # type: ignore[index]
    first = cli.ok(
        "wallet", "send", "alice", "bob", "1.5 USDC", "--idempotency-key", "a1", "--json"
    )
    again = cli.ok(
        "wallet", "send", "alice", "bob", "1.5", "USDC", "--idempotency-key", "a1", "--json"
    )
    assert first["status"] == "settled" and not first["replayed"]  # type: ignore[index]
    assert again["replayed"] and again["tx_hash"] == first["tx_hash"]  # type: ignore[index]
    refused = cli.run("wallet", "send", "alice", "bob", "3 USDC")
    assert refused.returncode == 1 and "--approve" in refused.stderr
    cli.ok("wallet", "send", "alice", "bob", "3 USDC", "--approve", "--json")
    over = cli.run("wallet", "send", "alice", "bob", "4 USDC", "--approve")
    assert over.returncode == 1 and "rolling budget" in over.stderr
    bob = cli.ok("wallet", "balance", "bob", "--json")
    units = {b["symbol"]: int(b["units"]) for b in bob["balances"]}  # type: ignore[index]
    assert units["USDC"] == 1_004_500_000
    eth = cli.ok("wallet", "send", "bob", "alice", "0.25 ETH", "--json")
    assert eth["amount"] == str(25 * 10**16)  # type: ignore[index]
    rows = cli.ok("wallet", "ledger", "--json")
    assert [(r["wallet"], r["amount"], r["status"]) for r in rows] == [  # type: ignore[attr-defined]
        ("alice", "1500000", "settled"),
        ("alice", "3000000", "settled"),
        ("bob", str(25 * 10**16), "settled"),
    ]
    rec = cli.ok("wallet", "ledger", "alice", "--reconcile", "--json")
    assert rec["differences"] == 0  # type: ignore[index]
    assert [f["outcome"] for f in rec["findings"]] == ["ok", "ok"]  # type: ignore[index]


def _other_home(cli: Env, name: str, extra: str = "") -> dict[str, str]:
    home = cli.home.parent / name
    if home.exists():
        shutil.rmtree(home)
    env = make_home(home, free_port(), extra)
    shutil.copytree(cli.home / "keystores", home / "keystores")
    return env


def test_bad_input_one_line_nothing_paid(cli: Env) -> None:
    cli.ok("wallet", "policy", "bob", "--max-per-payment", "1 USDC", "--json")
    bob = dev_account(0).address  # any valid address
    wrong_sum = bob[:2] + (bob[2:3].swapcase() if bob[2].isalpha() else bob[2]) + bob[3:]
    bad_checksum = wrong_sum if wrong_sum != bob else "0x" + bob[2:].replace("a", "A", 1)
    down = _other_home(cli, "down")
    wrong_id = _other_home(cli, "wrong-id", "chain_id = 1\n")
    cases: list[tuple[list[str], dict[str, str]]] = [
        (["wallet", "send", "nobody", "alice", "1"], {}),
        (["wallet", "send", "bob", "0x1234", "1 USDC"], {}),
        (["wallet", "send", "bob", bad_checksum, "1 USDC"], {}),
        (["wallet", "send", "bob", "alice", "-5", "USDC"], {}),
        (["wallet", "send", "bob", "alice", "0.0000001 USDC"], {}),
        (["wallet", "send", "bob", "alice", "abc", "USDC"], {}),
        (["wallet", "send", "bob", "alice", "1", "FOO"], {}),
        (["wallet", "send", "bob", "alice", "2 USDC", "--approve"], {}),  # over the maximum
        (["wallet", "send", "bob", "alice", "1 USDC"], {"BAZAAR_PASSPHRASE": "wrong"}),
        (["wallet", "send", "bob", "alice", "1 USDC"], down),
        (["--rpc", cli.url, "wallet", "send", "bob", "alice", "1 USDC"], wrong_id),
        (["wallet", "new", "Bad Name"], {}),
        (["wallet", "new", "alice"], {}),  # exists
        (["wallet", "balance", "nobody"], {}),
        (["wallet", "import", "carol"], {"BAZAAR_PRIVATE_KEY": "0xnot-a-key"}),
        (["wallet", "send", "bob", "alice", "1"], {}),  # an amount without its token
    ]
    before = cli.ledger_rows()

    def run(case: tuple[list[str], dict[str, str]]) -> subprocess.CompletedProcess[str]:
        args, env = case
        return cli.run(*args, **env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, cases))
    for (args, _), proc in zip(cases, results, strict=True):
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode != 0, args
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == "", args
    messages = [p.stderr for p in results]
    assert "no wallet named 'nobody'" in messages[0]
    assert "bad checksum" in messages[2] and "negative" in messages[3]
    assert "decimal places" in messages[4] and "unknown token" in messages[6]
    assert "per-payment maximum" in messages[7] and "wrong passphrase" in messages[8]
    assert "not running" in messages[9] and "expected 1" in messages[10]
    assert "needs its token" in messages[15] and "'1 ETH'" in messages[15]
    assert cli.ledger_rows() == before  # nothing signed, nothing recorded


def test_reconcile_rebroadcasts_what_a_crash_left_signed(cli: Env) -> None:
    cfg = load_config(cli.home, env={})
    wallet = open_wallet(cfg, "bob", "cli-pass")
    chain = Chain.from_config(cfg)
    alice = KeyStore(cfg.keystore_dir).address_of("alice", "cli-pass")
    tx = {"to": alice, "value": 10**15, "gas": 21_000, "chainId": chain.chain_id}
    tx.update(chain.fee_params(), nonce=chain.w3.eth.get_transaction_count(wallet.address))
    with wallet.spend(
        kind="transfer",
        token=None,
        amount=10**15,
        counterparty=alice,
        idempotency_key="crashed",
        chain_id=chain.chain_id,
    ) as spend:
        spend.sign_transaction(tx)  # the process "dies" here: signed, never broadcast
    before = chain.native_balance(alice)
    found = cli.ok("wallet", "ledger", "bob", "--reconcile", "--json")
    outcomes = {f["idempotency_key"]: f["outcome"] for f in found["findings"]}  # type: ignore[index]
    assert outcomes["crashed"] == "unsent" and chain.native_balance(alice) == before
    fixed = cli.ok("wallet", "ledger", "bob", "--reconcile", "--rebroadcast", "--json")
    outcomes = {f["idempotency_key"]: f["outcome"] for f in fixed["findings"]}  # type: ignore[index]
    assert outcomes["crashed"] == "rebroadcast"
    assert chain.native_balance(alice) == before + 10**15
    again = cli.ok("wallet", "ledger", "bob", "--reconcile", "--rebroadcast", "--json")
    assert {f["outcome"] for f in again["findings"]} == {"ok"}  # type: ignore[index]
    assert chain.native_balance(alice) == before + 10**15
