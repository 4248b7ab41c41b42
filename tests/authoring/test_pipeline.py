"""The pipeline from sentence to verified contract on the embedded chain: draft (checks,
simulation), deploy and fund through the wallet, verification (exact, and a tampered code a
mismatch), explain; refusals before anything is signed."""

from __future__ import annotations

import pytest
from authoring_helpers import World, make_world

from agentbazaar.authoring import deploy, draft, explain, verify_address
from agentbazaar.errors import BadParameters, NotVerified, PolicyViolation
from agentbazaar.wallet import PolicyStore, SpendingPolicy

SENTENCES = [
    "vest 1,000 USDC to bob over 12 months with a 3 month cliff",
    "split this agent's income 70/30 between carol and bob",
    "hold 50 USDC in escrow for carol until dave approves or 7 days pass",
    "stream 10 USDC per day to bob for 30 days",
    "let bob spend up to 20 USDC per day from a vault owned by me, paying only carol and dave, "
    "fund it with 40 USDC",
    "create a token called Gold with symbol GLD capped at 1,000,000 and mint 1,000 to carol",
    "a timelock with a 2 day delay where carol proposes and dave executes",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pipeline"))


def _draft(world: World, sentence: str) -> object:
    return draft(sentence, chain=world.chain, wallet=world.wallet, ctx=world.ctx(),
                 store=world.store, namer=world.namer(), examples=5)  # fmt: skip


@pytest.mark.parametrize("sentence", SENTENCES)
def test_sentence_to_verified_contract(world: World, sentence: str) -> None:
    d = _draft(world, sentence)
    assert d.ok, d.failures()
    rows = world.wallet.ledger.count()
    done = deploy(d, chain=world.chain, wallet=world.wallet, store=world.store,
                  tokens=world.tokens)  # fmt: skip
    doc = done.to_dict()
    assert doc["address"] and doc["tx"] and doc["verified"] is True
    assert doc["verification"]["status"] == "exact_match"
    funded = d.filled.template.funding(d.filled.params)
    assert world.wallet.ledger.count() == rows + 1 + len(funded)  # deploy + each funding
    kinds = sorted(r.kind for r in world.wallet.ledger.records()[-(1 + len(funded)) :])
    assert kinds == sorted(["deploy", *["transfer"] * len(funded)])
    for token, amount in funded:
        from agentbazaar.authoring.sandbox import ERC20_ABI

        held = world.chain.call(world.chain.contract(token, ERC20_ABI).functions.balanceOf(
            doc["address"]))  # fmt: skip
        assert held == amount
    again = verify_address(world.chain, world.store, doc["address"])
    assert again.status == "exact_match" and again.source_id == doc["source_id"]
    facts = explain(world.chain, world.store, doc["address"], world.namer())
    assert facts["template"] == d.filled.template.name and facts["facts"]


def test_tampered_code_is_a_mismatch(world: World) -> None:
    d = _draft(world, "vest 10 USDC to bob over 1 month")
    done = deploy(d, chain=world.chain, wallet=world.wallet, store=world.store,
                  tokens=world.tokens)  # fmt: skip
    code = bytearray(world.chain.code_at(done.address))
    code[10] ^= 0xFF
    world.chain.set_code(done.address, bytes(code))
    result = verify_address(world.chain, world.store, done.address)
    assert result.status == "mismatch" and not result.verified
    assert any("runtime code differs" in r for r in result.reasons)
    with pytest.raises(NotVerified):
        explain(world.chain, world.store, done.address, world.namer())


def test_beyond_the_balance_is_refused_before_signing(world: World) -> None:
    rows = world.wallet.ledger.count()
    with pytest.raises(BadParameters, match="nothing was signed"):
        _draft(world, "vest 1,000,000 USDC to bob over 12 months")
    assert world.wallet.ledger.count() == rows


def test_beyond_the_policy_is_refused_before_signing(world: World) -> None:
    store = PolicyStore(world.home / "policies")
    policy = SpendingPolicy().with_limits(world.usdc.address, "USDC", 6,
                                          max_per_payment=100 * 10**6)  # fmt: skip
    store.save("alice", policy)
    try:
        rows = world.wallet.ledger.count()
        with pytest.raises(PolicyViolation, match="per-payment maximum"):
            _draft(world, "vest 500 USDC to bob over 12 months")
        assert world.wallet.ledger.count() == rows
    finally:
        store.save("alice", SpendingPolicy())


def test_unknown_address_is_not_verified(world: World) -> None:
    with pytest.raises(NotVerified, match="no record"):
        verify_address(world.chain, world.store, world.usdc.address)
