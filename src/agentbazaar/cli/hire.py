"""`bazaar hire SKILL INPUT --max PRICE`: buy a skill from a served agent, as agents buy.

Discovery (ERC-8004 registrations, cards checked against the on-chain agent wallet), a quote
from each provider, the cheapest trusted one within the maximum, payment through the one paying
client (payee = the provider's on-chain wallet, at most the quoted price, the wallet's spending
policy), then the provider's signed receipt verified. Everything is ``agents.hiring.Buyer``.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from agentbazaar.cli._common import emit_json, open_wallet, run_context, waiting, wallet_name
from agentbazaar.errors import ConfigError, IdentityError, InputError


def _payload(text: str) -> dict[str, Any]:
    """INPUT: a JSON object (the skill's input as is) or plain text (one text to embed)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise InputError(f"INPUT looks like JSON but is not: {exc}") from exc
        if not isinstance(value, dict):
            raise InputError("INPUT is a JSON object or plain text")
        return value
    if not stripped:
        raise InputError("INPUT is empty: give the text to process")
    return {"texts": [text]}


def hire(
    ctx: typer.Context,
    skill: str = typer.Argument(..., metavar="SKILL", help="the skill to buy, e.g. embed"),
    text: str = typer.Argument(..., metavar="INPUT", help="plain text, or the input as JSON"),
    max_price: str = typer.Option(..., "--max", help="most to pay, e.g. 0.01 or '0.01 USDC'"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="wallet that pays (default: BAZAAR_WALLET, default_wallet)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Hire an agent: discover providers of SKILL, take the cheapest trusted quote within
    --max, pay it (x402, your wallet's policy), verify its signed receipt, print what you got.

    Example: bazaar hire embed "a quiet harbour at dawn" --max 0.01 --wallet alice
    """
    from agentbazaar.agents.hiring import Buyer
    from agentbazaar.agents.runtime import Agent, Network
    from agentbazaar.agents.spec import receipts_path
    from agentbazaar.chain import Chain
    from agentbazaar.identity.contracts import IDENTITY_KEY, Registries
    from agentbazaar.suite import Suite

    rc = run_context(ctx)
    cfg = rc.config
    payload = _payload(text)
    if cfg.chain.backend == "embedded":
        raise ConfigError("agents are served on a local or rpc chain: `bazaar chain up` first")
    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    if not suite.has(IDENTITY_KEY):
        raise IdentityError("the ERC-8004 registries are not deployed: run `bazaar deploy`")
    token = suite.tokens.get("USDC")
    try:
        limit = token.parse(max_price)
    except InputError as exc:
        raise InputError(f"--max: {exc}") from exc
    if limit <= 0:
        raise InputError(f"--max must be positive, got {max_price!r}")
    name = wallet_name(ctx, wallet)
    network = Network(chain, Registries.from_suite(suite), token)
    me = Agent(name, open_wallet(ctx, wallet), network, data_dir=receipts_path(cfg, name).parent)
    buyer = Buyer(me)
    try:
        with waiting(f"hiring {skill}..."):
            hired = buyer.hire(skill, payload, limit, review=False)
    finally:
        buyer.close()
        me.receipts.close()
    _report(hired, skill, token, me.address, json_out=json_out)


def _report(hired: Any, skill: str, token: Any, payer: str, *, json_out: bool) -> None:
    offer = hired.provider
    if json_out:
        emit_json(
            {
                **hired.to_json(),
                "skill": skill,
                "payer": payer,
                "providerWallet": offer.wallet,
                "providerUrl": offer.base_url,
                "amount": token.format(hired.price),
                "asset": token.address,
                "receiptVerified": True,
                "outputShape": [int(d) for d in hired.output.shape],
            }
        )
        return
    rows = len(hired.output)
    typer.echo(
        f"bought {skill} ({rows} result{'s' * (rows != 1)}) from {offer.name} "
        f"(agent #{offer.agent_id}, wallet {offer.wallet}) for {token.format(hired.price)}\n"
        f"settlement tx {hired.tx_hash}\nreceipt {hired.receipt.id} verified "
        f"(signed by the provider's on-chain wallet)"
    )


def register(app: typer.Typer) -> None:
    app.command("hire")(hire)
