"""The job escrow on a real EVM: every path of a job's life, partial payment, a validator's
ValidationRegistry response as the verdict, and every bad input reverting with its reason."""

from __future__ import annotations

import boa
import pytest
from escrow_world import DAY, USDC, World, mine
from eth_utils.crypto import keccak

from agentbazaar.jobs import model

BUDGET = 10 * USDC


def test_whole_life_pays_the_provider_and_returns_the_bond(world: World) -> None:
    job_id, client, provider, evaluator = world.new_job(BUDGET)
    job = world.job(job_id)
    assert (job.status, job.held) == (model.FUNDED, BUDGET + world.fee)
    assert world.balance(client) == 0 and world.balance(world.escrow) == BUDGET + world.fee
    world.submit(job_id, provider, keccak(b"report"))
    assert world.job(job_id).deliverable == keccak(b"report")
    world.complete(job_id, evaluator)
    job = world.job(job_id)
    assert (job.status, job.held) == (model.COMPLETED, 0)
    assert world.balance(provider) == BUDGET + world.fee  # its own fee money was never touched
    assert world.balance(client) == world.fee  # the dispute bond came back
    assert world.balance(world.escrow) == 0
    assert world.gate.ticketCount() == 1
    assert world.gate.ticketMatches(1, client.address, provider.address, BUDGET)


def test_partial_completion_pays_in_proportion(world: World) -> None:
    job_id, client, provider, evaluator = world.new_job(BUDGET, partial=True)
    world.submit(job_id, provider)
    world.complete(job_id, evaluator, paid_bps=2_500)
    assert world.balance(provider) == world.fee + BUDGET // 4
    assert world.balance(client) == BUDGET - BUDGET // 4 + world.fee
    assert world.gate.ticketMatches(1, client.address, provider.address, BUDGET // 4)


def test_all_or_nothing_job_refuses_a_partial_payment(world: World) -> None:
    job_id, _client, provider, evaluator = world.new_job(BUDGET)
    world.submit(job_id, provider)
    with boa.reverts("job: this job pays all or nothing"):
        world.complete(job_id, evaluator, paid_bps=5_000)
    with boa.reverts("job: paidBps is 1 to 10000"):
        world.complete(job_id, evaluator, paid_bps=10_001)


def test_evaluator_rejects_before_submission_refunds_at_once(world: World) -> None:
    job_id, client, _provider, evaluator = world.new_job(BUDGET)
    world.reject(job_id, evaluator)
    job = world.job(job_id)
    assert (job.status, job.held) == (model.REJECTED, 0)
    assert world.balance(client) == BUDGET + world.fee


def test_rejected_submission_is_held_for_the_dispute_window(world: World) -> None:
    job_id, client, provider, evaluator = world.new_job(BUDGET)
    world.submit(job_id, provider)
    world.reject(job_id, evaluator)
    job = world.job(job_id)
    assert (job.status, job.held, job.state) == (model.REJECTED, BUDGET + world.fee, "rejected (disputable)")  # fmt: skip
    with boa.reverts("job: the provider may dispute the rejection until its window closes"):
        world.escrow.claimRefund(job_id)
    boa.env.time_travel(seconds=world.periods[0])
    world.escrow.claimRefund(job_id)  # anyone
    assert world.balance(client) == BUDGET + world.fee
    assert world.job(job_id).held == 0
    with boa.reverts("job: nothing to refund"):
        world.escrow.claimRefund(job_id)


def test_expired_funded_job_refunds_the_client_to_anyone_calling(world: World) -> None:
    job_id, client, _provider, _evaluator = world.new_job(BUDGET, duration=HOUR_2)
    with boa.reverts("job: not expired yet"):
        world.escrow.claimRefund(job_id)
    boa.env.time_travel(seconds=HOUR_2)
    assert world.job(job_id).state == "expired"
    with boa.env.prank(boa.env.generate_address("stranger")):
        world.escrow.claimRefund(job_id)
    assert world.job(job_id).status == model.EXPIRED
    assert world.balance(client) == BUDGET + world.fee


def test_unanswered_submission_refunds_after_the_window_past_expiry(world: World) -> None:
    job_id, client, provider, _evaluator = world.new_job(BUDGET, duration=HOUR_2)
    world.submit(job_id, provider)
    boa.env.time_travel(seconds=HOUR_2)
    assert world.job(job_id).state == "unanswered"
    with boa.reverts("job: unanswered: the provider may dispute until the window after expiry closes"):  # fmt: skip
        world.escrow.claimRefund(job_id)
    boa.env.time_travel(seconds=world.periods[0])
    world.escrow.claimRefund(job_id)
    assert world.balance(client) == BUDGET + world.fee


def test_open_job_can_be_withdrawn_by_the_client_and_set_up_later(world: World) -> None:
    client, provider = world.account(), world.account()
    job_id = world.create(client, "0x" + "00" * 20, client, 0)
    with boa.reverts("job: no provider yet"):
        world.fund(job_id, client)
    with boa.env.prank(client.address):
        world.escrow.setProvider(job_id, provider.address)
        with boa.reverts("job: the provider is already set"):
            world.escrow.setProvider(job_id, provider.address)
    with boa.reverts("job: zero budget"):
        world.fund(job_id, client)
    with boa.env.prank(provider.address):
        world.escrow.setBudget(job_id, 5 * USDC)  # the provider proposes a price
    assert world.job(job_id).budget == 5 * USDC
    with boa.reverts("job: only the client rejects an open job"):
        world.reject(job_id, provider)
    world.reject(job_id, client)
    assert world.job(job_id).status == model.REJECTED
    with boa.reverts("job: closed"):
        world.fund(job_id, client)


def test_validator_verdict_on_the_validation_registry_completes_the_job(world: World) -> None:
    validator = world.account()
    job_id, client, provider, _ = world.new_job(BUDGET)
    with boa.env.prank(client.address):  # make the validator the evaluator: a fresh job
        job_id = world.escrow.createJob(provider.address, validator.address, world.now + DAY, "v", BUDGET, False)  # fmt: skip
    world.mint(client.address, BUDGET + world.fee)
    world.fund(job_id, client)
    agent_id = _register(world, provider)
    deliverable = keccak(b"embedding vectors")
    world.submit(job_id, provider, deliverable)
    request = world.escrow.verdictRequestHash(job_id)
    assert request == model.verdict_request_hash(boa.env.evm.patch.chain_id, world.escrow.address, job_id, deliverable)  # fmt: skip
    with boa.reverts("validation: unknown requestHash"):
        world.escrow.settleFromValidation(job_id)
    with boa.env.prank(provider.address):
        world.validation.validationRequest(validator.address, agent_id, "data:,evidence", request)
    with boa.reverts("job: the evaluator has not answered yet"):
        world.escrow.settleFromValidation(job_id)
    with boa.env.prank(validator.address):
        world.validation.validationResponse(request, 100, "", b"\x07" * 32, "job")
    world.escrow.settleFromValidation(job_id)
    assert world.job(job_id).status == model.COMPLETED
    assert world.balance(provider) == world.fee + BUDGET


def test_failing_verdict_rejects_and_partial_verdict_pays_its_percentage(world: World) -> None:
    validator, provider = world.account(), world.account(usdc=world.fee)
    agent_id = _register(world, provider)
    outcomes = {}
    for partial, score in ((False, 30), (True, 60)):
        client = world.account(usdc=BUDGET + world.fee)
        job_id = world.create(client, provider, validator, BUDGET, partial=partial)
        world.fund(job_id, client)
        world.submit(job_id, provider, keccak(f"work {score}".encode()))
        request = world.escrow.verdictRequestHash(job_id)
        with boa.env.prank(provider.address):
            world.validation.validationRequest(validator.address, agent_id, "", request)
        with boa.env.prank(validator.address):
            world.validation.validationResponse(request, score, "", b"\0" * 32, "job")
        world.escrow.settleFromValidation(job_id)
        outcomes[score] = (world.job(job_id).status, world.balance(client))
    assert outcomes[30] == (model.REJECTED, 0)  # held for the dispute window
    assert outcomes[60] == (model.COMPLETED, BUDGET * 40 // 100 + world.fee)


def test_a_verdict_by_someone_else_than_the_evaluator_is_refused(world: World) -> None:
    job_id, _client, provider, _evaluator = world.new_job(BUDGET)
    other = world.account()
    agent_id = _register(world, provider)
    world.submit(job_id, provider)
    request = world.escrow.verdictRequestHash(job_id)
    with boa.env.prank(provider.address):
        world.validation.validationRequest(other.address, agent_id, "", request)
    with boa.env.prank(other.address):
        world.validation.validationResponse(request, 100, "", b"\0" * 32, "job")
    with boa.reverts("job: the validation was not asked of this job's evaluator"):
        world.escrow.settleFromValidation(job_id)


# ---- the bad inputs: each reverts with a reason ------------------------------------------
def test_funding_twice_reverts(world: World) -> None:
    job_id, client, _provider, _evaluator = world.new_job(BUDGET)
    world.mint(client.address, BUDGET + world.fee)
    for salt in (b"\0" * 32, b"\2" * 32):  # the same authorization again, or a new one
        with boa.reverts("job: already funded"):
            world.fund(job_id, client, salt=salt)
    assert world.balance(client) == BUDGET + world.fee  # nothing taken twice


def test_submitting_after_expiry_reverts(world: World) -> None:
    job_id, _client, provider, _evaluator = world.new_job(BUDGET, duration=HOUR_2)
    boa.env.time_travel(seconds=HOUR_2)
    with boa.reverts("job: expired: submissions are closed"):
        world.submit(job_id, provider)


def test_completing_a_job_one_is_not_the_evaluator_of_reverts(world: World) -> None:
    job_id, client, provider, _evaluator = world.new_job(BUDGET)
    world.submit(job_id, provider)
    for who in (client, provider, world.account()):
        with boa.reverts("job: only the evaluator completes or rejects this job"):
            world.complete(job_id, who)


def test_other_bad_calls_revert_with_reasons(world: World) -> None:
    client, provider, evaluator = world.account(), world.account(), world.account()
    with boa.env.prank(client.address):
        with boa.reverts("job: zero evaluator"):
            world.escrow.createJob(provider.address, "0x" + "00" * 20, world.now + DAY, "", 1, False)  # fmt: skip
        with boa.reverts("job: expiry must be in the future"):
            world.escrow.createJob(provider.address, evaluator.address, world.now, "", 1, False)
        with boa.reverts("job: expiry more than a year ahead"):
            world.escrow.createJob(provider.address, evaluator.address, world.now + 400 * DAY, "", 1, False)  # fmt: skip
        with boa.reverts("job: the client cannot be its own provider"):
            world.escrow.createJob(client.address, evaluator.address, world.now + DAY, "", 1, False)  # fmt: skip
        with boa.reverts("job: budget too large"):
            world.escrow.createJob(provider.address, evaluator.address, world.now + DAY, "", 2**129, False)  # fmt: skip
    with boa.reverts("job: no such job"):
        world.escrow.getJob(999)
    job_id = world.create(client, provider, evaluator, BUDGET)
    with boa.reverts("job: only the provider submits"):
        world.submit(job_id, client)
    with boa.reverts("job: not funded"):
        world.submit(job_id, provider)
    world.mint(client.address, BUDGET)  # one fee short
    with boa.reverts("erc20: transfer amount exceeds balance"):
        world.fund(job_id, client)
    world.mint(client.address, world.fee)
    world.fund(job_id, client)
    with boa.reverts("job: nothing submitted to complete"):
        world.complete(job_id, evaluator)
    with boa.reverts("job: empty deliverable"):
        world.submit(job_id, provider, b"\0" * 32)
    world.submit(job_id, provider)
    with boa.reverts("job: already submitted"):
        world.submit(job_id, provider)
    with boa.reverts("job: not answered yet: the evaluator has until expiry"):
        world.dispute(job_id, provider)


def test_a_signature_for_one_job_cannot_fund_another(world: World) -> None:
    client, provider, evaluator = world.account(usdc=2 * (BUDGET + world.fee)), world.account(), world.account()  # fmt: skip
    first = world.create(client, provider, evaluator, BUDGET)
    second = world.create(client, provider, evaluator, BUDGET)
    nonce = model.fund_nonce(world.escrow.address, first, b"\0" * 32)
    assert world.escrow.fundNonce(first, b"\0" * 32) == nonce
    sig = world.sign_receive(client, world.escrow.address, BUDGET + world.fee, nonce)
    with boa.reverts("invalid signature"):  # relayed for the other job: the nonce differs
        world.escrow.fundWithAuthorization(second, 0, world.now + DAY, b"\0" * 32, sig)
    world.escrow.fundWithAuthorization(first, 0, world.now + DAY, b"\0" * 32, sig)
    assert world.job(first).status == model.FUNDED and world.job(second).status == model.OPEN


def test_jobs_without_a_gate_mint_no_ticket() -> None:
    w = World(gate_enabled=False)
    job_id, _client, provider, evaluator = w.new_job(BUDGET)
    w.submit(job_id, provider)
    w.complete(job_id, evaluator)
    assert w.job(job_id).status == model.COMPLETED and w.gate.ticketCount() == 0


HOUR_2 = 2 * 3_600


def _register(world: World, owner: object) -> int:
    with boa.env.prank(owner.address):  # type: ignore[attr-defined]
        return int(world.identity.register("data:,agent"))


@pytest.fixture(autouse=True)
def _fresh_blocks() -> None:
    mine(1)
