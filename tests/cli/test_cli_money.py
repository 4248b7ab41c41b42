"""Money defaults and hostile files through the real `bazaar` console script on a real anvil:
an idempotent `init`, one default wallet for every command, the default spending policy, amounts
that need their token, a tampered keystore and address book, a wallet without ETH for gas.
Balances are read on chain; each refusal is one `error:` line and moves nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cli_helpers import BAZAAR, Env, make_home
from eth_account import Account

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.suite import Suite
from agentbazaar.wallet import KeyStore, Ledger, balances, write_default_policy

pytestmark = pytest.mark.anvil
PASS = "cli-pass"


@pytest.fixture(scope="module")
def money(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, dict[str, Any]]]:
    home = tmp_path_factory.mktemp("money") / "home"
    env = make_home(home, free_port())
    node = AnvilNode(load_config(home, env={}))
    try:
        proc = subprocess.run(
            [BAZAAR, "init", "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        yield Env(home, env, node.running_url()), json.loads(proc.stdout)
    finally:
        node.stop()


def _units(cli: Env, address: str) -> dict[str, int]:
    cfg = load_config(cli.home, env={})
    chain = Chain.from_config(cfg)
    return {b.token.symbol: b.units for b in balances(chain, address, Suite(chain, cfg).tokens)}


def _supply(cli: Env) -> int:
    cfg = load_config(cli.home, env={})
    suite = Suite(Chain.from_config(cfg), cfg)
    return int(suite.token_contract("USDC").functions.totalSupply().call())


def _side_by_side(cli: Env, cases: list[tuple[list[str], dict[str, str]]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda c: cli.run(*c[0], **c[1]), cases))


def _refused(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, (proc.args, proc.stdout, proc.stderr)
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr
    return lines[-1]


def test_init_again_changes_nothing_and_mints_nothing(money: tuple[Env, dict[str, Any]]) -> None:
    cli, first = money
    wallets = first["wallets"]
    before = ({n: _units(cli, a) for n, a in wallets.items()}, _supply(cli))
    again = cli.run("init")
    assert again.returncode == 0, again.stderr
    assert ({n: _units(cli, a) for n, a in wallets.items()}, _supply(cli)) == before
    assert "already initialised: nothing changed" in " ".join(again.stdout.split())
    # not a terminal: each step is a plain line, in order, before the report
    steps = [line for line in again.stdout.splitlines() if line.endswith("...")]
    assert steps == [
        "deploying the suite...",
        "opening the demo wallets...",
        "funding the demo wallets...",
    ]
    assert first["changed"] and first["default_wallet"] == "alice"
    assert 'default_wallet = "alice"' in (cli.home / "bazaar.toml").read_text()


def test_every_command_names_its_wallet_the_same_way(money: tuple[Env, dict[str, Any]]) -> None:
    """--wallet/-w, else BAZAAR_WALLET, else default_wallet from bazaar.toml (set by init)."""
    cli, first = money
    alice, bob = first["wallets"]["alice"], first["wallets"]["bob"]
    before = (_units(cli, alice)["USDC"], _units(cli, bob)["USDC"])
    url = f"http://127.0.0.1:{free_port()}/quote"  # nothing listens: only the wallet matters
    results = _side_by_side(
        cli,
        [
            (["do", "send 1 USDC to bob", "--yes", "--json"], {}),  # default_wallet: alice
            (["do", "send 2 USDC to alice", "--yes", "--json"], {"BAZAAR_WALLET": "bob"}),
            (["pay", url], {"BAZAAR_WALLET": "nobody"}),
            (["channel", "pay", url], {"BAZAAR_WALLET": "nobody"}),
            (["pay", url, "-w", "nobody2"], {"BAZAAR_WALLET": "alice"}),
        ],
    )
    assert results[0].returncode == 0, results[0].stderr
    assert results[1].returncode == 0, results[1].stderr
    assert json.loads(results[0].stdout)["result"]["to"] == bob
    assert json.loads(results[1].stdout)["result"]["to"] == alice
    assert "no wallet named 'nobody'" in _refused(results[2])
    assert "no wallet named 'nobody'" in _refused(results[3])
    assert "no wallet named 'nobody2'" in _refused(results[4])
    after = (_units(cli, alice)["USDC"], _units(cli, bob)["USDC"])
    assert after == (before[0] + 1_000_000, before[1] - 1_000_000)


def test_new_wallets_get_the_default_policy(money: tuple[Env, dict[str, Any]]) -> None:
    cli, first = money
    alice, bob = first["wallets"]["alice"], first["wallets"]["bob"]
    KeyStore(load_config(cli.home, env={}).keystore_dir).create("dave", PASS)  # no policy file
    before = (_units(cli, alice), _units(cli, bob))
    rows = cli.ledger_rows()
    results = _side_by_side(
        cli,
        [
            (["wallet", "new", "carol", "--json"], {}),
            (["wallet", "policy", "alice", "--json"], {}),
            (["wallet", "send", "alice", "bob", "150 USDC"], {}),  # over the default maximum
            (["wallet", "send", "alice", "bob", "1 WETH"], {}),  # an unlisted token
            (["wallet", "policy", "dave"], {}),
        ],
    )
    carol = json.loads(results[0].stdout)
    policy = json.loads(results[1].stdout)
    for doc in (carol["policy"], policy):
        assert doc["unlisted_tokens"] == "deny"
        assert doc["tokens"]["USDC"]["max_per_payment"] == 100_000_000
        assert doc["tokens"]["ETH"]["max_per_payment"] == 5 * 10**17
    assert policy["unlimited"] is False
    assert "per-payment maximum" in _refused(results[2])
    assert "refuses unlisted tokens" in _refused(results[3])
    assert "UNLIMITED" in " ".join(results[4].stdout.split())
    assert (_units(cli, alice), _units(cli, bob)) == before and cli.ledger_rows() == rows


def test_an_amount_needs_its_token(money: tuple[Env, dict[str, Any]]) -> None:
    """`wallet send alice bob 1` once sent 1 ETH under a USDC-only policy; now it is refused."""
    cli, first = money
    bob = first["wallets"]["bob"]
    before, rows = _units(cli, bob), cli.ledger_rows()
    results = _side_by_side(
        cli, [(["wallet", "send", "alice", "bob", "1"], {}), (["faucet", "bob", "1"], {})]
    )
    for proc in results:
        message = _refused(proc)
        assert "needs its token" in message and "'1 ETH'" in message
    assert _units(cli, bob) == before and cli.ledger_rows() == rows


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def test_tampered_keystore_and_address_book_redirect_nothing(
    money: tuple[Env, dict[str, Any]],
) -> None:
    """The attacker rewrites bob's address field AND bob's address book entry (address and the
    digest of the edited file): every way of naming bob is refused, naming the file."""
    cli, first = money
    alice = first["wallets"]["alice"]
    keys = cli.home / "keystores"
    bob_file, book_file = keys / "bob.json", keys / ".addressbook.json"
    saved = (bob_file.read_text(), book_file.read_text())
    attacker = Account.create().address
    data = json.loads(saved[0])
    data["address"] = attacker.removeprefix("0x").lower()
    book = json.loads(saved[1])
    book.get("entries", book)["bob"].update(address=attacker, sha256=_digest(data))
    bob_file.write_text(json.dumps(data))
    book_file.write_text(json.dumps(book))
    before, rows = _units(cli, alice), cli.ledger_rows()
    policies = cli.home / "policies"
    policy = {p.name: p.read_text() for p in policies.glob("*.toml")}
    try:
        results = _side_by_side(
            cli,
            [
                (["wallet", "list"], {}),
                (["wallet", "send", "alice", "bob", "1 USDC"], {}),
                (["wallet", "policy", "alice", "--allow", "bob"], {}),
                (["do", "send 1 USDC to bob", "-w", "alice", "--yes"], {}),
            ],
        )
        for proc in results:
            assert str(bob_file) in _refused(proc)
            assert attacker.lower() not in proc.stdout.lower()
    finally:
        bob_file.write_text(saved[0])
        book_file.write_text(saved[1])
    assert _units(cli, attacker) == dict.fromkeys(_units(cli, attacker), 0)
    assert _units(cli, alice) == before and cli.ledger_rows() == rows
    assert {p.name: p.read_text() for p in policies.glob("*.toml")} == policy
    listed = cli.ok("wallet", "list", "--json")
    assert {w["name"]: w["address"] for w in listed}["bob"] == first["wallets"]["bob"]  # type: ignore[attr-defined]


def test_a_wallet_without_eth_is_told_to_fund_it(money: tuple[Env, dict[str, Any]]) -> None:
    cli, first = money
    made = cli.ok("wallet", "new", "erin", "--json")
    erin = made["address"]  # type: ignore[index]
    cli.ok("faucet", "erin", "5 USDC")
    proc = cli.run("wallet", "send", "erin", "alice", "1 USDC")
    message = _refused(proc)
    assert "no ETH" in message and erin in message and f"bazaar faucet {erin} 1 ETH" in message
    assert "Out of gas" not in message
    assert _units(cli, erin)["USDC"] == 5_000_000
    assert first["wallets"]["alice"] not in message


def test_concurrent_sends_never_exceed_the_default_budget(
    money: tuple[Env, dict[str, Any]],
) -> None:
    """Three `wallet send` processes at once, 100 USDC each, from a wallet with the default
    policy (250 USDC per 24 h): exactly two are paid, on chain as in the ledger."""
    cli, first = money
    cfg = load_config(cli.home, env={})
    chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    frank = KeyStore(cfg.keystore_dir).create("frank", PASS)
    write_default_policy(cfg, "frank", suite.tokens)
    chain.fund_native(frank, 10**18)
    usdc = suite.token_contract("USDC")
    chain.transact(dev_account(0), usdc.functions.mint(frank, 500_000_000))
    bob = first["wallets"]["bob"]
    bob_before = _units(cli, bob)["USDC"]
    results = _side_by_side(cli, [(["wallet", "send", "frank", "bob", "100 USDC"], {})] * 3)
    refused = [p for p in results if p.returncode != 0]
    assert len(refused) == 1 and "rolling budget" in _refused(refused[0])
    assert _units(cli, frank)["USDC"] == 300_000_000
    assert _units(cli, bob)["USDC"] == bob_before + 200_000_000
    rows = [r for r in Ledger(cfg.ledger_path).records("frank") if r.status == "settled"]
    assert sum(r.amount for r in rows) == 200_000_000
