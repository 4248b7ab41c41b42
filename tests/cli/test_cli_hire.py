"""`bazaar hire` through the real console script against an agent served on loopback on a
local anvil: discover, quote, pay, verify the receipt; and its refusals (one `error:` line,
exit 1, nothing paid, nothing recorded as paid)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentbazaar.agents.contracts import ContractAuthorSkill
from agentbazaar.agents.provision import new_wallet, usdc_balance
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import EmbeddingSkill
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.identity.contracts import Registries
from agentbazaar.models.embedding import shared_model
from agentbazaar.suite import Suite
from agentbazaar.testing.cli import CliHome, cli_home
from agentbazaar.wallet import KeyStore, Ledger, open_wallet

pytestmark = [pytest.mark.anvil, pytest.mark.inference]
PASSPHRASE = "test-passphrase"


def _provider(cli: CliHome) -> tuple[Agent, Network]:
    """An embedding agent paid into wallet ``bob``, served and registered on the home's chain."""
    cfg = load_config(cli.home, env={})
    chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    net = Network(chain, Registries.from_suite(suite), suite.tokens.get("USDC"))
    wallet = open_wallet(cfg, "bob", PASSPHRASE)
    agent = Agent("embedder", wallet, net, skills=[EmbeddingSkill(shared_model(), 2_000)])
    agent.start()
    return agent, net


def _rows(cli: CliHome, wallet: str) -> list[tuple[str, int]]:
    path = cli.home / "ledger.sqlite"
    if not path.exists():
        return []
    return [(r.status, r.amount) for r in Ledger(path).records(wallet)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CliHome, Agent, Network]]:
    """A CLI home (`bazaar init`: anvil, suite, alice and bob) and an agent served in it."""
    with cli_home(tmp_path_factory.mktemp("hire") / "home", passphrase=PASSPHRASE) as cli:
        agent, net = _provider(cli)
        try:
            yield cli, agent, net
        finally:
            agent.stop()


def test_hire_buys_a_skill_from_a_served_agent_and_verifies_the_receipt(
    served: tuple[CliHome, Agent, Network],
) -> None:
    cli, agent, net = served
    before, rows = usdc_balance(net, agent.address), _rows(cli, "alice")
    got = cli.json("hire", "embed", "a quiet harbour at dawn", "--max", "0.01", "-w", "alice")
    assert got["providerAgentId"] == agent.agent_id
    assert got["providerWallet"] == agent.address
    assert got["receiptVerified"] is True and got["outputShape"][0] == 1
    price = int(got["price"])
    assert 0 < price <= 10_000
    assert usdc_balance(net, agent.address) - before == price
    assert _rows(cli, "alice") == [*rows, ("settled", price)]
    received = cli.json("receipts", "alice", "--role", "received")
    assert [(r["id"], r["txHash"]) for r in received][-1] == (got["receiptId"], got["txHash"])

    text = cli.ok("hire", "embed", '{"texts": ["one", "two"]}', "--max", "0.01", "-w", "alice")
    assert f"from embedder (agent #{agent.agent_id}" in text
    assert "(2 results)" in text and "verified" in text
    assert [s for s, _ in _rows(cli, "alice")] == [*(s for s, _ in rows), "settled", "settled"]


@pytest.fixture(scope="module")
def author(served: tuple[CliHome, Agent, Network]) -> Iterator[Agent]:
    """A contract author (0.25 USDC a contract) served beside the embedder."""
    cli, _embedder, net = served
    wallet = new_wallet("author", cli.home.parent / "author", net.token)
    net.chain.fund_native(wallet.address, 10**19)
    agent = Agent("author", wallet, net, skills=[ContractAuthorSkill(250_000, examples=3)])
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def test_hire_contract_buys_a_checked_contract_for_the_sentence(
    served: tuple[CliHome, Agent, Network], author: Agent
) -> None:
    cli, _embedder, net = served
    sentence = "vest 100 USDC to bob over 12 months with a 3 month cliff"
    before = usdc_balance(net, author.address)
    got = cli.json("hire", "contract", sentence, "--max", "0.5", "-w", "alice")
    assert got["providerAgentId"] == author.agent_id and got["price"] == "250000"
    assert got["receiptVerified"] is True and "outputShape" not in got
    delivery = got["delivery"]
    assert delivery["template"] == "vesting" and delivery["passed"] is True
    bob = KeyStore(load_config(cli.home, env={}).keystore_dir).address_of("bob", PASSPHRASE)
    assert delivery["params"]["values"]["beneficiary"] == bob
    assert {"source_id", "record", "build", "report"} <= delivery.keys()
    assert usdc_balance(net, author.address) - before == 250_000

    text = cli.ok("hire", "contract", sentence, "--max", "0.5", "-w", "alice")
    assert "bought a vesting contract, checks and simulation passed, source " in text
    assert f"from author (agent #{author.agent_id}" in text and "verified" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["embed", "some text", "--max", "0.000001"], "no trusted provider of 'embed'"),
        (["translate", "some text", "--max", "0.01"], "no trusted provider of 'translate'"),
        (["embed", "{not json", "--max", "0.01"], "INPUT looks like JSON"),
        (["embed", "some text", "--max", "-1"], "--max"),
        (["embed", "some text", "--max", "lots"], "lots"),
    ],
)
def test_hire_refusals_are_one_error_line_and_pay_nothing(
    served: tuple[CliHome, Agent, Network], args: list[str], message: str
) -> None:
    cli, agent, net = served
    before, rows = usdc_balance(net, agent.address), _rows(cli, "alice")
    proc = cli.run("hire", *args, "-w", "alice", "--json")
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.startswith("error:") and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    assert usdc_balance(net, agent.address) == before
    assert _rows(cli, "alice") == rows
