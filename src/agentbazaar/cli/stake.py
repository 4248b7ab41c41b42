"""`bazaar stake ...`: providers and validators bond stake to be listed; unbond after a delay.
A thin shell over ``agentbazaar.jobs.Staking``."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from agentbazaar.cli.job import market_of
from agentbazaar.config import BazaarConfig
from agentbazaar.units import format_duration

if TYPE_CHECKING:
    from agentbazaar.jobs import Staking
    from agentbazaar.suite import Suite
    from agentbazaar.tokens import Token

app = typer.Typer(
    help="Stake: bond to be listed as a provider or validator, unbond, withdraw, show.",
    no_args_is_help=True,
)
WALLET = typer.Option(..., "--wallet", "-w", help="the wallet that signs")
JSON = typer.Option(False, "--json", help="machine-readable output")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="stake")


def _staking(cfg: BazaarConfig) -> tuple[Suite, Staking, Token]:
    from agentbazaar.jobs import Staking

    suite, market = market_of(cfg)
    staking = Staking(market.chain, market.terms.stake_registry)
    return suite, staking, suite.tokens.get(market.terms.token)


@app.command("bond")
def bond_cmd(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help='e.g. "50 USDC"'),
    wallet: str = WALLET,
    role: str = typer.Option("validator", "--role", help="provider, validator or both"),
    approve: bool = typer.Option(False, "--approve", help="approve above the policy threshold"),
    json_out: bool = JSON,
) -> None:
    """Bond stake (one EIP-3009 signature, checked by the policy like an escrow deposit).

    Example: bazaar stake bond "50 USDC" -w val1 --role validator
    """
    from agentbazaar.jobs import JobError, parse_roles

    cfg = run_context(ctx).config
    _suite, staking, token = _staking(cfg)
    parsed, units = _suite.tokens.parse_amount(amount, default_token=token.symbol)
    if parsed.address != token.address:
        raise JobError(f"stake is bonded in {token.symbol}, not {parsed.symbol}")
    w = open_wallet(ctx, wallet)
    with waiting("bonding..."):
        result = staking.bond(w, units, parse_roles(role), approve=approve)
    info = staking.info(w.address)
    if json_out:
        emit_json({**info.to_dict(), **result.to_dict()})
    else:
        listed = ", ".join(r for r, on in (("provider", info.provider), ("validator", info.validator)) if on) or "not listed yet"  # fmt: skip
        console.print(f"{wallet} bonded {token.format(units)}: {token.format(info.bonded)} in all, {listed} (tx {result.tx_hash})", markup=False)  # fmt: skip


@app.command("unbond")
def unbond_cmd(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help='e.g. "10 USDC"'),
    wallet: str = WALLET,
    json_out: bool = JSON,
) -> None:
    """Start unbonding (refused while the wallet is in an open dispute); withdraw after the delay.

    Example: bazaar stake unbond "10 USDC" -w val1
    """
    cfg = run_context(ctx).config
    suite, staking, token = _staking(cfg)
    _parsed, units = suite.tokens.parse_amount(amount, default_token=token.symbol)
    w = open_wallet(ctx, wallet)
    result = staking.request_unbond(w, units)
    info = staking.info(w.address)
    if json_out:
        emit_json({**info.to_dict(), **result.to_dict()})
    else:
        unlock = when(info.unlock_at, staking.chain.timestamp())
        console.print(f"{token.format(units)} unbonding; withdraw after {unlock} on the chain's clock", markup=False)  # fmt: skip


@app.command("withdraw")
def withdraw_cmd(ctx: typer.Context, wallet: str = WALLET, json_out: bool = JSON) -> None:
    """Pay out the unbonded stake once the delay has passed.

    Example: bazaar stake withdraw -w val1
    """
    cfg = run_context(ctx).config
    _suite, staking, token = _staking(cfg)
    amount, result = staking.withdraw(open_wallet(ctx, wallet))
    if json_out:
        emit_json({"amount": str(amount), **result.to_dict()})
    else:
        console.print(f"withdrew {token.format(amount)} (tx {result.tx_hash})", markup=False)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    who: str = typer.Argument(..., help="wallet name or address"),
    json_out: bool = JSON,
) -> None:
    """An account's stake: bonded, unbonding, roles, whether listed, open disputes.

    Example: bazaar stake show val1
    """
    cfg = run_context(ctx).config
    _suite, staking, token = _staking(cfg)
    info = staking.info(resolve_target(ctx, who))
    if json_out:
        emit_json(info.to_dict())
        return
    console.print(
        f"{info.account}: bonded {token.format(info.bonded)}, unbonding {token.format(info.unbonding)}, "
        f"roles {', '.join(info.role_names) or '-'}, provider {info.provider}, validator {info.validator}, "
        f"open disputes {info.locks}",
        markup=False,
    )  # fmt: skip


@app.command("list")
def list_cmd(ctx: typer.Context, json_out: bool = JSON) -> None:
    """The listed validators (those dispute committees are drawn from) and the terms.

    Example: bazaar stake list --json
    """
    cfg = run_context(ctx).config
    _suite, staking, token = _staking(cfg)
    rows = [staking.info(a) for a in staking.validators()]
    if json_out:
        emit_json({"terms": staking.terms(), "validators": [r.to_dict() for r in rows]})
        return
    emit_table(
        f"validators (min {token.format(staking.min_validator)}, unbonding {format_duration(staking.unbond_delay)})",
        ["address", "bonded", "open disputes"],
        [[r.account, token.format(r.bonded), r.locks] for r in rows],
    )
