"""Reputation money can't fake, end to end on the embedded chain: jobs complete and mint
tickets, payers spend them on feedback through the gate, discovery proves each feedback by its
ticket and shows the raw and the weighted score; a Sybil ring funded by the agent's own wallet
(directly or through a hub) raises the raw score and leaves the weighted one where it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chain_world import FEE, USDC, ChainWorld
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from agentbazaar.chain import Chain
from agentbazaar.identity.cards import (
    AgentConfig,
    PriceConfig,
    SkillConfig,
    build_registration,
    register_card,
    sign_card,
)
from agentbazaar.identity.discovery import ChainResolver, DiscoveryIndex, Follower
from agentbazaar.identity.errors import TicketError
from agentbazaar.identity.tickets import TicketGate
from agentbazaar.jobs import model, parse_deliverable
from agentbazaar.tokens import NATIVE, Token, TokenRegistry

BUDGET = 4 * USDC
TRANSFER_TYPES = {"TransferWithAuthorization": model.RECEIVE_TYPES["ReceiveWithAuthorization"]}


@pytest.fixture
def cw(tmp_path: Path) -> ChainWorld:
    return ChainWorld(Chain.embedded(), tmp_path)


def _register(cw: ChainWorld, owner: LocalAccount) -> int:
    tokens = TokenRegistry([NATIVE, Token("USDC", 6, cw.usdc.address, "USD Coin", "2")])
    price = PriceConfig(token="USDC", amount="4")
    config = AgentConfig(name="summariser", skills=[SkillConfig(id="summarize", name="Summarize", prices=[price])])  # fmt: skip
    card = build_registration(config, owner.address, tokens, cw.chain.chain_id)
    agent_id, _ = register_card(cw.chain, cw.identity, owner, sign_card(card, owner, cw.chain.chain_id))  # fmt: skip
    return agent_id


def _index(cw: ChainWorld) -> tuple[DiscoveryIndex, Follower]:
    index = DiscoveryIndex(
        ":memory:", chain_id=cw.chain.chain_id, identity_registry=cw.identity.address,
        reputation_registry=cw.reputation.address,
    )  # fmt: skip
    resolver = ChainResolver(cw.chain, cw.identity.address, gate=cw.gate.address)
    return index, Follower(index, cw.chain, resolver=resolver)


def _relay_x402(cw: ChainWorld, payer: LocalAccount, payee: str, amount: int) -> None:
    """An x402 `exact` payment (TransferWithAuthorization) settled through the gate."""
    nonce, before = os.urandom(32), cw.chain.timestamp() + 3_600
    message = {"from": payer.address, "to": payee, "value": amount, "validAfter": 0, "validBefore": before, "nonce": nonce}  # fmt: skip
    sig = payer.sign_message(encode_typed_data(cw.market.contracts.domain, TRANSFER_TYPES, message))
    fn = cw.gate.functions.settleAndMint(payer.address, payee, amount, 0, before, nonce, bytes(sig.signature))  # fmt: skip
    cw.chain.transact(cw.deployer, fn)  # a facilitator relays it


def test_sybil_ring_funded_by_the_agent_does_not_raise_the_weighted_score(cw: ChainWorld) -> None:
    provider, evaluator = cw.wallet("provider"), cw.wallet("evaluator")
    owner = provider.account_for_deploy()
    agent_id = _register(cw, owner)
    gate = TicketGate(cw.chain, cw.gate.address)
    for i, value in enumerate((70, 80, 90)):  # three honest clients, each a paid job
        client = cw.wallet(f"client{i}", BUDGET + FEE)
        job_id, _ = cw.market.create(client, provider=provider.address, evaluator=evaluator.address, budget=BUDGET, expires_in=3_600)  # fmt: skip
        cw.market.fund(client, job_id)
        cw.market.submit(provider, job_id, parse_deliverable(f"summary {i}"))
        cw.market.complete(evaluator, job_id)
        (ticket,) = gate.unused(client.address)
        assert (ticket.payee, ticket.amount) == (provider.address, BUDGET)
        gate.give_feedback(client.account_for_deploy(), ticket, agent_id, value)
    index, follower = _index(cw)
    follower.sync()
    honest = index.agent(agent_id)
    assert honest is not None and honest.trusted
    assert (honest.rep_count, honest.rep_avg, honest.payers, honest.clusters) == (3, 80.0, 3, 3)
    assert honest.weighted_avg == pytest.approx(80.0) and honest.weighted_score > 0

    # the ring: the agent's wallet funds a hub, the hub funds five reviewers, each "buys"
    hub = Account.create()
    cw.mint(owner.address, 10 * USDC)
    cw.chain.fund_native(hub.address, 10**18)
    cw.chain.transact(owner, cw.usdc.functions.transfer(hub.address, 10 * USDC))
    for _ in range(5):
        reviewer = Account.create()
        cw.chain.fund_native(reviewer.address, 10**18)
        cw.chain.transact(hub, cw.usdc.functions.transfer(reviewer.address, 2 * USDC))
        _relay_x402(cw, reviewer, owner.address, 2 * USDC)  # the money goes back to the agent
        (ticket,) = gate.unused(reviewer.address)
        gate.give_feedback(reviewer, ticket, agent_id, 100)
    follower.sync()
    after = index.agent(agent_id)
    assert after is not None
    assert after.rep_count == 8 and after.score > honest.score  # the raw score is fooled
    assert after.payers == 8 and after.clusters == 3
    assert after.weighted_score == honest.weighted_score  # the weighted one is not
    assert after.weighted_avg == honest.weighted_avg


def test_a_ticket_buys_one_feedback_and_only_its_payer_spends_it(cw: ChainWorld) -> None:
    provider, evaluator = cw.wallet("provider"), cw.wallet("evaluator")
    agent_id = _register(cw, provider.account_for_deploy())
    client = cw.wallet("client", BUDGET + FEE)
    job_id, _ = cw.market.create(client, provider=provider.address, evaluator=evaluator.address, budget=BUDGET, expires_in=3_600)  # fmt: skip
    cw.market.fund(client, job_id)
    cw.market.submit(provider, job_id, parse_deliverable("x"))
    done = cw.market.complete(evaluator, job_id)
    ticket_id = cw.market.ticket_minted(done)
    (ticket,) = TicketGate(cw.chain, cw.gate.address).tickets(client.address)
    assert ticket.ticket_id == ticket_id and not ticket.used
    gate = TicketGate(cw.chain, cw.gate.address)
    with pytest.raises(TicketError, match="not the payer of this ticket"):
        gate.give_feedback(evaluator.account_for_deploy(), ticket, agent_id, 100)
    gate.give_feedback(client.account_for_deploy(), ticket, agent_id, 90)
    assert gate.tickets(client.address)[0].used
    with pytest.raises(TicketError, match=r"^cannot use ticket 1: gate: ticket already used$"):
        gate.give_feedback(client.account_for_deploy(), ticket, agent_id, 90)
    index, follower = _index(cw)
    follower.sync()
    (row,) = index.feedback(agent_id)
    assert (row["client"], row["proven"], row["payment_tx"]) == (cw.gate.address, 1, "ticket:1")
