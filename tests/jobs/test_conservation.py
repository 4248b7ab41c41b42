"""Conservation of funds across every path of a job's life, as a stateful hypothesis test on a
real EVM: whatever the order of funding, submissions, verdicts, partial payments, rejections,
expiries, refunds, disputes, committee draws, votes (honest, dishonest, missing) and slashes,

    escrow in (budgets + bonds + dispute fees + slashed stake)
        == paid out to providers + refunded to clients + fees paid to committees + escrow balance

and the escrow's balance is exactly what its jobs hold; every slash hit exactly the members who
voted against the outcome or did not reveal, and the provider of a dispute the client won."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import boa
import pytest
from escrow_world import DAY, HOUR, MIN_VALIDATOR, USDC, World, mine
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from agentbazaar.jobs import model

P, C = model.VOTE_PROVIDER, model.VOTE_CLIENT
PICK = st.integers(0, 7)
VOTES = st.sampled_from([P, C, -P, -C, 0])  # negative: committed, never revealed; 0: no commit
VOTE_LISTS = st.lists(VOTES, min_size=3, max_size=3)


@dataclass
class Job:
    id: int
    client: LocalAccount
    provider: LocalAccount
    evaluator: LocalAccount
    budget: int
    fee_paid: int = 0  # the provider's dispute fee, once paid


class JobPaths(RuleBasedStateMachine):
    world: World
    seen: set[str]  # the paths taken, over all examples

    @initialize(budgets=st.lists(st.integers(1, 50 * USDC), min_size=4, max_size=4))
    def start(self, budgets: list[int]) -> None:
        """Validators, and four jobs already at different stages: funded, submitted, rejected
        after submission, disputed; the rules take them (and new ones) anywhere from there."""
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        w = self.world
        self.validators = w.validators(5, 2 * MIN_VALIDATOR)
        self.jobs: list[Job] = []
        self.escrow_in = self.slashed_in = self.provider_start = 0
        for stage, budget in enumerate(budgets):
            self.create_and_fund(budget, stage % 2 == 1, 48)  # the submitted one pays partially
            job = self.jobs[-1]
            if stage >= 1:
                w.submit(job.id, job.provider)
            if stage >= 2:
                w.reject(job.id, job.evaluator)
            if stage >= 3:
                self._dispute(job)

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    # ---- helpers -----------------------------------------------------------------------------
    def _stake_total(self) -> int:
        return int(self.world.stake.totalStaked())

    # ---- rules -------------------------------------------------------------------------------
    @precondition(lambda self: sum(self.world.job(j.id).held > 0 for j in self.jobs) < 4)
    @rule(budget=st.integers(1, 50 * USDC), partial=st.booleans(), hours=st.integers(1, 72))
    def create_and_fund(self, budget: int, partial: bool, hours: int) -> None:
        w = self.world
        client = w.account(usdc=budget + w.fee)
        provider, evaluator = w.account(usdc=w.fee), w.account()
        self.provider_start += w.fee
        job_id = w.create(client, provider, evaluator, budget, duration=hours * 3_600, partial=partial)  # fmt: skip
        w.fund(job_id, client)
        self.escrow_in += budget + w.fee
        self.jobs.append(Job(job_id, client, provider, evaluator, budget))

    @rule(hours=st.integers(0, 30))
    def wait(self, hours: int) -> None:
        boa.env.time_travel(seconds=hours * 3_600)
        mine(1)

    @precondition(lambda self: self.jobs)
    @rule(pick=PICK, choice=st.integers(0, 3), bps=st.integers(1, model.BPS), votes=VOTE_LISTS)
    def act(self, pick: int, choice: int, bps: int, votes: list[int]) -> None:
        """One of the calls the picked job allows now (``choice`` among them), or a refused one."""
        job = self.jobs[pick % len(self.jobs)]
        info = self.world.job(job.id)
        actions = self._actions(job, info, bps, votes)
        if actions:
            actions[choice % len(actions)]()
        else:  # nothing is allowed: a refund claim must be refused
            with boa.reverts():
                self.world.escrow.claimRefund(job.id)

    def _actions(self, job: Job, i: model.JobInfo, bps: int, votes: list[int]) -> list[Callable[[], None]]:  # fmt: skip
        w, window, live = self.world, self.world.periods[0], i.now < i.expired_at
        if i.status == model.FUNDED and live:
            return [lambda: w.submit(job.id, job.provider), lambda: w.reject(job.id, job.evaluator)]
        if i.status == model.SUBMITTED and live:
            return [lambda: self._complete(job, i, bps), lambda: w.reject(job.id, job.evaluator)]
        held = i.status in (model.FUNDED, model.SUBMITTED) or (
            i.status == model.REJECTED and i.held
        )
        out: list[Callable[[], None]] = []
        if i.status in (model.SUBMITTED, model.REJECTED) and held and i.now < i.dispute_window_end:
            out.append(lambda: self._dispute(job))
        start = i.decided_at if i.status == model.REJECTED else i.expired_at
        if held and i.now >= start + (0 if i.status == model.FUNDED else window):
            out.append(lambda: self._claim(job, i))
        if i.status == model.DISPUTED:
            out.append(lambda: self._draw_vote_resolve(job, votes))
        return out

    def _complete(self, job: Job, info: model.JobInfo, bps: int) -> None:
        self.world.complete(job.id, job.evaluator, bps if info.partial else model.BPS)
        assert self.world.job(job.id).status == model.COMPLETED
        partly = info.partial and bps < model.BPS
        self.seen.add("completed in part" if partly else "completed in full")

    def _claim(self, job: Job, info: model.JobInfo) -> None:
        self.world.escrow.claimRefund(job.id)
        assert self.world.job(job.id).held == 0
        self.seen.add(f"refund after {model.STATUS_NAMES[info.status]}")

    def _dispute(self, job: Job) -> None:
        self.world.dispute(job.id, job.provider)
        self.escrow_in += self.world.fee
        job.fee_paid += self.world.fee

    def _draw_vote_resolve(self, job: Job, votes: list[int]) -> None:
        w = self.world
        draw_end = int(w.escrow.getDispute(job.id)[1]) + w.periods[1]
        if int(w.stake.validatorCount()) < 3 or w.now + 36 >= draw_end:
            w.until(draw_end)  # no committee can be drawn in time: void
            self._resolve(job, {}, 3)
            return
        committee = w.draw(job.id)
        plan = dict(zip(committee, votes, strict=True))
        w.vote_all(job.id, plan)
        for_p = sum(1 for v in plan.values() if v == P)
        for_c = sum(1 for v in plan.values() if v == C)
        outcome = P if for_p > for_c else C if for_c > for_p else 3
        self._resolve(job, plan, outcome)

    def _resolve(self, job: Job, plan: dict[str, int], outcome: int) -> None:
        w = self.world
        stakes = {m: w.stake_of(m)[0] + w.stake_of(m)[1] for m in [*plan, job.provider.address]}
        total = self._stake_total()
        w.escrow.resolveDispute(job.id)
        self.slashed_in += total - self._stake_total()
        status = w.job(job.id).status
        self.seen.add(f"dispute won by {model.OUTCOMES[outcome]}")
        assert status == (model.COMPLETED if outcome == P else model.REJECTED if w.job(job.id).decided_at else model.EXPIRED)  # fmt: skip
        for member, vote in plan.items():
            after = w.stake_of(member)[0] + w.stake_of(member)[1]
            agrees = vote > 0 and (vote == outcome or outcome == 3)
            assert after == (stakes[member] if agrees else stakes[member] - stakes[member] // 10)
            assert w.stake_of(member)[4] == 0  # unlocked

    # ---- invariants --------------------------------------------------------------------------
    @invariant()
    def escrow_holds_exactly_what_its_jobs_hold(self) -> None:
        if not hasattr(self, "jobs"):
            return
        held = sum(self.world.job(j.id).held for j in self.jobs)
        assert self.world.balance(self.world.escrow) == held

    @invariant()
    def funds_are_conserved(self) -> None:
        if not hasattr(self, "jobs"):
            return
        w = self.world
        refunded = sum(w.balance(j.client) for j in self.jobs)
        paid = sum(w.balance(j.provider) + j.fee_paid for j in self.jobs) - self.provider_start
        fees = sum(w.balance(v) for v in self.validators)
        escrow_in = self.escrow_in + self.slashed_in
        assert escrow_in == paid + refunded + fees + w.balance(w.escrow)
        assert w.balance(w.stake) == self._stake_total()


@pytest.fixture(scope="module")
def _module_world() -> World:
    """A draw period long enough that waits between the dispute and the draw rarely void it."""
    return World(periods=(DAY, 12 * HOUR, HOUR, HOUR))


def test_conservation_across_every_job_path(world: World) -> None:
    JobPaths.world, JobPaths.seen = world, set()
    run_state_machine_as_test(
        JobPaths,
        settings=settings(
            max_examples=6,
            stateful_step_count=25,
            deadline=None,
            derandomize=True,  # the same examples every run: the coverage below cannot flake
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    # the runs went through completions, refunds and resolved disputes (each path on its own,
    # with exact balances, is in test_escrow.py and test_disputes.py)
    kinds = {seen.split(" ")[0] for seen in JobPaths.seen}
    assert {"completed", "refund", "dispute"} <= kinds, JobPaths.seen
