"""The Python client over web3 on the embedded chain: every movement of a wallet's money is an
EIP-3009 authorization signed inside ``Wallet.spend`` (policy, ledger, key), and every refusal
of the contracts is a typed error with a one-line message, raised before anything is signed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chain_world import FEE, PERIODS, UNBOND, USDC, ChainWorld

from agentbazaar.chain import Chain
from agentbazaar.errors import PolicyViolation
from agentbazaar.jobs import (
    AlreadyDone,
    JobInputError,
    NotAllowed,
    StakeLocked,
    TooLate,
    model,
    parse_deliverable,
)
from agentbazaar.wallet import SpendingPolicy, TokenLimits, Wallet

BUDGET = 5 * USDC


@pytest.fixture
def cw(tmp_path: Path) -> ChainWorld:
    return ChainWorld(Chain.embedded(), tmp_path)


def _job(
    cw: ChainWorld, policy: SpendingPolicy | None = None, **kwargs: Any
) -> tuple[int, Wallet, Wallet, Wallet]:
    client = cw.wallet("client", BUDGET + FEE, policy)
    provider, evaluator = cw.wallet("provider", FEE), cw.wallet("evaluator")
    job_id, _ = cw.market.create(
        client, provider=provider.address, evaluator=evaluator.address, budget=BUDGET,
        expires_in=7_200, description="summarise the report", **kwargs,
    )  # fmt: skip
    return job_id, client, provider, evaluator


def test_a_job_s_whole_life_through_the_client(cw: ChainWorld) -> None:
    job_id, client, provider, evaluator = _job(cw)
    assert cw.market.job(job_id).state == "open"
    assert cw.market.description(job_id) == "summarise the report"
    funded = cw.market.fund(client, job_id)
    rows = cw.ledger.records(wallet="client")
    assert [(r.kind, r.status, r.amount, r.counterparty) for r in rows] == [
        ("job", "settled", BUDGET + FEE, provider.address)
    ]
    assert rows[0].tx_hash == funded.tx_hash
    cw.market.submit(provider, job_id, parse_deliverable("the summary"))
    done = cw.market.complete(evaluator, job_id)
    job = cw.market.job(job_id)
    assert (job.state, job.held, job.deliverable) == ("completed", 0, parse_deliverable("the summary"))  # fmt: skip
    assert cw.balance(provider) == FEE + BUDGET and cw.balance(client) == FEE
    assert cw.market.ticket_minted(done) == 1
    assert [j.job_id for j in cw.market.jobs(involving=provider.address)] == [job_id]


def test_the_policy_refuses_funding_before_anything_is_signed(cw: ChainWorld) -> None:
    token = str(cw.usdc.address).lower()
    strict = SpendingPolicy(tokens={token: TokenLimits("USDC", 6, max_per_payment=BUDGET)})
    job_id, client, _p, _e = _job(cw, strict)  # budget + bond is over the maximum
    with pytest.raises(PolicyViolation, match="per-payment maximum"):
        cw.market.fund(client, job_id)
    assert cw.market.job(job_id).status == model.OPEN
    assert cw.balance(client) == BUDGET + FEE
    assert all(r.status == "failed" for r in cw.ledger.records(wallet="client"))


def test_funding_twice_is_refused_and_pays_once(cw: ChainWorld) -> None:
    job_id, client, _p, _e = _job(cw)
    cw.market.fund(client, job_id)
    cw.mint(client.address, BUDGET + FEE)
    with pytest.raises(AlreadyDone, match=rf"^cannot fund job {job_id}: already funded$"):
        cw.market.fund(client, job_id)
    assert len(cw.ledger.records(wallet="client")) == 1
    assert cw.balance(client) == BUDGET + FEE


def test_refusals_are_typed_one_line_errors(cw: ChainWorld) -> None:
    job_id, client, provider, evaluator = _job(cw)
    cw.market.fund(client, job_id)
    with pytest.raises(NotAllowed, match="only the provider submits"):
        cw.market.submit(client, job_id, parse_deliverable("x"))
    cw.market.submit(provider, job_id, parse_deliverable("x"))
    with pytest.raises(NotAllowed, match=r"^cannot complete job 1: only the evaluator completes or rejects this job$"):  # fmt: skip
        cw.market.complete(client, job_id)
    with pytest.raises(JobInputError, match="only job 1's provider"):
        cw.market.dispute_job(client, job_id)
    cw.chain.advance_time(7_200)
    with pytest.raises(TooLate, match="expired: the evaluator's time is over"):
        cw.market.reject(evaluator, job_id)
    cw.chain.advance_time(PERIODS[0])
    with pytest.raises(TooLate, match=r"^cannot dispute job 1: dispute window closed$"):
        cw.market.dispute_job(provider, job_id)
    assert not [r for r in cw.ledger.records(wallet="provider")]  # nothing was signed
    cw.market.claim_refund(evaluator, job_id)  # anyone may
    assert cw.balance(client) == BUDGET + FEE


def test_submitting_after_expiry_is_too_late(cw: ChainWorld) -> None:
    job_id, client, provider, _e = _job(cw)
    cw.market.fund(client, job_id)
    cw.chain.advance_time(7_200)
    with pytest.raises(TooLate, match=r"^cannot submit job 1: expired: submissions are closed$"):
        cw.market.submit(provider, job_id, parse_deliverable("late"))


def test_a_dispute_through_the_client_with_commit_reveal_votes(cw: ChainWorld) -> None:
    validators = [cw.wallet(f"v{i}", 50 * USDC) for i in range(4)]
    for v in validators:
        cw.staking.bond(v, 50 * USDC, model.ROLE_VALIDATOR)
    job_id, client, provider, evaluator = _job(cw)
    cw.market.fund(client, job_id)
    cw.market.submit(provider, job_id, parse_deliverable("good work"))
    cw.market.reject(evaluator, job_id)
    cw.market.dispute_job(provider, job_id)
    fee_row = cw.ledger.records(wallet="provider")[0]
    assert (fee_row.kind, fee_row.status, fee_row.amount) == ("job", "settled", FEE)
    cw.chain.mine(3)
    cw.market.draw_committee(client, job_id)
    committee = cw.market.dispute(job_id).committee
    members = [w for w in validators if w.address in committee]
    assert len(members) == 3
    for w in members:
        cw.market.commit_vote(w, job_id, "provider")
    with pytest.raises(AlreadyDone, match="already voted"):
        cw.market.commit_vote(members[0], job_id, "client")
    for w in members:
        vote, _ = cw.market.reveal_vote(w, job_id)
        assert vote == model.VOTE_PROVIDER
    with pytest.raises(AlreadyDone, match="already voted"):
        cw.market.reveal_vote(members[0], job_id)
    cw.market.resolve_dispute(client, job_id)
    assert cw.market.job(job_id).state == "completed"
    assert cw.balance(provider) == BUDGET + FEE + FEE % 3


def test_stake_is_bonded_through_the_ledger_and_locked_by_a_dispute(cw: ChainWorld) -> None:
    validators = [cw.wallet(f"v{i}", 50 * USDC) for i in range(3)]
    for v in validators:
        cw.staking.bond(v, 50 * USDC, model.ROLE_VALIDATOR)
    row = cw.ledger.records(wallet="v0")[0]
    assert (row.kind, row.status, row.amount) == ("stake", "settled", 50 * USDC)
    assert validators[0].escrowed()[str(cw.usdc.address).lower()] == 50 * USDC
    info = cw.staking.info(validators[0].address)
    assert (info.validator, info.role_names, info.bonded) == (True, ["validator"], 50 * USDC)
    job_id, client, provider, evaluator = _job(cw)
    cw.market.fund(client, job_id)
    cw.market.submit(provider, job_id, parse_deliverable("w"))
    cw.market.reject(evaluator, job_id)
    cw.market.dispute_job(provider, job_id)
    cw.chain.mine(3)
    cw.market.draw_committee(client, job_id)
    with pytest.raises(StakeLocked, match=r"^cannot unbond stake: in an open dispute"):
        cw.staking.request_unbond(validators[0], USDC)
    cw.chain.advance_time(PERIODS[2] + PERIODS[3])
    cw.market.resolve_dispute(client, job_id)  # nobody voted: void, every member slashed 10%
    assert cw.staking.info(validators[0].address).bonded == 45 * USDC
    cw.staking.request_unbond(validators[0], 45 * USDC)
    cw.chain.advance_time(UNBOND)
    amount, _ = cw.staking.withdraw(validators[0])
    assert amount == 45 * USDC and cw.balance(validators[0]) == 45 * USDC
    # the ledger: 45 came back, the slashed 5 stays counted as never returned
    assert validators[0].escrowed()[str(cw.usdc.address).lower()] == 5 * USDC
