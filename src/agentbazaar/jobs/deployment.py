"""The job contracts in the suite: StakeRegistry, FeedbackGate and JobEscrow, and the step that
links them (the escrow is the stake registry's court and a ticket minter of the gate).

Terms come from ``[jobs]`` in ``bazaar.toml`` (integers: seconds, and base units of the
stablecoin), defaults below. The escrow holds its stake registry, gate and registries as
immutables, so whenever one of them is deployed again the link step deploys the three again,
in order, and links them.

Data only: ``agentbazaar.deployment`` lists these specs and the step.
"""

from __future__ import annotations

from typing import Any

from web3.contract import Contract

from agentbazaar.chain.deploy import ContractSpec, SuiteContext, SuiteStep
from agentbazaar.errors import ConfigError
from agentbazaar.identity.contracts import REPUTATION_KEY, VALIDATION_KEY
from agentbazaar.identity.tickets import GATE_KEY
from agentbazaar.jobs.market import ESCROW_KEY
from agentbazaar.jobs.staking import STAKE_KEY
from agentbazaar.tokens import registry_for

DEFAULTS: dict[str, int] = {
    "dispute_fee": 1_000_000,  # 1 USDC: the client's bond and the provider's dispute fee
    "dispute_window": 86_400,
    "draw_period": 3_600,
    "commit_period": 3_600,
    "reveal_period": 3_600,
    "committee_size": 3,
    "unbond_delay": 7 * 86_400,
    "min_provider_stake": 10_000_000,
    "min_validator_stake": 50_000_000,
}


def terms(ctx: SuiteContext) -> dict[str, int]:
    raw = ctx.cfg.extra.get("jobs", {})
    unknown = set(raw) - set(DEFAULTS) if isinstance(raw, dict) else {"[jobs]"}
    if unknown:
        raise ConfigError(f"unknown [jobs] settings in bazaar.toml: {', '.join(sorted(unknown))}")
    try:
        return {k: int(raw.get(k, v)) for k, v in DEFAULTS.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[jobs] settings are integers (seconds, base units): {exc}") from exc


def _token(ctx: SuiteContext) -> str:
    if "USDC" in ctx.contracts:
        return str(ctx.contracts["USDC"].address)
    token = registry_for(ctx.cfg, ctx.manifest).get("USDC")
    if token.address is None:
        raise ConfigError("the job contracts need an EIP-3009 USDC: declare [tokens.USDC] address")
    return token.address


def _stake_args(ctx: SuiteContext) -> tuple[Any, ...]:
    t = terms(ctx)
    return (_token(ctx), t["unbond_delay"], t["min_provider_stake"], t["min_validator_stake"])


def _gate_args(ctx: SuiteContext) -> tuple[Any, ...]:
    return (_token(ctx), ctx.contracts[REPUTATION_KEY].address)


def _escrow_args(ctx: SuiteContext) -> tuple[Any, ...]:
    t = terms(ctx)
    periods = [t["dispute_window"], t["draw_period"], t["commit_period"], t["reveal_period"]]
    return (
        _token(ctx),
        ctx.contracts[STAKE_KEY].address,
        ctx.contracts[GATE_KEY].address,
        ctx.contracts[VALIDATION_KEY].address,
        t["dispute_fee"],
        periods,
        t["committee_size"],
    )


STAKE_REGISTRY = ContractSpec(
    STAKE_KEY, "StakeRegistry", _stake_args, lambda ctx: {"kind": "stake"}, needs=("USDC",)
)
FEEDBACK_GATE = ContractSpec(
    GATE_KEY,
    "FeedbackGate",
    _gate_args,
    lambda ctx: {"kind": "feedback-gate"},
    needs=("USDC", REPUTATION_KEY),
)
JOB_ESCROW = ContractSpec(
    ESCROW_KEY,
    "JobEscrow",
    _escrow_args,
    lambda ctx: {"kind": "job-escrow"},
    needs=("USDC", STAKE_KEY, GATE_KEY, VALIDATION_KEY),
)
SPECS = (STAKE_REGISTRY, FEEDBACK_GATE, JOB_ESCROW)


def _consistent(ctx: SuiteContext) -> bool:
    call = ctx.chain.call
    stake, gate, escrow = (ctx.contracts[s.key] for s in SPECS)
    ef = escrow.functions
    return (
        call(ef.stakeRegistry()) == stake.address
        and call(ef.feedbackGate()) == gate.address
        and call(ef.validationRegistry()) == ctx.contracts[VALIDATION_KEY].address
        and call(ef.token()) == _token(ctx) == call(stake.functions.token())
        and call(gate.functions.reputationRegistry()) == ctx.contracts[REPUTATION_KEY].address
        and call(stake.functions.court()) in (escrow.address, "0x" + "00" * 20)
    )


def _link(ctx: SuiteContext) -> None:
    """Deploy the three again if they no longer fit together, then link the escrow."""
    if not _consistent(ctx):
        for spec in SPECS:
            spec.deploy(ctx, force=True)
            ctx.statuses[spec.key] = "changed"
    stake, gate, escrow = (ctx.contracts[s.key] for s in SPECS)
    if int(ctx.chain.call(stake.functions.court()), 16) == 0:
        ctx.chain.transact(ctx.deployer, stake.functions.link(escrow.address))
    if not ctx.chain.call(gate.functions.isMinter(escrow.address)):
        _owner_call(ctx, gate, gate.functions.setMinter(escrow.address, True))


def _owner_call(ctx: SuiteContext, contract: Contract, fn: Any) -> None:
    owner = ctx.chain.call(contract.functions.owner())
    if owner != ctx.deployer.address:
        raise ConfigError(f"{contract.address} is owned by {owner}: link the escrow as its owner")
    ctx.chain.transact(ctx.deployer, fn)


LINK_JOBS = SuiteStep(
    "jobs: link escrow, stake and gate", _link, needs=(STAKE_KEY, GATE_KEY, ESCROW_KEY)
)
