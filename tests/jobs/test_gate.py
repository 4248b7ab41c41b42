"""Paid-only feedback enforced on chain: tickets minted at settlement (a completed job, an x402
`exact` payment relayed through the gate), each consumed by exactly one feedback, written to the
unchanged ERC-8004 ReputationRegistry with the gate as its client."""

from __future__ import annotations

import os

import boa
from escrow_world import DAY, USDC, World
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from agentbazaar.jobs import model

BUDGET = 10 * USDC
TRANSFER_TYPES = {"TransferWithAuthorization": model.RECEIVE_TYPES["ReceiveWithAuthorization"]}


def _agent(world: World, owner: LocalAccount) -> int:
    with boa.env.prank(owner.address):
        return int(world.identity.register("data:,agent"))


def _completed_job(world: World) -> tuple[LocalAccount, LocalAccount, int]:
    job_id, client, provider, evaluator = world.new_job(BUDGET)
    world.submit(job_id, provider)
    world.complete(job_id, evaluator)
    return client, provider, int(world.gate.ticketCount())


def _feedback(world: World, payer: LocalAccount, ticket: int, payee: str, amount: int, agent_id: int, value: int = 90) -> int:  # fmt: skip
    args = (ticket, payee, amount, agent_id, value, 0, "quality", "", "", "data:,fb", b"\0" * 32)
    with boa.env.prank(payer.address):
        return int(world.gate.giveFeedback(*args))


def test_a_completed_job_s_ticket_buys_exactly_one_feedback(world: World) -> None:
    client, provider, ticket = _completed_job(world)
    agent_id = _agent(world, provider)
    assert world.gate.ticketState(ticket) == 1
    index = _feedback(world, client, ticket, provider.address, BUDGET, agent_id)
    assert world.gate.ticketState(ticket) == 2
    assert tuple(world.gate.feedbackTicket(agent_id, index)) == (ticket, client.address, BUDGET)
    # the registry's own paid-only summary: the gate is the one client of ticketed feedback
    count, value, decimals = world.reputation.getSummary(agent_id, [world.gate.address], "", "")
    assert (count, value, decimals) == (1, 90, 0)
    assert world.reputation.readFeedback(agent_id, world.gate.address, index)[0] == 90
    with boa.reverts("gate: ticket already used"):
        _feedback(world, client, ticket, provider.address, BUDGET, agent_id)


def test_tickets_cannot_be_used_by_others_or_for_other_agents_or_amounts(world: World) -> None:
    client, provider, ticket = _completed_job(world)
    agent_id = _agent(world, provider)
    other_agent = _agent(world, world.account())
    stranger = world.account()
    with boa.reverts("gate: not the payer of this ticket, or wrong payee or amount"):
        _feedback(world, stranger, ticket, provider.address, BUDGET, agent_id)
    with boa.reverts("gate: not the payer of this ticket, or wrong payee or amount"):
        _feedback(world, client, ticket, provider.address, BUDGET * 10, agent_id)  # a bigger claim
    with boa.reverts("gate: the ticket paid another address than this agent's"):
        _feedback(world, client, ticket, provider.address, BUDGET, other_agent)
    with boa.reverts("gate: no such ticket"):
        _feedback(world, client, 999, provider.address, BUDGET, agent_id)
    with boa.reverts("gate: only a settlement contract mints tickets"):
        world.gate.mintTicket(client.address, provider.address, 1)


def test_the_agent_cannot_review_itself_through_a_ticket(world: World) -> None:
    owner, operator = world.account(), world.account()
    agent_id = _agent(world, owner)
    with boa.env.prank(owner.address):
        world.identity.setApprovalForAll(operator.address, True)
    with boa.env.prank(world.escrow.address):  # a settlement: the operator paid the owner
        ticket = int(world.gate.mintTicket(operator.address, owner.address, 5))
    with boa.reverts("gate: self-feedback not allowed"):
        _feedback(world, operator, ticket, owner.address, 5, agent_id)


def test_an_x402_payment_relayed_through_the_gate_mints_a_ticket(world: World) -> None:
    payer, seller = world.account(usdc=3 * USDC), world.account()
    agent_id = _agent(world, seller)
    nonce = os.urandom(32)
    message = {
        "from": payer.address, "to": seller.address, "value": 2 * USDC, "validAfter": 0,
        "validBefore": world.now + DAY, "nonce": nonce,
    }  # fmt: skip
    sig = bytes(payer.sign_message(encode_typed_data(world.domain, TRANSFER_TYPES, message)).signature)  # fmt: skip
    args = (payer.address, seller.address, 2 * USDC, 0, world.now + DAY, nonce, sig)
    ticket = int(world.gate.settleAndMint(*args))  # anyone may relay the signed payment
    assert world.balance(seller) == 2 * USDC and world.balance(payer) == USDC
    assert world.gate.ticketMatches(ticket, payer.address, seller.address, 2 * USDC)
    with boa.reverts("authorization is used or canceled"):  # one payment, one ticket
        world.gate.settleAndMint(*args)
    _feedback(world, payer, ticket, seller.address, 2 * USDC, agent_id, value=70)
    assert world.reputation.getSummary(agent_id, [world.gate.address], "", "")[:2] == (1, 70)


def test_a_payment_settled_elsewhere_cannot_mint_a_ticket(world: World) -> None:
    payer, seller = world.account(usdc=USDC), world.account()
    nonce = os.urandom(32)
    message = {
        "from": payer.address, "to": seller.address, "value": USDC, "validAfter": 0,
        "validBefore": world.now + DAY, "nonce": nonce,
    }  # fmt: skip
    sig = bytes(payer.sign_message(encode_typed_data(world.domain, TRANSFER_TYPES, message)).signature)  # fmt: skip
    args = (payer.address, seller.address, USDC, 0, world.now + DAY, nonce)
    world.usdc.transferWithAuthorization(
        *args, *(sig[64], sig[:32], sig[32:64])
    )  # settled directly
    with boa.reverts("authorization is used or canceled"):
        world.gate.settleAndMint(*args, sig)
    with boa.reverts("gate: the payer is the payee"):
        world.gate.settleAndMint(payer.address, payer.address, 1, 0, world.now + DAY, nonce, sig)


def test_only_the_payer_revokes_its_ticketed_feedback(world: World) -> None:
    client, provider, ticket = _completed_job(world)
    agent_id = _agent(world, provider)
    index = _feedback(world, client, ticket, provider.address, BUDGET, agent_id)
    with (
        boa.env.prank(provider.address),
        boa.reverts("gate: only the payer who gave it revokes it"),
    ):
        world.gate.revokeFeedback(agent_id, index)
    with boa.env.prank(client.address):
        with boa.reverts("gate: no feedback of the gate at this index"):
            world.gate.revokeFeedback(agent_id, index + 1)
        world.gate.revokeFeedback(agent_id, index)
    assert world.reputation.readFeedback(agent_id, world.gate.address, index)[4] is True
    assert world.reputation.getSummary(agent_id, [world.gate.address], "", "")[0] == 0
