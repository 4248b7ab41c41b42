"""`bazaar contract`: contracts from a sentence, verified on chain.

bazaar contract templates                                        # what can be made
bazaar contract new "vest 1,000 USDC to bob over 12 months with a 3 month cliff" -w alice
bazaar contract new "hold 50 USDC in escrow for carol until dave approves or 7 days pass" \\
    -w alice --yes --json                                        # deploy, fund, verify
bazaar contract verify 0x...                                     # reproduce the match
bazaar contract explain 0x...                                    # what it does, in words
"""

from __future__ import annotations

from typing import Any

import typer

from agentbazaar.cli._common import (
    RunContext,
    console,
    emit_json,
    emit_table,
    err_console,
    run_context,
    wallet_name,
)
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import CheckFailed, InputError, ModelError

app = typer.Typer(help="Contracts from a sentence: templates, checks, simulation, verification.")


def _setup(rc: RunContext, wallet_name: str | None) -> dict[str, Any]:
    """Chain, suite tokens, the wallet, names and the record store of this data directory.

    Names are the wallets' authenticated addresses (the sealed address book), read only when a
    wallet is given: reading them needs the passphrase."""
    cfg = rc.config
    from agentbazaar.authoring import Namer, RecordStore
    from agentbazaar.chain import Chain
    from agentbazaar.suite import Suite
    from agentbazaar.wallet import KeyStore, open_wallet

    chain = Chain.from_config(cfg)
    wallet = open_wallet(cfg, wallet_name, rc.passphrase()) if wallet_name else None
    manifest = None
    if chain.backend == "embedded":
        manifest = _embedded_bootstrap(chain, cfg, wallet.address if wallet else None)
    suite = Suite(chain, cfg, manifest)
    keys = KeyStore(cfg.keystore_dir)
    names: dict[str, str] = {}
    if wallet_name:
        listed = keys.listing(rc.passphrase())
        names = {w.address.lower(): w.name for w in listed if w.address is not None}
    return {
        "chain": chain,
        "wallet": wallet,
        "tokens": suite.tokens,
        "keys": keys,
        "namer": Namer(suite.tokens, names),
        "store": RecordStore(cfg.home),
    }


def _embedded_bootstrap(chain: Any, cfg: BazaarConfig, address: str | None) -> Any:
    """The embedded chain lives in this process only: deploy the stablecoin and fund the
    wallet from the dev faucet (10 ETH, 10,000 USDC) so a sentence can run end to end."""
    from agentbazaar.chain.devkeys import dev_account
    from agentbazaar.deployment import deploy_suite

    ctx = deploy_suite(chain, cfg, only={"USDC"})
    if address:
        chain.fund_native(address, 10 * 10**18)
        chain.transact(
            dev_account(0), ctx.contracts["USDC"].functions.mint(address, 10_000 * 10**6)
        )
    return ctx.manifest


def new(
    ctx: typer.Context,
    sentence: str = typer.Argument(..., help="what the contract should do, in English"),
    wallet: str | None = typer.Option(None, "--wallet", "-w", help="deployer (or BAZAAR_WALLET)"),
    yes: bool = typer.Option(False, "--yes", help="deploy, fund and verify (else a dry run)"),
    approve: bool = typer.Option(False, "--approve", help="approve spends above the threshold"),
    examples: int = typer.Option(10, "--examples", min=1, max=500, help="examples per property"),
    no_model: bool = typer.Option(
        False, "--no-model", help="only the deterministic parsers (never the language model)"
    ),
    model_size: str = typer.Option("1.5b", "--model", help="language model: 1.5b or 0.5b"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Template and parameters -> source -> compile -> checks -> simulation -> policy -> deploy
    (only with --yes) -> verify. The parsers read the sentence first; the local language model
    (when installed) is asked only for what they cannot read, and its answer is checked
    against the sentence.

    Example: bazaar contract new "vest 1,000 USDC to bob over 12 months with a 3 month cliff" -w alice
    """
    from agentbazaar.authoring import ResolveContext, deploy, draft

    rc = run_context(ctx)
    name = wallet_name(ctx, wallet)
    env = _setup(rc, name)
    chain, w = env["chain"], env["wallet"]
    keys = env["keys"]
    rctx = ResolveContext(names=lambda n: keys.address_of(n, rc.passphrase()), tokens=env["tokens"],
                          now=chain.timestamp(), me=w.address)  # fmt: skip
    live = err_console.is_terminal and not json_out  # progress only for a person watching
    say = (lambda step: err_console.print(f"[dim]... {step}[/dim]")) if live else None
    filler = None if no_model else _model_filler(model_size)
    d = draft(sentence, chain=chain, wallet=w, ctx=rctx, store=env["store"], namer=env["namer"],
              filler=filler, examples=examples, approve=approve, progress=say)  # fmt: skip
    from agentbazaar.authoring.pipeline import Authored

    result = Authored(d)
    if d.ok and yes:
        result = deploy(d, chain=chain, wallet=w, store=env["store"], tokens=env["tokens"],
                        approve=approve, progress=say)  # fmt: skip
    doc = result.to_dict()
    if json_out:
        emit_json(doc)
    else:
        _show(doc, dry=not yes)
    if not d.ok:
        raise CheckFailed("not deployed: " + "; ".join(d.failures()))


def _model_filler(size: str) -> Any:
    """The language model behind the parsers; it loads only if a sentence needs it."""
    from agentbazaar.authoring import ModelFiller

    if size.lower() not in ("0.5b", "1.5b"):
        raise InputError(f"--model is 0.5b or 1.5b, not {size!r}")
    return ModelFiller(size=size)


def _show(doc: dict[str, Any], *, dry: bool) -> None:
    console.print(f"template: {doc['template']} ({doc['contract']}), source {doc['source_id']}")
    for answer in doc.get("model") or []:
        chose = "chose the template and " if doc.get("chosen_by") == "model" else ""
        console.print(
            f"the model ({answer['model']}, {answer['seconds']} s) {chose}read what the parsers "
            "could not; every value it gave was checked against the sentence"
        )
    emit_table("parameters", ["name", "value", "from"],
               [[k, v, doc["param_sources"].get(k, "")] for k, v in doc["params"].items()])  # fmt: skip
    emit_table("checks", ["check", "result", "detail"],
               [[c["name"], c["result"], c["detail"]] for c in doc["checks"]])  # fmt: skip
    emit_table("simulation (a copy of the chain)", ["step", "expected", "happened", "ok"],
               [[s["action"], s["expect"], s["result"], "yes" if s["ok"] else "NO"]
                for s in doc["simulation"]])  # fmt: skip
    emit_table("spends (policy checked)", ["kind", "token", "amount", "to"],
               [[s["kind"], s["token"], s["amount"], s["to"]] for s in doc["spends"]])  # fmt: skip
    if doc["address"]:
        v = doc["verification"] or {}
        console.print(f"deployed at {doc['address']} (tx {doc['tx']}); verification: "
                      f"{v.get('status')}")  # fmt: skip
    elif dry:
        console.print("dry run: nothing signed; add --yes to deploy, fund and verify")


def verify(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="the contract's address"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Rebuild a contract made here from its record and compare it with the chain.

    Example: bazaar contract verify 0x5FbDB2315678afecb367f032d93F642f64180aa3 --json
    """
    from agentbazaar.authoring import verify_address
    from agentbazaar.errors import NotVerified

    env = _setup(run_context(ctx), None)
    result = verify_address(env["chain"], env["store"], address)
    if json_out:
        emit_json(result.to_dict())
    else:
        console.print(f"{result.address}: {result.status} (runtime {result.runtime}, creation "
                      f"{result.creation}); source {result.source_id}")  # fmt: skip
        for reason in result.reasons:
            console.print(f"  {reason}")
    if not result.verified:
        raise NotVerified(f"{result.address} does not match its record")


def explain(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="the contract's address"),
    no_model: bool = typer.Option(False, "--no-model", help="the template's own sentences only"),
    model_size: str = typer.Option("1.5b", "--model", help="language model: 1.5b or 0.5b"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """What a verified contract does: facts from its template, parameters and state now, and
    (with the local model) the same facts in plain sentences, checked to add none.

    Example: bazaar contract explain 0x5FbDB2315678afecb367f032d93F642f64180aa3
    """
    from agentbazaar.authoring import explain as explain_contract
    from agentbazaar.authoring.prose import in_words

    env = _setup(run_context(ctx), None)
    doc = explain_contract(env["chain"], env["store"], address, env["namer"])
    model, why = None, None
    if not no_model:
        try:
            model = _model_filler(model_size).model
        except ModelError as exc:  # no model here: the template's own sentences
            why = f"the model could not help ({exc.message}): the template's own words"
    names = [n for n in env["namer"].names.values() if n != "the contract"]
    doc["in_words"] = in_words(doc, model, names=names)
    doc["in_words"]["note"] = doc["in_words"]["note"] or why
    if json_out:
        emit_json(doc)
        return
    console.print(f"{doc['title']} at {doc['address']} ({doc['verification']['status']})")
    for fact in doc["facts"]:
        console.print(f"- {fact}")
    words = doc["in_words"]
    if words["source"] == "model":
        console.print(f"\nIn plain words ({words['model']}, checked against the facts):")
        console.print(words["text"])
    elif words["note"]:
        console.print(f"\n({words['note']})")


def templates(json_out: bool = typer.Option(False, "--json")) -> None:
    """The templates a sentence can become, their parameters and invariants.

    Example: bazaar contract templates --json
    """
    from agentbazaar.authoring import TEMPLATES

    docs = [t.summary_dict() for t in TEMPLATES.values()]
    if json_out:
        emit_json(docs)
        return
    for t in docs:
        console.print(f"[bold]{t['name']}[/bold]: {t['title']}. {t['summary']}")
        console.print("  e.g. " + t["examples"][0])
        console.print("  parameters: " + ", ".join(p["name"] for p in t["params"]))


def register(root: typer.Typer) -> None:
    app.command("new")(new)
    app.command("verify")(verify)
    app.command("explain")(explain)
    app.command("templates")(templates)
    root.add_typer(app, name="contract")
