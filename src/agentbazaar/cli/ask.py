"""``bazaar ask AGENT_URL "TASK"``: give an agent a task over A2A and pay it in-band (x402).

The library call is ``agentbazaar.agents.asking.ask``: the agent's signed card, the task, the
payment the agent asks for (through the wallet's policy and ledger; refused above ``--max``
before anything is signed), the answer and its checked receipt. A refusal at any step is one
``error: ...`` line and exit 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from agentbazaar.cli._common import emit_json
from agentbazaar.errors import InputError


def ask(
    ctx: typer.Context,
    agent_url: str = typer.Argument(..., help="the agent's URL (or its agent-card.json URL)"),
    task: str = typer.Argument(..., help="the task, in words"),
    skill: str | None = typer.Option(None, "--skill", "-s", help="the skill to buy (its id)"),
    input_json: str | None = typer.Option(
        None,
        "--input",
        help='the skill\'s input as JSON (default: made from TASK), e.g. {"texts": ["a"]}',
    ),
    max_price: str = typer.Option(
        "0.05", "--max", help="most to pay for this task, e.g. 0.05 or '0.05 USDC'"
    ),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="wallet that pays (default: BAZAAR_WALLET, default_wallet)"
    ),
    approve: bool = typer.Option(False, "--approve", help="approve a spend above the threshold"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Ask an agent for a task over A2A, paying what it asks (x402 in the task) up to --max.

    Example: bazaar ask http://127.0.0.1:8801 "the cat sat on the mat" --skill embed --max 0.01
    """
    from agentbazaar.agents.asking import ask as ask_agent
    from agentbazaar.cli.pay import wallet_payer

    payload = _input(input_json)
    chain, token, limit, payer = wallet_payer(ctx, agent_url, wallet, max_price, approve=approve)
    answer = ask_agent(
        agent_url,
        task,
        payer=payer,
        network=chain.network,
        token=token,
        chain_id=chain.chain_id,
        max_price=limit,
        skill=skill,
        payload=payload,
    )
    if json_out:
        emit_json(answer.to_json())
        return
    emit_json(answer.result)
    if answer.paid is None:
        sys.stdout.write(f"{answer.agent}: {answer.state}, nothing paid\n")
        return
    sys.stdout.write(
        f"paid {token.format(answer.paid.amount)} to {answer.agent} ({answer.paid.pay_to}) "
        f"tx {answer.paid.transaction or '-'}\n"
        f"receipt {answer.receipt.id if answer.receipt else '-'} (checked: signed by the "
        f"agent's wallet, for this price and payment)\n"
    )


def _input(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InputError(f"--input is not JSON: {exc}") from exc


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
