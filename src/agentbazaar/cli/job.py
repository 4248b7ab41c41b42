"""`bazaar job ...`: escrowed jobs between agents (create, fund, submit, complete or reject),
refunds, and disputes decided by a committee of staked validators. A thin shell over
``agentbazaar.jobs.JobMarket``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    open_wallet,
    resolve_target,
    run_context,
    waiting,
)
from agentbazaar.cli._when import when
from agentbazaar.config import BazaarConfig

if TYPE_CHECKING:
    from agentbazaar.jobs import JobInfo, JobMarket, TxResult
    from agentbazaar.suite import Suite
    from agentbazaar.tokens import Token

app = typer.Typer(
    help="Escrowed jobs: create, fund, submit, complete or reject, refund, dispute.",
    no_args_is_help=True,
)
WALLET = typer.Option(..., "--wallet", "-w", help="the wallet that signs")
JSON = typer.Option(False, "--json", help="machine-readable output")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="job")


def market_of(cfg: BazaarConfig) -> tuple[Suite, JobMarket]:
    """The suite on the configured chain and its job escrow (JobError when not deployed)."""
    from agentbazaar.chain import Chain
    from agentbazaar.jobs import JobMarket
    from agentbazaar.suite import Suite

    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    return suite, JobMarket.from_suite(suite)


def _token(suite: Suite, market: JobMarket) -> Token:
    return suite.tokens.get(market.terms.token)


def _human(suite: Suite, market: JobMarket, units: int) -> str:
    return _token(suite, market).format(units)


def _done(json_out: bool, what: str, result: TxResult, **extra: Any) -> None:
    if json_out:
        emit_json({**extra, **result.to_dict()})
    else:
        console.print(f"{what} (tx {result.tx_hash}, gas {result.gas_used})", markup=False)


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    wallet: str = WALLET,
    provider: str = typer.Option(..., "--provider", help="wallet name or address"),
    evaluator: str = typer.Option(..., "--evaluator", help="wallet name or address"),
    budget: str = typer.Option(..., "--budget", help='e.g. "5 USDC"'),
    expires: str = typer.Option(..., "--expires", help="from now: 90s, 15m, 2h, 3d"),
    description: str = typer.Option("", "--description", help="what the job is"),
    partial: bool = typer.Option(False, "--partial", help="may pay in proportion"),
    json_out: bool = JSON,
) -> None:
    """Create an open job with WALLET as client; prints its id.

    Example: bazaar job create -w alice --provider bob --evaluator carol --budget "5 USDC" --expires 2h
    """
    from agentbazaar.jobs.model import parse_duration

    cfg = run_context(ctx).config
    suite, market = market_of(cfg)
    units = market.budget(suite.tokens, budget)
    token = _token(suite, market)
    client = open_wallet(ctx, wallet)
    with waiting("creating the job..."):
        job_id, result = market.create(
            client,
            provider=resolve_target(ctx, provider),
            evaluator=resolve_target(ctx, evaluator),
            budget=units,
            expires_in=parse_duration(expires),
            description=description,
            partial=partial,
        )
    if json_out:
        emit_json({"id": job_id, **result.to_dict()})
    else:
        console.print(f"job {job_id} created: {token.format(units)}, fund it with `bazaar job fund {job_id}`", markup=False)  # fmt: skip


@app.command("fund")
def fund_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    approve: bool = typer.Option(False, "--approve", help="approve above the policy threshold"),
    json_out: bool = JSON,
) -> None:
    """Escrow the budget and the dispute bond (one EIP-3009 signature, under the policy).

    Example: bazaar job fund 1 -w alice
    """
    cfg = run_context(ctx).config
    suite, market = market_of(cfg)
    job = market.job(job_id)
    amount = job.budget + market.terms.dispute_fee
    with waiting("funding..."):
        result = market.fund(open_wallet(ctx, wallet), job_id, approve=approve)
    _done(json_out, f"job {job_id} funded with {_human(suite, market, amount)}", result, id=job_id, amount=str(amount))  # fmt: skip


@app.command("submit")
def submit_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    deliverable: str = typer.Option(..., "--deliverable", help="0x hash, or text (hashed)"),
    json_out: bool = JSON,
) -> None:
    """The provider submits its work (a 32-byte reference to it).

    Example: bazaar job submit 1 -w bob --deliverable "ipfs://bafy... summary v1"
    """
    from agentbazaar.jobs import parse_deliverable

    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    ref = parse_deliverable(deliverable)
    with waiting("submitting..."):
        result = market.submit(open_wallet(ctx, wallet), job_id, ref)
    _done(json_out, f"job {job_id} submitted: 0x{ref.hex()}", result, id=job_id, deliverable="0x" + ref.hex())  # fmt: skip


@app.command("complete")
def complete_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    paid_bps: int = typer.Option(
        10_000, "--paid-bps", help="share paid, in 1/10,000 (partial jobs)"
    ),
    json_out: bool = JSON,
) -> None:
    """The evaluator accepts the work: the provider is paid, the client's bond returns.

    Example: bazaar job complete 1 -w carol
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    with waiting("completing..."):
        result = market.complete(open_wallet(ctx, wallet), job_id, paid_bps=paid_bps)
    ticket = market.ticket_minted(result)
    _done(json_out, f"job {job_id} completed (feedback ticket {ticket})", result, id=job_id, ticket=ticket)  # fmt: skip


@app.command("reject")
def reject_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """The evaluator rejects (or the client withdraws an open job).

    Example: bazaar job reject 1 -w carol
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    with waiting("rejecting..."):
        result = market.reject(open_wallet(ctx, wallet), job_id)
    _done(json_out, f"job {job_id} rejected: {market.job(job_id).state}", result, id=job_id)


@app.command("refund")
def refund_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """Refund the client of an expired job or of a rejection past its dispute window (anyone).

    Example: bazaar job refund 1 -w alice
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    with waiting("refunding..."):
        result = market.claim_refund(open_wallet(ctx, wallet), job_id)
    _done(json_out, f"job {job_id} refunded to its client", result, id=job_id)


@app.command("dispute")
def dispute_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    approve: bool = typer.Option(False, "--approve", help="approve above the policy threshold"),
    json_out: bool = JSON,
) -> None:
    """The provider disputes a rejected or unanswered job, paying the dispute fee; a committee
    of staked validators decides (`job draw`, `job vote`, `job reveal`, `job resolve`).

    Example: bazaar job dispute 1 -w bob
    """
    cfg = run_context(ctx).config
    suite, market = market_of(cfg)
    with waiting("disputing..."):
        result = market.dispute_job(open_wallet(ctx, wallet), job_id, approve=approve)
    seed = market.dispute(job_id).seed_block
    fee = _human(suite, market, market.terms.dispute_fee)
    _done(json_out, f"job {job_id} disputed ({fee}); committee drawn after block {seed}", result, id=job_id, seed_block=seed)  # fmt: skip


@app.command("draw")
def draw_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """Draw the dispute's committee from its seed block's hash (anyone, once it is mined).

    Example: bazaar job draw 1 -w alice
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    result = market.draw_committee(open_wallet(ctx, wallet), job_id)
    committee = list(market.dispute(job_id).committee)
    what = f"committee of job {job_id}: {', '.join(committee)}" if committee else "seed block too old: a new one was chosen; draw again after it"  # fmt: skip
    _done(json_out, what, result, id=job_id, committee=committee)


@app.command("vote")
def vote_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    vote: str = typer.Argument(..., help="provider (pay it) or client (refund)"),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """A committee member commits its vote (secret until `job reveal`).

    Example: bazaar job vote 1 provider -w val1
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    result = market.commit_vote(open_wallet(ctx, wallet), job_id, vote)
    _done(json_out, f"vote on job {job_id} committed", result, id=job_id)


@app.command("reveal")
def reveal_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """A committee member reveals the vote it committed to.

    Example: bazaar job reveal 1 -w val1
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    vote, result = market.reveal_vote(open_wallet(ctx, wallet), job_id)
    side = "provider" if vote == 1 else "client"
    _done(json_out, f"vote on job {job_id} revealed: {side}", result, id=job_id, vote=side)


@app.command("resolve")
def resolve_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """Apply the dispute's outcome: pay or refund, fees to the committee, slashes (anyone).

    Example: bazaar job resolve 1 -w alice
    """
    cfg = run_context(ctx).config
    _suite, market = market_of(cfg)
    result = market.resolve_dispute(open_wallet(ctx, wallet), job_id)
    _done(json_out, f"dispute of job {job_id} resolved: {market.job(job_id).state}", result, id=job_id, state=market.job(job_id).state)  # fmt: skip


@app.command("show")
def show_cmd(
    ctx: typer.Context, job_id: int = typer.Argument(..., min=1), json_out: bool = JSON
) -> None:
    """One job: its parties, budget, state, deliverable, and its dispute if any.

    Example: bazaar job show 1 --json
    """
    cfg = run_context(ctx).config
    suite, market = market_of(cfg)
    job = market.job(job_id)
    dispute = market.dispute(job_id)
    out = job.to_dict() | {"description": market.description(job_id)}
    if dispute.seed_block:
        out["dispute"] = dispute.to_dict()
    if json_out:
        emit_json(out)
        return
    console.print(f"job {job_id}: {job.state} - {_human(suite, market, job.budget)}{' (partial)' if job.partial else ''}", markup=False)  # fmt: skip
    for role in ("client", "provider", "evaluator"):
        console.print(f"  {role:<9} {getattr(job, role)}", markup=False)
    console.print(f"  expires   {when(job.expired_at, job.now)} on the chain's clock", markup=False)
    if out.get("deliverable"):
        console.print(f"  delivered {out['deliverable']}", markup=False)
    if dispute.seed_block:
        console.print(f"  dispute   committee {list(dispute.committee) or 'not drawn'}, votes {dispute.for_provider} provider / {dispute.for_client} client", markup=False)  # fmt: skip


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    involving: str | None = typer.Option(None, "--involving", help="wallet name or address"),
    json_out: bool = JSON,
) -> None:
    """Every job (or those a wallet is a party to), oldest first.

    Example: bazaar job list --involving alice
    """
    cfg = run_context(ctx).config
    suite, market = market_of(cfg)
    who = resolve_target(ctx, involving) if involving else None
    jobs = market.jobs(involving=who)
    if json_out:
        emit_json([j.to_dict() for j in jobs])
        return
    emit_table(
        f"jobs in {market.address}",
        ["id", "state", "budget", "client", "provider", "evaluator"],
        [_row(suite, market, j) for j in jobs],
    )


def _row(suite: Suite, market: JobMarket, j: JobInfo) -> list[Any]:
    return [j.job_id, j.state, _human(suite, market, j.budget), j.client, j.provider, j.evaluator]
