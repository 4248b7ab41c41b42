"""Escrowed jobs: gas of a job's whole life and of a dispute beside a plain ERC-20 transfer, and
jobs per second through the Python API on anvil beside token transfers per second.

Prints one JSON line per figure. Run: .venv/bin/python -P benchmarks/jobs.py [--n 20]

(a) Gas, on the embedded chain with the job contracts deployed from the suite (`LocalWorld`) (gas is deterministic:
    one run): each step of a job's life (create, fund by EIP-3009 with the client's bond,
    submit, complete paying the provider, returning the bond and minting a feedback ticket) and
    their sum; a dispute's whole life (the provider's fee, the committee draw from the seed
    block hash, three commits, three reveals, the resolution with its payouts); bonding stake.
    Reference: `usdc.transfer` between holders in the same run; ratio = figure / reference.
(b) Throughput, on a fresh anvil: `--n` jobs one after another, each create -> fund -> submit
    -> complete through `JobMarket` (every step simulated before signing, the funding signed
    inside `Wallet.spend` with its ledger fsync), beside `--n` `Wallet.send` USDC transfers (one
    simulated, ledgered payment each) on the same node in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agentbazaar.chain import Chain
from agentbazaar.jobs import JobMarket, Staking, TxResult, model, parse_deliverable
from agentbazaar.testing import LocalWorld, local_anvil
from agentbazaar.testing.bench import emit
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

USDC = 10**6
BUDGET = 5 * USDC


def _emit(name: str, value: float, unit: str, ref_name: str = "", ref: float = 0) -> None:
    if ref:
        emit(name=name, value=value, unit=unit, reference=ref_name, reference_value=ref,
             ratio=round(value / ref, 3))  # fmt: skip
    else:
        emit(name=name, value=value, unit=unit)


class Setup:
    """The job contracts (and what they need) on ``chain``, and funded wallets sharing one
    ledger."""

    def __init__(self, chain: Chain, home: Path) -> None:
        world = LocalWorld.deploy(chain, only=("JobEscrow",))
        self.world, self.chain, self.usdc = world, chain, world.usdc
        self.token = world.usdc_token
        self.market = JobMarket.from_suite(world.suite)
        self.staking = Staking(chain, self.market.terms.stake_registry)
        home.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(home / "ledger.sqlite")

    def wallet(self, name: str, usdc: int = 0) -> Wallet:
        account = self.world.new_account(eth=10**20, usdc=usdc)
        return Wallet(name, account, SpendingPolicy(), self.ledger)


def one_job(s: Setup, client: Wallet, provider: Wallet, evaluator: Wallet) -> dict[str, TxResult]:
    job_id, created = s.market.create(
        client, provider=provider.address, evaluator=evaluator.address, budget=BUDGET,
        expires_in=3_600,
    )  # fmt: skip
    return {
        "create": created,
        "fund": s.market.fund(client, job_id),
        "submit": s.market.submit(provider, job_id, parse_deliverable(f"work {job_id}")),
        "complete": s.market.complete(evaluator, job_id),
    }


def gas(tmp: Path) -> None:
    s = Setup(Chain.embedded(), tmp / "embedded")
    fee = s.market.terms.dispute_fee
    client = s.wallet("client", 10 * (BUDGET + fee))
    provider, evaluator = s.wallet("provider", 10 * fee), s.wallet("evaluator", 1)
    transfer = int(s.chain.transact(client.account_for_deploy(), s.usdc.functions.transfer(evaluator.address, 1))["gasUsed"])  # fmt: skip
    _emit("usdc.transfer", transfer, "gas")
    one_job(s, client, provider, evaluator)  # warm: every account has held tokens before
    steps = one_job(s, client, provider, evaluator)
    for step, result in steps.items():
        _emit(f"job.{step}", result.gas_used, "gas", "usdc.transfer", transfer)
    _emit("job.whole_life", sum(r.gas_used for r in steps.values()), "gas", "usdc.transfer", transfer)  # fmt: skip
    validators = [s.wallet(f"v{i}", 60 * USDC) for i in range(4)]
    bonds = [s.staking.bond(v, 60 * USDC, model.ROLE_VALIDATOR) for v in validators]
    _emit("stake.bond", bonds[-1].gas_used, "gas", "usdc.transfer", transfer)
    _emit("dispute.whole_life", dispute_gas(s, client, provider, evaluator, validators), "gas", "usdc.transfer", transfer)  # fmt: skip


def dispute_gas(s: Setup, client: Wallet, provider: Wallet, evaluator: Wallet, validators: list[Wallet]) -> int:  # fmt: skip
    """Gas of a dispute, from the provider's fee to the resolution (all members vote)."""
    m = s.market
    job_id, _ = m.create(client, provider=provider.address, evaluator=evaluator.address, budget=BUDGET, expires_in=3_600)  # fmt: skip
    m.fund(client, job_id)
    m.submit(provider, job_id, parse_deliverable("disputed work"))
    m.reject(evaluator, job_id)
    opened = m.dispute_job(provider, job_id)
    s.chain.mine(3)
    drawn = m.draw_committee(client, job_id)
    members = [v for v in validators if v.address in m.dispute(job_id).committee]
    commits = [m.commit_vote(v, job_id, "provider") for v in members]
    reveals = [m.reveal_vote(v, job_id)[1] for v in members]
    resolved = m.resolve_dispute(client, job_id)
    for name, r in (("open", opened), ("draw", drawn), ("commit", commits[0]), ("reveal", reveals[0]), ("resolve", resolved)):  # fmt: skip
        _emit(f"dispute.{name}", r.gas_used, "gas")
    return sum(r.gas_used for r in (opened, drawn, *commits, *reveals, resolved))


def throughput(tmp: Path, n: int) -> None:
    with local_anvil(tmp) as node:
        s = Setup(Chain.rpc(node.running_url(), backend="local"), tmp / "anvil")
        fee = s.market.terms.dispute_fee
        client = s.wallet("client", (n + 1) * (BUDGET + fee) + n)
        provider, evaluator = s.wallet("provider", 1), s.wallet("evaluator", 1)
        one_job(s, client, provider, evaluator)  # warm-up
        start = time.perf_counter()
        for i in range(n):
            client.send(s.chain, evaluator.address, 1, s.token, idempotency_key=f"ref-{i}")
        transfers = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(n):
            one_job(s, client, provider, evaluator)
        jobs = n / (time.perf_counter() - start)
        _emit("anvil.wallet_transfers_per_s", round(transfers, 2), "tx/s")
        _emit("anvil.jobs_per_s", round(jobs, 2), "jobs/s", "wallet_transfers_per_s", round(transfers, 2))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gas(Path(tmp))
        throughput(Path(tmp), args.n)


if __name__ == "__main__":
    main()
