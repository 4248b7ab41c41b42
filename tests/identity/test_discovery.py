"""Discovery index: events -> SQLite, trust checks, proven reputation, queries, restart, reorgs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI, Request
from identity_helpers import Registries, skill
from typer.testing import CliRunner
from web3 import Web3

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.cli import app
from agentbazaar.config import BazaarConfig
from agentbazaar.deployment import deploy_suite
from agentbazaar.errors import ConfigError, IdentityError, InputError
from agentbazaar.identity.cards import (
    AgentConfig,
    build_registration,
    card_bytes,
    register_card,
    sign_card,
    to_data_uri,
)
from agentbazaar.identity.discovery import (
    ChainResolver,
    DiscoveryError,
    DiscoveryIndex,
    Follower,
    Query,
    RegistryEvent,
    scan_query,
)
from agentbazaar.identity.errors import CardError, PaymentAlreadyUsed, ProofOfPaymentError
from agentbazaar.identity.feedback import give_feedback, prepare_feedback
from agentbazaar.identity.server import create_app
from agentbazaar.suite import Suite
from agentbazaar.testing import free_port, serve_in_thread
from agentbazaar.wallet import KeyStore

SKILLS = ["translate", "summarize", "search", "code"]
TAGS = ["nlp", "fast", "web"]


@dataclass
class Expected:
    """What the test registered, to recompute every query in plain Python."""

    trusted: bool
    active: bool
    offers: list[tuple[str, set[str], int]]  # (skill id, tags, price units)
    wallet: str = ""
    proven: list[int] = field(default_factory=list)

    def rep(self) -> Decimal | None:
        return Decimal(sum(self.proven)) / len(self.proven) if self.proven else None

    def score(self) -> Decimal:
        rep = self.rep()
        return rep * len(self.proven) / (len(self.proven) + 3) if rep is not None else Decimal(0)


def expected_ids(agents: dict[int, Expected], q: Query) -> list[int]:
    hits = []
    for agent_id, a in agents.items():
        if q.trusted_only and not a.trusted:
            continue
        if q.active is not None and a.active != q.active:
            continue
        rep = a.rep()
        if q.min_rep is not None and (rep is None or rep < q.min_rep):
            continue
        offers = [o for o in a.offers if q.skill is None or q.skill == o[0] or q.skill in o[1]]
        if q.max_price is not None:
            offers = [o for o in offers if o[2] <= q.max_price]
        if (q.skill or q.max_price is not None) and not offers:
            continue
        hits.append((-a.score(), agent_id))
    return [agent_id for _, agent_id in sorted(hits)[: q.limit]]


def _random_agents(reg: Registries, rnd: random.Random, n: int) -> dict[int, Expected]:
    agents: dict[int, Expected] = {}
    for i in range(n):
        owner = reg.new_account()
        offers = []
        for sid in rnd.sample(SKILLS, rnd.randint(1, 2)):
            tags = set(rnd.sample(TAGS, rnd.randint(0, 2)))
            units = rnd.choice([1_000, 5_000, 10_000, 50_000])
            offers.append((sid, tags, units))
        skills = [skill(s, str(Decimal(u).scaleb(-6)), *sorted(t)) for s, t, u in offers]
        mismatch = i % 7 == 3  # card signed by another wallet than the on-chain agentWallet
        signer = reg.new_account() if mismatch else None
        active = i % 5 != 4
        agent_id = reg.register(owner, name=f"a{i}", skills=skills, signer=signer, active=active)
        agents[agent_id] = Expected(not mismatch, active, offers, wallet=owner.address)
    return agents


def _feedback(
    reg: Registries, client: LocalAccount, agent_id: int, wallet: str, value: int, pay: bool
) -> None:
    """A paid feedback through our client, or an unproven claim (the payment went elsewhere)."""
    to = wallet if pay else reg.deployer.address
    receipt = reg.chain.transact(client, reg.usdc.functions.transfer(to, 1_000))
    tx = receipt["transactionHash"].to_0x_hex()
    if pay:
        give_feedback(
            reg.chain,
            reg.reputation,
            client,
            identity_registry=reg.identity.address,
            agent_id=agent_id,
            agent_wallet=wallet,
            value=value,
            payment_tx=tx,
            tokens={reg.usdc.address},
        )
        return
    # bypass our client's check to put an unproven claim on chain, as any other client could
    prepared = prepare_feedback(
        chain_id=reg.chain.chain_id,
        identity_registry=reg.identity.address,
        agent_id=agent_id,
        client=client.address,
        agent_wallet=wallet,
        value=value,
        value_decimals=0,
        payment_tx=tx,
    )
    fn = reg.reputation.functions.giveFeedback(
        agent_id, value, 0, "", "", "", prepared.uri, prepared.hash
    )
    reg.chain.transact(client, fn)


def _index(reg: Registries, path: Path | str = ":memory:") -> DiscoveryIndex:
    return DiscoveryIndex(
        path,
        chain_id=reg.chain.chain_id,
        identity_registry=reg.identity.address,
        reputation_registry=reg.reputation.address,
    )


def test_queries_match_recomputation(embedded: Registries) -> None:
    reg, rnd = embedded, random.Random(8004)
    agents = _random_agents(reg, rnd, 16)
    clients = [reg.new_account() for _ in range(3)]
    for c in clients:
        reg.chain.transact(reg.deployer, reg.usdc.functions.mint(c.address, 10**9))
    for agent_id, a in agents.items():
        for _ in range(rnd.choice([0, 1, 1, 2])):
            value, paid = rnd.randint(0, 100), rnd.random() < 0.75
            _feedback(reg, rnd.choice(clients), agent_id, a.wallet, value, paid)
            if paid:  # proven even when the card is untrusted: the payment is real
                a.proven.append(value)
    index = _index(reg)
    stats = Follower(index, reg.chain, batch_blocks=50).sync()
    assert stats.head == reg.chain.block_number()
    assert index.count() == len(agents)
    assert index.count(trusted=True) == sum(a.trusted for a in agents.values())
    for agent_id, a in agents.items():
        rec = index.agent(agent_id)
        assert rec is not None and rec.trusted == a.trusted and rec.rep_count == len(a.proven)
        if not a.trusted:
            assert "WalletMismatch" in rec.reason
    usdc = reg.usdc.address
    queries = [
        Query(limit=100),
        Query(active=None, limit=100),
        Query(trusted_only=False, active=None, limit=100),
        Query(limit=5),
        Query(min_rep=Decimal(50), limit=100),
        Query(active=False, limit=100),
        *(Query(skill=s, limit=100) for s in SKILLS + TAGS),
        *(Query(asset=usdc, max_price=p, limit=100) for p in (999, 1_000, 5_000, 49_999)),
        *(Query(skill=s, asset=usdc, max_price=5_000, limit=100) for s in SKILLS),
        Query(skill="NLP", asset=usdc, max_price=10_000, min_rep=Decimal(20), limit=3),
    ]
    nonempty = 0
    for q in queries:
        want = expected_ids(agents, q if q.skill is None else _lower(q))
        got = [r.agent_id for r in index.query(q)]
        assert got == want, q
        assert scan_query(index.db, q) == want, q
        nonempty += bool(want)
    assert nonempty > len(queries) // 2


def _lower(q: Query) -> Query:
    from dataclasses import replace

    return replace(q, skill=q.skill.lower() if q.skill else None)


def test_wallet_follows_chain_and_transfer_untrusts(embedded: Registries) -> None:
    reg = embedded
    owner, buyer = reg.new_account(), reg.new_account()
    agent_id = reg.register(owner, skills=[skill("echo", "0.01")])
    index = _index(reg)
    follower = Follower(index, reg.chain)
    follower.sync()
    rec = index.agent(agent_id)
    assert rec is not None and rec.trusted
    assert rec.wallet == reg.chain.call(reg.identity.functions.getAgentWallet(agent_id))
    # the token moves: the standard clears agentWallet, so the card no longer matches
    reg.chain.transact(
        owner, reg.identity.functions.transferFrom(owner.address, buyer.address, agent_id)
    )
    follower.sync()
    rec = index.agent(agent_id)
    assert rec is not None and not rec.trusted and rec.wallet is None
    assert rec.owner == buyer.address and "no agentWallet" in rec.reason
    assert reg.chain.call(reg.identity.functions.getAgentWallet(agent_id)) == "0x" + "0" * 40
    assert index.query(Query(skill="echo")) == []


def _event(block: int, name: str, agent_id: int, log: int = 0, **args: Any) -> RegistryEvent:
    return RegistryEvent(block, log, "0x" + f"{block:064x}", name, agent_id, args)


def _wallet_event(block: int, agent_id: int, wallet: str) -> RegistryEvent:
    return _event(
        block,
        "MetadataSet",
        agent_id,
        1,
        metadataKey="agentWallet",
        indexedMetadataKey="0x",
        metadataValue=wallet.lower(),
    )


def test_ingested_events_untrusted_reasons(embedded: Registries) -> None:
    """Events fed straight into the ingestion function: every failure is indexed untrusted."""
    reg = embedded
    agent = dev_account(3)
    card = build_registration(
        AgentConfig(name="x", skills=[]), agent.address, reg.tokens, reg.chain.chain_id
    )
    signed = sign_card(card, agent, reg.chain.chain_id)
    unsigned = {k: v for k, v in signed.items() if k != "signatures"}
    tampered = dict(signed, name="y")
    uris = {
        1: (to_data_uri(card_bytes(signed)), agent.address, ""),
        2: (to_data_uri(card_bytes(unsigned)), agent.address, "SignatureError"),
        3: (to_data_uri(card_bytes(tampered)), agent.address, "SignatureError"),
        4: (to_data_uri(b"{not json"), agent.address, "CardError"),
        5: (to_data_uri(card_bytes(signed)), dev_account(4).address, "WalletMismatch"),
        6: ("ftp://nowhere/card.json", agent.address, "CardFetchError"),
        7: ("", agent.address, "no agentURI"),
    }
    events = []
    for agent_id, (uri, wallet, _) in uris.items():
        events.append(_event(10 + agent_id, "Registered", agent_id, agentURI=uri, owner=wallet))
        events.append(_wallet_event(10 + agent_id, agent_id, wallet))
    index = _index(reg)
    resolver = ChainResolver(reg.chain, reg.identity.address)
    stats = index.ingest(events, {}, 20, resolver)
    assert (stats.events, stats.agents, index.last_block()) == (14, 7, 20)
    for agent_id, (_, _, reason) in uris.items():
        rec = index.agent(agent_id)
        assert rec is not None
        assert rec.trusted == (reason == ""), (agent_id, rec.reason)
        assert reason in rec.reason
    assert [r.agent_id for r in index.query(Query())] == [1]
    # a URI update to a good card makes agent 3 trusted; going backwards is refused
    index.ingest(
        [_event(21, "URIUpdated", 3, newURI=uris[1][0], updatedBy=agent.address)], {}, 21, resolver
    )
    assert [r.agent_id for r in index.query(Query())] == [1, 3]
    with pytest.raises(DiscoveryError):
        index.ingest([], {}, 5, resolver)
    # rollback to before the update forgets it
    assert index.rollback(20, resolver) == 1
    assert [r.agent_id for r in index.query(Query())] == [1]
    # claims without a provable payment are kept, unproven, with the reason
    client = dev_account(5).address
    good = prepare_feedback(
        chain_id=reg.chain.chain_id,
        identity_registry=reg.identity.address,
        agent_id=1,
        client=client,
        agent_wallet=agent.address,
        value=100,
        value_decimals=0,
        payment_tx="0x" + "ab" * 32,  # not on this chain
    )
    claims = [("", good.hash), (good.uri, b"\x01" * 32), (good.uri, good.hash)]
    feedback_events = [
        _event(22, "NewFeedback", 1, i, clientAddress=client, feedbackIndex=i + 1, value=100,
               valueDecimals=0, tag1="", tag2="", endpoint="", indexedTag1="0x",
               feedbackURI=uri, feedbackHash="0x" + bytes(h).hex())
        for i, (uri, h) in enumerate(claims)
    ]  # fmt: skip
    index.ingest(feedback_events, {}, 22, resolver)
    reasons = [f["reason"] for f in index.feedback(1)]
    assert [f["proven"] for f in index.feedback(1)] == [0, 0, 0]
    assert "no feedbackURI" in reasons[0]
    assert "does not match the on-chain feedbackHash" in reasons[1]
    assert "not on this chain" in reasons[2]
    rec = index.agent(1)
    assert rec is not None and rec.trusted and rec.rep_count == 0 and rec.score == 0


def test_query_validation(embedded: Registries) -> None:
    index = _index(embedded)
    for bad in (Query(limit=0), Query(max_price=5), Query(asset=embedded.usdc.address)):
        with pytest.raises(DiscoveryError):
            index.query(bad)


def test_index_bound_to_its_registry(embedded: Registries, tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    _index(embedded, path).close()
    with pytest.raises(DiscoveryError, match="belongs to"):
        DiscoveryIndex(path, chain_id=1, identity_registry=embedded.identity.address)


def test_catch_up_after_restart(embedded: Registries, tmp_path: Path) -> None:
    reg = embedded
    path = tmp_path / "discovery.sqlite"
    owners = [reg.new_account() for _ in range(5)]
    for i, o in enumerate(owners[:3]):
        reg.register(o, name=f"first{i}", skills=[skill("echo", "0.01")])
    index = _index(reg, path)
    first = Follower(index, reg.chain, batch_blocks=7).sync()
    # each registration: Registered + MetadataSet(agentWallet) + Transfer (mint)
    assert (first.events, first.agents, index.count()) == (9, 3, 3)
    head = index.last_block()
    index.close()
    for i, o in enumerate(owners[3:]):
        reg.register(o, name=f"second{i}", skills=[skill("echo", "0.01")])
    index = _index(reg, path)
    assert index.last_block() == head
    second = Follower(index, reg.chain, batch_blocks=7).sync()
    assert (second.events, second.agents, index.count(), index.event_count()) == (6, 2, 5, 15)
    again = Follower(index, reg.chain).sync()
    assert (again.events, index.count()) == (0, 5)
    names = sorted(r.name for r in index.query(Query(skill="echo", limit=10)))
    assert names == ["first0", "first1", "first2", "second0", "second1"]


@pytest.mark.anvil
def test_reorg_rolls_back_to_fork_point(on_anvil: Registries) -> None:
    reg = on_anvil
    w3 = reg.chain.w3
    owners = [reg.new_account() for _ in range(4)]
    kept = [reg.register(o, name=f"kept{i}") for i, o in enumerate(owners[:2])]
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    fork_block = reg.chain.block_number()
    orphaned = [reg.register(o, name=f"orphan{i}") for i, o in enumerate(owners[2:])]
    index = _index(reg)
    follower = Follower(index, reg.chain)
    follower.sync()
    assert index.count() == 4 and index.last_block() > fork_block
    assert w3.provider.make_request("evm_revert", [snapshot])["result"]  # type: ignore[arg-type]
    # the other branch: a different agent, and enough blocks to pass the old head
    newcomer = reg.register(reg.new_account(), name="newcomer")
    while reg.chain.block_number() <= index.last_block():
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    stats = follower.sync()
    assert stats.reorgs == 1 and stats.rolled_back_to is not None
    assert stats.rolled_back_to <= fork_block
    names = sorted(r.name for r in index.query(Query(limit=10)))
    assert names == ["kept0", "kept1", "newcomer"]
    assert newcomer == orphaned[0]  # the same agent id now means another agent
    assert kept == [0, 1]
    assert index.block_hash(index.last_block()) == Web3.to_hex(
        w3.eth.get_block(index.last_block())["hash"]
    )


def test_random_accounts_are_not_literals() -> None:
    # guard for the helpers: accounts are generated at run time
    assert Account.create().address != Account.create().address


@pytest.mark.anvil
def test_cli_register_list_feedback_show_card(
    anvil_node: AnvilNode,  # the CLI finds the chain through its home: this node's
    anvil_config: BazaarConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = anvil_config
    monkeypatch.setenv("BAZAAR_PASSPHRASE", "test-passphrase")
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")
    chain = Chain.rpc(anvil_node.running_url(), backend="local")
    suite = Suite.from_context(deploy_suite(chain, cfg))
    store = KeyStore(cfg.keystore_dir)
    seller, buyer = Account.create(), Account.create()
    store.import_key("seller", seller.key, "test-passphrase")
    store.import_key("buyer", buyer.key, "test-passphrase")
    for a in (seller, buyer):
        chain.fund_native(a.address, 10**19)
    usdc = suite.token_contract("USDC")
    chain.transact(dev_account(0), usdc.functions.mint(buyer.address, 10**8))
    config = tmp_path / "echo.toml"
    config.write_text(
        '[agent]\nname = "echo"\nwallet = "seller"\n[[skills]]\nid = "echo"\nname = "Echo"\n'
        'tags = ["test"]\n[[skills.prices]]\ntoken = "USDC"\namount = "0.01"\n'
    )
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, ["--home", str(cfg.home), *args])
        if result.exception is not None:
            raise result.exception
        return json.loads(result.stdout)

    agent_id = run("agent", "register", str(config), "--json")["agent_id"]
    # bad input: a typed error naming the problem, nothing sent
    broken = tmp_path / "broken.toml"
    broken.write_text('[agent]\nname = "x"\n[[skills]]\nid = "a"\n')  # a skill without a name
    block = chain.block_number()
    with pytest.raises(CardError, match="skills"):
        run("agent", "register", str(broken), "--json")
    bad_inputs = [
        ("list", "--max-price", "lots USDC", "--json"),
        ("list", "--min-rep", "nan", "--json"),
        ("feedback", str(agent_id), "great", "--payment", "0x" + "1" * 64, "--wallet", "buyer"),
        ("feedback", str(agent_id), "90", "--payment", "0x1", "--wallet", "buyer"),
    ]
    for args in bad_inputs:
        with pytest.raises((InputError, IdentityError)):
            run("agent", *args)
    assert chain.block_number() == block
    listed = run("agent", "list", "--skill", "echo", "--json")
    assert [(a["agent_id"], a["trusted"], a["wallet"]) for a in listed] == [
        (agent_id, True, seller.address)
    ]
    assert run("agent", "list", "--max-price", "0.001 USDC", "--json") == []
    assert len(run("agent", "list", "--max-price", "0.01 USDC", "--json")) == 1
    paid = chain.transact(buyer, usdc.functions.transfer(seller.address, 10_000))
    tx = paid["transactionHash"].to_0x_hex()
    bogus = chain.transact(buyer, usdc.functions.transfer(dev_account(1).address, 10_000))
    with pytest.raises(ProofOfPaymentError):
        run("agent", "feedback", str(agent_id), "95", "--payment",
            bogus["transactionHash"].to_0x_hex(), "--wallet", "buyer")  # fmt: skip
    run("agent", "feedback", str(agent_id), "9.5", "--payment", tx, "--wallet", "buyer", "--json")
    shown = run("agent", "show", str(agent_id), "--json")
    assert (shown["rep_count"], shown["rep_avg"]) == (1, 9.5)
    assert [(f["value"], f["decimals"], f["proven"]) for f in shown["feedback"]] == [("95", 1, 1)]
    assert run("agent", "list", "--min-rep", "10", "--json") == []
    card = run("agent", "card", str(agent_id), "--json")
    assert card["verified"] and card["card"]["wallet"] == seller.address
    # a card signed by a key that is not the agent's wallet: shown, but not verified or trusted
    other = Account.create()
    foreign = build_registration(AgentConfig(name="foreign"), other.address, suite.tokens, 31337)
    foreign_id, _ = register_card(
        chain, suite.contract("IdentityRegistry"), seller, sign_card(foreign, other, 31337)
    )
    shown_card = run("agent", "card", str(foreign_id), "--json")
    assert not shown_card["verified"] and "WalletMismatch" in shown_card["reason"]
    untrusted = run("agent", "list", "--untrusted", "--json")
    assert {(a["agent_id"], a["trusted"]) for a in untrusted} == {
        (agent_id, True),
        (foreign_id, False),
    }
    with pytest.raises(IdentityError, match="not registered"):
        run("agent", "show", "999", "--json")
    # the file `bazaar serve` reads registers too: a served kind with the URL it will serve on,
    # the same identity when registered again (and when served: the id is kept in the home)
    served = tmp_path / "embedder.toml"
    served.write_text(
        '[agent]\nname = "emb"\nkind = "embedding-provider"\nwallet = "seller"\nport = 8601\n'
        '[embedding]\nprice_per_1k_tokens = "0.002"\n'
    )
    first = run("agent", "register", str(served), "--json")
    assert first["url"] == "http://127.0.0.1:8601" and first["wallet"] == seller.address
    again = run("agent", "register", str(served), "--json")
    assert again["agent_id"] == first["agent_id"] and again["tx_hash"] != first["tx_hash"]
    emb = run("agent", "card", str(first["agent_id"]), "--json")
    assert emb["verified"] and emb["card"]["name"] == "emb"
    assert [s["id"] for s in emb["card"]["skills"]] == ["embed"]
    saved = json.loads((cfg.home / "agents" / "emb.json").read_text())
    assert saved["agentId"] == first["agent_id"]
    no_port = tmp_path / "no-port.toml"
    no_port.write_text('[agent]\nname = "e2"\nkind = "validator"\nwallet = "seller"\n')
    block = chain.block_number()
    with pytest.raises(ConfigError, match="port"):
        run("agent", "register", str(no_port), "--json")
    assert chain.block_number() == block
    # the console script serves the same index over HTTP
    port = free_port()
    bazaar = str(Path(sys.executable).with_name("bazaar"))
    proc = subprocess.Popen(
        [bazaar, "--home", str(cfg.home), "agent", "discovery-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        found = httpx.get(url + "/agents", params={"skill": "echo", "min_rep": "9"}).json()
        assert [a["agent_id"] for a in found["agents"]] == [agent_id]
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def discovery_server(embedded: Registries) -> Iterator[tuple[str, Registries]]:
    """The discovery HTTP app on a free loopback port, following the embedded chain."""
    reg = embedded
    follower = Follower(_index(reg), reg.chain)
    app_ = create_app(follower.index, follower=follower, tokens=reg.tokens, sync_interval=0)
    with serve_in_thread(app_) as url:
        yield url, reg


def test_http_discovery(discovery_server: tuple[str, Registries]) -> None:
    url, reg = discovery_server
    cheap = reg.register(reg.new_account(), name="cheap", skills=[skill("echo", "0.001", "fast")])
    dear = reg.register(reg.new_account(), name="dear", skills=[skill("echo", "0.5")])
    with httpx.Client(base_url=url, timeout=10) as http:
        ids = [
            a["agent_id"] for a in http.get("/agents", params={"skill": "echo"}).json()["agents"]
        ]
        assert sorted(ids) == sorted([cheap, dear])
        health = http.get("/healthz").json()
        assert health["agents"] == 2 and health["last_block"] == reg.chain.block_number()
        capped = http.get("/agents", params={"max_price": "1000", "asset": "USDC"}).json()
        assert [a["agent_id"] for a in capped["agents"]] == [cheap]
        by_address = {"max_price": "1000", "asset": reg.usdc.address, "skill": "fast"}
        assert [a["agent_id"] for a in http.get("/agents", params=by_address).json()["agents"]] == [
            cheap
        ]
        late = reg.register(reg.new_account(), name="late", skills=[skill("echo", "0.001")])
        shown = http.get(f"/agents/{late}").json()  # the index caught up before answering
        assert shown["name"] == "late" and shown["trusted"] and shown["feedback"] == []
        bad = [
            ({"max_price": "0.5"}, 400),
            ({"max_price": "5"}, 400),
            ({"min_rep": "nan"}, 400),
            ({"min_rep": "x"}, 400),
            ({"asset": "DOGE", "max_price": "1"}, 400),
            ({"limit": "0"}, 400),
        ]
        for params, status in bad:
            resp = http.get("/agents", params=params)
            assert resp.status_code == status, params
            assert resp.json()["message"]
        missing = http.get("/agents/999")
        assert missing.status_code == 404 and "not in the index" in missing.json()["message"]


def test_one_payment_one_feedback_and_revocation(embedded: Registries) -> None:
    reg = embedded
    owner, client = reg.new_account(), reg.new_account()
    agent_id = reg.register(owner, skills=[skill("echo", "0.01")])
    reg.chain.transact(reg.deployer, reg.usdc.functions.mint(client.address, 10**8))

    def rate(value: int, tx: str) -> None:
        give_feedback(
            reg.chain,
            reg.reputation,
            client,
            identity_registry=reg.identity.address,
            agent_id=agent_id,
            agent_wallet=owner.address,
            value=value,
            payment_tx=tx,
            tokens={reg.usdc.address},
        )

    def payment() -> str:
        receipt = reg.chain.transact(client, reg.usdc.functions.transfer(owner.address, 10_000))
        return str(receipt["transactionHash"].to_0x_hex())

    first = payment()
    rate(80, first)
    with pytest.raises(PaymentAlreadyUsed):  # our client refuses the same payment again
        rate(20, first)
    # another client puts it on chain anyway: it proves nothing new
    again = prepare_feedback(
        chain_id=reg.chain.chain_id,
        identity_registry=reg.identity.address,
        agent_id=agent_id,
        client=client.address,
        agent_wallet=owner.address,
        value=20,
        value_decimals=0,
        payment_tx=first,
    )
    fn = reg.reputation.functions.giveFeedback(agent_id, 20, 0, "", "", "", again.uri, again.hash)
    reg.chain.transact(client, fn)
    rate(60, payment())
    index = _index(reg)
    follower = Follower(index, reg.chain)
    follower.sync()
    rec = index.agent(agent_id)
    assert rec is not None and (rec.rep_count, rec.rep_avg) == (2, 70.0)
    rows = index.feedback(agent_id)
    assert [(r["idx"], r["proven"]) for r in rows] == [(1, 1), (2, 0), (3, 1)]
    assert "already proves another feedback" in rows[1]["reason"]
    reg.chain.transact(client, reg.reputation.functions.revokeFeedback(agent_id, 3))
    follower.sync()
    rec = index.agent(agent_id)
    assert rec is not None and (rec.rep_count, rec.rep_avg) == (1, 80.0)
    assert [r["revoked"] for r in index.feedback(agent_id)] == [0, 0, 1]
    assert rec.score == pytest.approx(80 * 1 / (1 + 3))


def test_a_payment_replayed_for_another_agent_proves_nothing(embedded: Registries) -> None:
    """Two agents share a wallet; one payment, feedback to both (the second bypassing our
    client): only the first counts, whether the index reads them in one batch or two."""
    reg = embedded
    owner, client = reg.new_account(), reg.new_account()
    first = reg.register(owner, name="first", skills=[skill("echo", "0.01")])
    second = reg.register(owner, name="second", skills=[skill("echo", "0.01")])
    tx = reg.pay(client, owner.address, 1_000)
    give_feedback(
        reg.chain,
        reg.reputation,
        client,
        identity_registry=reg.identity.address,
        agent_id=first,
        agent_wallet=owner.address,
        value=90,
        payment_tx=tx,
        tokens={reg.usdc.address},
    )
    early = _index(reg)
    Follower(early, reg.chain).sync()  # the first claim is indexed before the replay exists
    replay = prepare_feedback(
        chain_id=reg.chain.chain_id,
        identity_registry=reg.identity.address,
        agent_id=second,
        client=client.address,
        agent_wallet=owner.address,
        value=100,
        value_decimals=0,
        payment_tx=tx,
    )
    fn = reg.reputation.functions.giveFeedback(second, 100, 0, "", "", "", replay.uri, replay.hash)
    reg.chain.transact(client, fn)
    late = _index(reg)
    for index in (early, late):
        Follower(index, reg.chain).sync()
        one, two = index.agent(first), index.agent(second)
        assert one is not None and (one.rep_count, one.rep_avg) == (1, 90.0)
        assert two is not None and (two.rep_count, two.rep_avg) == (0, None)
        row = index.feedback(second)[0]
        assert row["proven"] == 0 and f"feedback for agent {first}" in row["reason"]


def test_a_rating_out_of_range_is_no_reputation(embedded: Registries) -> None:
    """Another client posts 150 (and -5) with real payments, bypassing our client's check: the
    index keeps the rows, proven = 0 with the reason, and counts only the 0..100 rating."""
    reg = embedded
    owner, client = reg.new_account(), reg.new_account()
    agent_id = reg.register(owner, skills=[skill("echo", "0.01")])
    for value in (150, -5, 80):
        tx = reg.pay(client, owner.address, 1_000)
        prepared = prepare_feedback(
            chain_id=reg.chain.chain_id,
            identity_registry=reg.identity.address,
            agent_id=agent_id,
            client=client.address,
            agent_wallet=owner.address,
            value=50,  # the file is a rating; the on-chain value is what the index averages
            value_decimals=0,
            payment_tx=tx,
        )
        fn = reg.reputation.functions.giveFeedback(
            agent_id, value, 0, "", "", "", prepared.uri, prepared.hash
        )
        reg.chain.transact(client, fn)
    index = _index(reg)
    Follower(index, reg.chain).sync()
    rec = index.agent(agent_id)
    assert rec is not None and (rec.rep_count, rec.rep_avg) == (1, 80.0)
    rows = index.feedback(agent_id)
    assert [r["proven"] for r in rows] == [0, 0, 1]
    assert all("FeedbackValueError" in r["reason"] for r in rows[:2])


@pytest.mark.anvil
def test_follower_narrows_log_ranges_a_node_refuses(on_anvil: Registries) -> None:
    """Public nodes cap eth_getLogs ranges: a proxy in front of anvil refuses more than 3 blocks."""
    reg = on_anvil
    owners = [reg.new_account() for _ in range(4)]
    ids = [reg.register(o, name=f"n{i}") for i, o in enumerate(owners)]
    assert reg.chain.url is not None
    upstream, refused = reg.chain.url, []
    proxy = FastAPI()

    @proxy.post("/")
    async def rpc(request: Request) -> Any:
        body = await request.json()
        if body.get("method") == "eth_getLogs":
            flt = body["params"][0]
            span = int(flt["toBlock"], 16) - int(flt["fromBlock"], 16) + 1
            if span > 3:
                refused.append(span)
                return {"jsonrpc": "2.0", "id": body["id"],
                        "error": {"code": -32005, "message": "block range is too wide (max 3)"}}  # fmt: skip
        async with httpx.AsyncClient() as client:
            return (await client.post(upstream, json=body)).json()

    with serve_in_thread(proxy) as url:
        chain = Chain.rpc(url, backend="local")
        index = _index(reg)
        stats = Follower(index, chain, batch_blocks=1_000).sync()
        assert refused and stats.head == reg.chain.block_number()
        assert sorted(r.agent_id for r in index.query(Query(limit=10))) == ids
