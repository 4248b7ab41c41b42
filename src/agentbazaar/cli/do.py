"""`bazaar do`, `bazaar quote` and `bazaar intent`: plain-language transactions.

bazaar intent "swap 100 USDC for WETH" --json      # parse only: every field, and the parser
bazaar quote 100 USDC WETH                          # best execution at the current pools
bazaar do "swap 100 USDC for WETH" --wallet alice   # plan, simulate, check; --yes executes
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    open_wallet,
    run_context,
    waiting,
)
from agentbazaar.cli._understand import LANGUAGE_MODEL, LLM_NAME, LLM_URL, extractor, read_sentence


def _wallet_names(ctx: typer.Context) -> list[str]:
    from agentbazaar.wallet import KeyStore

    return KeyStore(run_context(ctx).config.keystore_dir).names()


def intent(
    ctx: typer.Context,
    sentence: str = typer.Argument(..., help="what to do, in English or Chinese"),
    json_out: bool = typer.Option(False, "--json"),
    language_model: str | None = LANGUAGE_MODEL,
    llm_url: str | None = LLM_URL,
    model: str | None = LLM_NAME,
) -> None:
    """Parse a sentence into an Intent and print it (nothing is planned or signed). Every field
    and the parser that read it ("rules": the fast path; "model": the language model). A
    request with a value missing prints the question (exit code 3).

    Example: bazaar intent "buy 0.5 WETH with USDC with at most 0.5% slippage" --json
    """
    from agentbazaar.intents.understand import Context

    context = Context.of(None, _wallet_names(ctx))
    understood = read_sentence(
        sentence, extractor(language_model, llm_url, model), context, json_out=json_out
    )
    if json_out:
        emit_json(understood.to_dict())
        return
    rows = [[k, "" if v is None else v] for k, v in understood.to_dict().items()]
    emit_table("intent", ["field", "value"], rows)


def quote(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="amount to sell, e.g. 100"),
    token_in: str = typer.Argument(..., help="token to sell, e.g. USDC"),
    token_out: str = typer.Argument(..., help="token to buy, e.g. WETH"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Best execution (split across pools and hops, net of gas) for selling an amount.

    Example: bazaar quote 100 USDC WETH --json
    """
    from agentbazaar.chain import Chain
    from agentbazaar.dex.onchain import Amm
    from agentbazaar.suite import Suite

    cfg = run_context(ctx).config
    with waiting("reading the pools..."):
        suite = Suite(Chain.from_config(cfg), cfg)
        amm = Amm.from_suite(suite)
        tin, tout = suite.tokens.get(token_in), suite.tokens.get(token_out)
        weth = (
            suite.tokens.get("WETH") if "WETH" in {t.symbol for t in suite.tokens.all()} else None
        )
        q = amm.quote(tin, tout, tin.parse(amount), weth=weth)
    doc: dict[str, Any] = {
        "token_in": tin.symbol,
        "token_out": tout.symbol,
        "amount_in": str(q.amount_in),
        "amount_out": str(q.amount_out),
        "amount_out_human": tout.format(q.amount_out),
        "gas_estimate": q.gas_estimate,
        "gas_cost_out": str(q.gas_cost_out),
        "routes": [
            {
                "pools": list(r.path.addresses),
                "tokens": [suite.tokens.get(t).symbol for t in r.path.tokens],
                "amount_in": str(r.amount_in),
                "amount_out": str(r.amount_out),
            }
            for r in q.routes
        ],
    }
    if json_out:
        emit_json(doc)
        return
    console.print(
        f"{tin.format(q.amount_in)} -> {tout.format(q.amount_out)} (gas ~{q.gas_estimate})"
    )
    emit_table(
        "routes",
        ["path", "in", "out"],
        [
            [
                " -> ".join(r["tokens"]),
                tin.format(int(r["amount_in"])),
                tout.format(int(r["amount_out"])),
            ]
            for r in doc["routes"]
        ],
    )


def do(
    ctx: typer.Context,
    sentence: str = typer.Argument(..., help="what to do, in English or Chinese"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="wallet name (default: BAZAAR_WALLET, default_wallet)"
    ),
    yes: bool = typer.Option(False, "--yes", help="execute without asking"),
    approve: bool = typer.Option(
        False, "--approve", help="approve spends above the policy's approval threshold"
    ),
    idempotency_key: str | None = typer.Option(
        None, "--idempotency-key", help="retry-safe key: a retry with it never pays twice"
    ),
    json_out: bool = typer.Option(False, "--json"),
    language_model: str | None = LANGUAGE_MODEL,
    llm_url: str | None = LLM_URL,
    model: str | None = LLM_NAME,
) -> None:
    """Understand a sentence, plan it (route, expected and minimum output, gas, fees), simulate
    it, check it against the wallet's policy, and execute it on --yes (or after confirming).
    A request with a value missing is asked about on a terminal; with --json the question is
    printed and the exit code is 3 (nothing planned or signed).

    Example: bazaar do "swap 100 USDC for WETH with at most 0.5% slippage" --wallet alice --yes
    """
    from agentbazaar.chain import Chain
    from agentbazaar.intents.act import carry_out
    from agentbazaar.intents.understand import Context
    from agentbazaar.suite import Suite

    cfg = run_context(ctx).config
    suite = Suite(Chain.from_config(cfg), cfg)
    context = Context.of([t.symbol for t in suite.tokens.all()], _wallet_names(ctx))
    understood = read_sentence(
        sentence, extractor(language_model, llm_url, model), context, json_out=json_out
    )
    parsed = understood.intent
    w = open_wallet(ctx, wallet)
    with waiting("planning..."):
        planned = carry_out(parsed, suite=suite, wallet=w, execute=False, approve=approve)
    execute = yes
    if not planned.executed and not yes and not json_out and sys.stdin.isatty():
        _show(planned.to_dict())
        execute = typer.confirm("execute this plan?", default=False)
    if planned.executed or not execute:
        note = None if planned.executed else "dry run: add --yes"
        _emit(planned.to_dict() | {"parser": understood.parser}, json_out, note=note)
        return
    with waiting("executing..."):
        done = carry_out(
            parsed,
            suite=suite,
            wallet=w,
            execute=True,
            approve=approve,
            idempotency_key=idempotency_key,
        )
    _emit(done.to_dict() | {"parser": understood.parser}, json_out, note=None)


def _show(doc: dict[str, Any]) -> None:
    plan = doc["plan"]
    rows = [[k, v] for k, v in plan.items() if not isinstance(v, (list, dict))]
    emit_table(f"plan: {plan.get('action')}", ["field", "value"], rows)
    for route in plan.get("routes", []):
        path = " -> ".join(route.get("symbols") or route.get("tokens") or [])
        console.print(
            f"  route: {route['amount_in']} in, {route['amount_out']} out, "
            f"{len(route['pools'])} pool(s) {path}"
        )
    fees = plan.get("pool_fees") or []
    if fees:
        console.print(
            "  pool fees: " + ", ".join(f"{f['amount']} {f['token']} units" for f in fees)
        )


def _emit(doc: dict[str, Any], json_out: bool, note: str | None) -> None:
    if json_out:
        emit_json(doc)
        return
    _show(doc)
    result = doc.get("result") or {}
    if "balances" in result:
        rows = [[b["symbol"], b["amount"]] for b in result["balances"]]
        emit_table("balances", ["token", "amount"], rows)
    for key in ("tx_hash", "received_human", "status"):
        if key in result:
            console.print(f"{key}: {result[key]}")
    if note:
        console.print(note)


def register(app: typer.Typer) -> None:
    app.command("do")(do)
    app.command("quote")(quote)
    app.command("intent")(intent)
