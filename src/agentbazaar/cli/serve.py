"""`bazaar demo` and `bazaar serve AGENT.toml`: the agent network from the command line."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    err_console,
    run_context,
    server_logging,
)
from agentbazaar.errors import ConfigError
from agentbazaar.units import format_units

USDC_DECIMALS = 6  # the demo pays in its own USDC


def demo(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
    chain: str | None = typer.Option(
        None, "--chain", help="embedded (zero set-up, default) | local (anvil)"
    ),
    sample_rate: float = typer.Option(1.0, "--sample-rate", help="validator sampling, 0..1"),
) -> None:
    """Run an agent network from nothing: providers (one honest, two not), a validator and an
    assistant as HTTP services on 127.0.0.1, paying each other in USDC on a real EVM.

    Example: bazaar demo --json > report.json
    """
    from agentbazaar.agents.demo import run_demo

    chain = chain or run_context(ctx).backend or "embedded"  # `bazaar --chain local demo` too
    if chain not in ("embedded", "local"):
        raise ConfigError(f"--chain is 'embedded' or 'local', not {chain!r}")
    if not 0.0 <= sample_rate <= 1.0:
        raise ConfigError("--sample-rate is between 0 and 1")

    def say(message: str) -> None:
        err_console.print(message, highlight=False, markup=False, soft_wrap=True)

    report = run_demo(chain=chain, sample_rate=sample_rate, progress=None if json_out else say)
    if json_out:
        emit_json(report)
        return
    _tables(report)


def _tables(report: dict[str, Any]) -> None:
    """The summary: each task and what came of it, then who was paid, validated and trusted."""
    emit_table(
        "tasks (given to the assistant in words, over A2A)",
        ["task", "embedded", "USDC spent", "outcome"],
        task_rows(report),
    )
    emit_table(
        "agents",
        ["role", "name", "agent id", "wallet", "url"],
        [[a["role"], a["name"], a["agentId"], a["wallet"], a["url"]] for a in report["agents"]],
    )
    emit_table(
        "payments (assistant -> provider, x402 exact, USDC)",
        ["to", "USDC", "tokens", "settlement tx"],
        [[p["to"], p["amountUsdc"], p["tokens"], p["txHash"]] for p in report["payments"]],
    )
    emit_table(
        "receipts (EIP-712, signed by the provider)",
        ["receipt id", "provider", "price", "verdict"],
        [[r["id"], r["provider"], r["price"], _verdict(r["verdict"])] for r in report["receipts"]],
    )
    emit_table(
        "validation (re-run of sampled sales, ValidationRegistry tag 'embedding')",
        ["provider", "mode", "validated", "passed", "failed"],
        [
            [v["provider"], v["mode"], v["validated"], v["passed"], v["failed"]]
            for v in report["validation"]
        ],
    )
    emit_table(
        "reputation (as the assistant sees it)",
        ["provider", "price / 1k tokens", "paid feedback", "avg", "validation avg", "avoided"],
        [
            [o["name"], o["unit_price"], o["rep_count"], o["rep_avg"], o["validation_avg"],
             "yes" if o["avoided"] else "no"]
            for o in report["reputation"]
        ],
    )  # fmt: skip
    emit_table(
        "balances (USDC on chain vs expected from the payments)",
        ["who", "USDC", "expected (base units)", "reconciled"],
        [
            [b["name"], b["usdcHuman"], b["expected"], "yes" if b["reconciled"] else "NO"]
            for b in report["balances"]
        ],
    )
    console.print(f"done in {report['seconds']} s on chain {report['chain']['chainId']}")


def task_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per task of the demo: what was asked, how much got done and paid, and the
    outcome (paid, how the validator judged each purchase, or why it was refused)."""
    verdicts = {r["id"]: r["verdict"] for r in report["receipts"]}
    rows = []
    for step in report["tasks"]:
        bought = step["purchases"]
        judged = [verdicts.get(p["receiptId"]) for p in bought]
        outcome = []
        if bought:
            passed = sum(v == 100 for v in judged)
            failed = sum(v is not None and v != 100 for v in judged)
            unsampled = sum(v is None for v in judged)
            outcome.append(
                f"paid {len(bought)} purchase{'s' if len(bought) != 1 else ''}; validated: "
                f"{passed} passed, {failed} failed"
                + (f", {unsampled} not sampled" if unsampled else "")
            )
        for f in step["failures"]:
            what = f.get("message", f.get("error"))
            outcome.append(
                f"batch {f.get('batch')} failed: {what}" if bought else f"refused: {what}"
            )
        rows.append([
            step["task"], f"{step['embedded']}/{step['texts']}",
            format_units(int(step["spent"]), USDC_DECIMALS), "; ".join(outcome) or "nothing to do",
        ])  # fmt: skip
    return rows


def _verdict(score: int | None) -> str:
    if score is None:
        return "not sampled"
    return "pass (100)" if score == 100 else f"FAIL ({score})"


def serve(
    ctx: typer.Context,
    spec_path: Path = typer.Argument(..., help="the agent's TOML file", exists=False),
) -> None:
    """Start an agent declared in TOML: serve it on 127.0.0.1, register it on-chain, run until
    Ctrl-C. Needs a persistent chain with the suite deployed (bazaar chain up; bazaar deploy).

    Example: bazaar serve examples/agents/embedder.toml
    """
    from agentbazaar.agents.runtime import Network
    from agentbazaar.agents.spec import load_served_spec, start_agent
    from agentbazaar.chain import Chain
    from agentbazaar.identity.contracts import Registries
    from agentbazaar.suite import Suite

    spec = load_served_spec(spec_path)
    cfg = run_context(ctx).config
    server_logging(ctx)
    if cfg.chain.backend == "embedded":
        raise ConfigError(
            "an embedded chain lives in one process: serve agents on a local or rpc chain "
            "(bazaar chain up && bazaar deploy), or try `bazaar demo`"
        )
    chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    network = Network(chain, Registries.from_suite(suite), suite.tokens.get("USDC"))
    running = start_agent(spec, cfg, network)
    err_console.print(
        f"{spec.agent.name}: agent #{running.agent.agent_id} serving at {running.agent.url} "
        f"(card: {running.agent.url}/.well-known/agent-card.json); Ctrl-C stops",
        highlight=False,
        markup=False,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


def receipts(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the agent's name (as in its TOML file)"),
    role: str | None = typer.Option(None, "--role", help="issued (sold) | received (bought)"),
    provider: int | None = typer.Option(None, "--provider", help="provider agent id"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List the inference receipts an agent served by `bazaar serve` issued or received.

    Example: bazaar receipts assistant --role received --json
    """
    from agentbazaar.agents.spec import receipts_path
    from agentbazaar.agents.store import ReceiptStore

    if role not in (None, "issued", "received"):
        raise ConfigError("--role is 'issued' or 'received'")
    path = receipts_path(run_context(ctx).config, name)
    if not path.is_file():
        raise ConfigError(f"no receipts for agent {name!r} (looked in {path})")
    store = ReceiptStore(path)
    try:
        found = store.query(role=role, provider_agent_id=provider)
    finally:
        store.close()
    rows = [
        {
            "id": s.id,
            "role": s.role,
            "status": s.status,
            "txHash": s.tx_hash,
            "texts": len(s.texts),
            **s.signed.to_json(),
        }
        for s in found
    ]
    if json_out:
        emit_json(rows)
        return
    emit_table(
        f"receipts of {name}",
        ["receipt id", "role", "provider", "price", "status", "settlement tx"],
        [
            [r["id"], r["role"], s.signed.receipt.provider_agent_id, s.signed.receipt.price,
             r["status"], r["txHash"] or ""]
            for r, s in zip(rows, found, strict=True)
        ],
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("serve")(serve)
    app.command("receipts")(receipts)
