"""Disputes on a real EVM: a committee drawn from a future block hash re-checks the work and
votes by commit-reveal; honest and dishonest committees, void disputes, the 256-block limit, and
the bad inputs (disputing outside the window, voting twice) reverting with their reasons."""

from __future__ import annotations

import boa
from escrow_world import MIN_VALIDATOR, USDC, World, mine
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agentbazaar.jobs import model

BUDGET = 10 * USDC
P, C = model.VOTE_PROVIDER, model.VOTE_CLIENT
SLASH = MIN_VALIDATOR // 10


def _rejected(world: World, provider_stake: int = 0) -> tuple[int, LocalAccount, LocalAccount]:
    """A job whose submission the evaluator rejected: (id, client, provider)."""
    job_id, client, provider, evaluator = world.new_job(BUDGET)
    if provider_stake:
        world.bond(provider, provider_stake, model.ROLE_PROVIDER)
    world.submit(job_id, provider, keccak(b"good work"))
    world.reject(job_id, evaluator)
    return job_id, client, provider


def _disputed(world: World, validators: int = 5, provider_stake: int = 0) -> tuple[int, LocalAccount, LocalAccount, list[str]]:  # fmt: skip
    world.validators(validators)
    job_id, client, provider = _rejected(world, provider_stake)
    world.dispute(job_id, provider)
    committee = world.draw(job_id)
    return job_id, client, provider, committee


def test_honest_committee_pays_the_provider_whose_work_was_wrongly_rejected(world: World) -> None:
    job_id, client, provider, committee = _disputed(world)
    assert len(committee) == 3 and len(set(committee)) == 3
    before = {m: world.stake_of(m)[0] for m in committee}
    world.vote_all(job_id, dict.fromkeys(committee, P))
    world.escrow.resolveDispute(job_id)
    job = world.job(job_id)
    assert (job.status, job.held) == (model.COMPLETED, 0)
    # paid, its fee back, and the remainder of the bond's division by three
    assert world.balance(provider) == BUDGET + world.fee + world.fee % 3
    assert world.balance(client) == 0  # its bond paid the committee
    for m in committee:  # the client's bond, split equally (remainder to the winner)
        assert world.balance(m) == world.fee // 3
        assert world.stake_of(m)[0] == before[m]
    assert world.balance(world.escrow) == 0
    assert world.gate.ticketMatches(1, client.address, provider.address, BUDGET)


def test_honest_committee_refunds_the_client_and_slashes_the_provider(world: World) -> None:
    job_id, client, provider, committee = _disputed(world, provider_stake=20 * USDC)
    world.vote_all(job_id, dict.fromkeys(committee, C))
    world.escrow.resolveDispute(job_id)
    job = world.job(job_id)
    assert (job.status, job.held) == (model.REJECTED, 0)
    provider_slash = 20 * USDC * 2_000 // 10_000
    assert world.stake_of(provider)[0] == 20 * USDC - provider_slash
    pool = world.fee + provider_slash
    for m in committee:
        assert world.balance(m) == pool // 3
    assert world.balance(client) == BUDGET + world.fee + pool % 3  # the division's remainder
    assert world.balance(world.escrow) == 0


def test_dishonest_majority_wins_the_vote_but_the_honest_minority_is_slashed(world: World) -> None:
    """The contract cannot know the truth: a bribed majority decides, and the member who voted
    against it pays. What protects the provider is that the committee is drawn at random from
    all staked validators, so a majority is expensive to capture."""
    job_id, client, _provider, committee = _disputed(world)
    honest, *liars = committee
    world.vote_all(job_id, {honest: P, liars[0]: C, liars[1]: C})
    world.escrow.resolveDispute(job_id)
    assert world.job(job_id).status == model.REJECTED
    assert world.balance(client) == BUDGET + world.fee
    assert world.stake_of(honest)[0] == MIN_VALIDATOR - SLASH
    for liar in liars:
        assert world.stake_of(liar)[0] == MIN_VALIDATOR
        assert world.balance(liar) == (world.fee + SLASH) // 2
    assert world.stake.isValidator(honest) is False  # fell below the minimum: unlisted


def test_members_who_do_not_reveal_are_slashed_and_unpaid(world: World) -> None:
    job_id, _client, provider, committee = _disputed(world)
    a, b, c = committee
    world.vote_all(job_id, {a: P, b: P, c: -C})  # c commits but never reveals
    world.escrow.resolveDispute(job_id)
    assert world.job(job_id).status == model.COMPLETED
    assert world.stake_of(c)[0] == MIN_VALIDATOR - SLASH
    assert world.balance(a) == world.balance(b) == (world.fee + SLASH) // 2
    assert world.balance(c) == 0
    assert world.balance(provider) == BUDGET + world.fee + (world.fee + SLASH) % 2


def test_no_votes_is_void_and_the_status_quo_stands(world: World) -> None:
    job_id, client, provider, committee = _disputed(world)
    world.vote_all(job_id, dict.fromkeys(committee, 0))
    world.escrow.resolveDispute(job_id)
    assert world.job(job_id).status == model.REJECTED
    assert world.balance(client) == BUDGET + world.fee + 3 * SLASH  # slashes go to the status quo
    assert world.balance(provider) == world.fee  # its fee back
    assert all(world.stake_of(m)[0] == MIN_VALIDATOR - SLASH for m in committee)


def test_no_committee_within_the_draw_period_is_void(world: World) -> None:
    world.validators(2)  # fewer than the committee needs
    job_id, client, provider = _rejected(world)
    world.dispute(job_id, provider)
    mine(3)
    with boa.reverts("dispute: not enough listed validators"):
        world.escrow.drawCommittee(job_id)
    with boa.reverts("dispute: committee not drawn yet"):
        world.escrow.resolveDispute(job_id)
    boa.env.time_travel(seconds=world.periods[1])
    with boa.reverts("dispute: draw period over: resolve it"):
        world.escrow.drawCommittee(job_id)
    world.escrow.resolveDispute(job_id)
    assert world.balance(client) == BUDGET + world.fee and world.balance(provider) == world.fee
    assert world.stake_of(provider)[4] == 0  # unlocked


def test_unanswered_job_disputed_after_expiry(world: World) -> None:
    world.validators(4)
    job_id, _client, provider, _evaluator = world.new_job(BUDGET, duration=7_200)
    world.submit(job_id, provider)
    boa.env.time_travel(seconds=7_200)
    world.dispute(job_id, provider)
    committee = world.draw(job_id)
    world.vote_all(job_id, dict.fromkeys(committee, P))
    world.escrow.resolveDispute(job_id)
    assert world.job(job_id).status == model.COMPLETED
    assert world.balance(provider) == BUDGET + world.fee + world.fee % 3


def test_committee_comes_from_the_seed_block_hash_and_excludes_the_parties(world: World) -> None:
    validators = world.validators(6)
    job_id, client, provider = _rejected(world)
    world.dispute(job_id, provider)
    with boa.reverts("dispute: seed block not mined yet"):
        world.escrow.drawCommittee(job_id)
    seed_block = int(world.escrow.getDispute(job_id)[0])
    committee = world.draw(job_id)
    seed = keccak(b"block" + seed_block.to_bytes(32, "big"))  # the hash mine() gave that block
    n = int(world.stake.validatorCount())
    expected: list[str] = []
    for i in range(64):
        member = str(world.stake.validatorAt(int.from_bytes(keccak(seed + i.to_bytes(32, "big")), "big") % n))  # fmt: skip
        if member not in expected and member not in (client.address, provider.address):
            expected.append(member)
        if len(expected) == 3:
            break
    assert committee == expected
    assert set(committee) <= {v.address for v in validators}
    with boa.reverts("dispute: committee already drawn"):
        world.escrow.drawCommittee(job_id)


def test_a_seed_block_older_than_256_blocks_is_replaced_by_a_new_future_block(world: World) -> None:
    world.validators(3)
    job_id, _client, provider = _rejected(world)
    world.dispute(job_id, provider)
    old = int(world.escrow.getDispute(job_id)[0])
    mine(260)  # nobody drew in time (within the draw period): the hash is gone
    world.escrow.drawCommittee(job_id)
    dispute = world.escrow.getDispute(job_id)
    assert int(dispute[0]) > old and len(dispute[4]) == 0  # re-committed, not drawn
    committee = world.draw(job_id)
    assert len(committee) == 3


def test_locked_stake_cannot_be_unbonded_while_the_dispute_is_open(world: World) -> None:
    job_id, _client, provider, committee = _disputed(world, provider_stake=20 * USDC)
    for who in (provider.address, committee[0]):
        assert world.stake_of(who)[4] == 1
        with boa.env.prank(who), boa.reverts("stake: in an open dispute: unbonding waits until it is resolved"):  # fmt: skip
            world.stake.requestUnbond(1)
    world.vote_all(job_id, dict.fromkeys(committee, P))
    world.escrow.resolveDispute(job_id)
    for who in (provider.address, committee[0]):
        assert world.stake_of(who)[4] == 0
        with boa.env.prank(who):
            world.stake.requestUnbond(1)


# ---- bad inputs ----------------------------------------------------------------------------------
def test_disputing_outside_the_window_reverts(world: World) -> None:
    job_id, _client, provider = _rejected(world)
    boa.env.time_travel(seconds=world.periods[0])
    with boa.reverts("job: dispute window closed"):
        world.dispute(job_id, provider)
    completed, _c, p2, e2 = world.new_job(BUDGET)
    world.submit(completed, p2)
    world.complete(completed, e2)
    with boa.reverts("job: only a rejected or unanswered submission can be disputed"):
        world.dispute(completed, p2)


def test_a_validator_voting_twice_reverts(world: World) -> None:
    job_id, _client, _provider, committee = _disputed(world)
    member = committee[0]
    salt = world.commit(job_id, member, P)
    with boa.reverts("dispute: already voted"):
        world.commit(job_id, member, C)
    for other in committee[1:]:
        world.commit(job_id, other, P)
    world.reveal(job_id, member, P, salt)
    with boa.reverts("dispute: already voted"):
        world.reveal(job_id, member, P, salt)


def test_commit_reveal_rules(world: World) -> None:
    job_id, _client, _provider, committee = _disputed(world)
    a, b, c = committee
    stranger = world.account().address
    with boa.reverts("dispute: not on this committee"):
        world.commit(job_id, stranger, P)
    world.commit(job_id, a, P)
    with boa.reverts("dispute: reveals open when every member committed or the commit period ends"):  # fmt: skip
        world.reveal(job_id, a, P)
    with boa.reverts("dispute: no commitment to reveal"):
        world.reveal(job_id, b, P)
    world.commit(job_id, b, C)
    world.commit(job_id, c, P)
    with boa.reverts("dispute: the vote does not match its commitment"):
        world.reveal(job_id, a, C)  # a committed to P
    with boa.reverts("dispute: vote 1 (provider) or 2 (client)"):
        world.reveal(job_id, a, 3)
    with boa.reverts("dispute: voting is still open"):
        world.escrow.resolveDispute(job_id)
    world.reveal(job_id, a, P)
    world.until(int(world.escrow.getDispute(job_id)[3]))
    with boa.reverts("dispute: reveal period over"):
        world.reveal(job_id, b, C)
    with boa.reverts("dispute: commit period over"):
        world.commit(job_id, a, P)
    world.escrow.resolveDispute(job_id)  # a for the provider, b and c never revealed
    assert world.job(job_id).status == model.COMPLETED
    with boa.reverts("job: not disputed"):
        world.escrow.resolveDispute(job_id)
