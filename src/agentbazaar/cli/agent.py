"""`bazaar agent ...`: register agents (ERC-8004), discover them, give paid-only feedback."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    open_wallet,
    run_context,
    server_logging,
    waiting,
)
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import IdentityError, InputError

if TYPE_CHECKING:
    from agentbazaar.agents.spec import AgentSpec
    from agentbazaar.chain import Chain
    from agentbazaar.identity.discovery import AgentRecord, Follower
    from agentbazaar.suite import Suite

app = typer.Typer(
    help="ERC-8004 agents: register, discover, rate (paid-only), read cards.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="agent")


def _suite(cfg: BazaarConfig) -> tuple[Chain, Suite]:
    from agentbazaar.chain import Chain
    from agentbazaar.identity.contracts import IDENTITY_KEY
    from agentbazaar.suite import Suite

    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    if not suite.has(IDENTITY_KEY):
        raise IdentityError("the ERC-8004 registries are not deployed: run `bazaar deploy`")
    return chain, suite


def _follower(cfg: BazaarConfig, chain: Chain, suite: Suite) -> Follower:
    from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
    from agentbazaar.identity.discovery import open_follower

    reputation = suite.contract(REPUTATION_KEY).address if suite.has(REPUTATION_KEY) else None
    follower = open_follower(chain, cfg.home, suite.contract(IDENTITY_KEY).address, reputation)
    with waiting("indexing registry events..."):
        follower.sync()
    return follower


def _account(ctx: typer.Context, name: str | None) -> Any:
    """The account of the command's wallet (``--wallet``, BAZAAR_WALLET, default_wallet): it
    signs a card or a registry call, which moves no tokens."""
    return open_wallet(ctx, name).account_for_deploy()


@app.command("register")
def register_cmd(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="agent config (.toml or .json)"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="agent wallet (default: the config's, BAZAAR_WALLET, ...)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Sign the agent's card with its wallet and register it (agentURI = data: URI). The file
    is the one `bazaar serve` reads: an agent with a kind is registered with the skills and the
    URL it serves (`bazaar serve` later updates the same identity); an agent without one with
    its [[skills]].

    Example: bazaar agent register examples/agents/translator.toml --wallet alice

    Example: bazaar agent register examples/agents/embedder.toml
    """
    from agentbazaar.identity.cards import (
        build_registration,
        load_agent_config,
        register_card,
        sign_card,
    )
    from agentbazaar.identity.contracts import IDENTITY_KEY

    cfg = run_context(ctx).config
    spec = _served(config)
    if spec is not None:
        _register_served(ctx, spec, wallet, json_out)
        return
    agent_config = load_agent_config(config)
    chain, suite = _suite(cfg)
    account = _account(ctx, wallet or agent_config.wallet)
    card = build_registration(agent_config, account.address, suite.tokens, chain.chain_id)
    signed = sign_card(card, account, chain.chain_id)
    with waiting("registering..."):
        agent_id, tx = register_card(chain, suite.contract(IDENTITY_KEY), account, signed)
    out = {"agent_id": agent_id, "tx_hash": tx, "wallet": account.address, "name": card.name}
    if json_out:
        emit_json(out)
    else:
        console.print(f"registered agent {agent_id} ({card.name}) wallet {account.address} tx {tx}")


def _served(path: Path) -> AgentSpec | None:
    """The file's agent when bazaar serves it (it has a kind), else None."""
    from agentbazaar.agents.spec import load_served_spec
    from agentbazaar.identity.cards import read_agent_file

    if read_agent_file(path)["agent"].get("kind") is None:
        return None
    return load_served_spec(path)


def _register_served(
    ctx: typer.Context, spec: AgentSpec, wallet: str | None, json_out: bool
) -> None:
    from agentbazaar.agents.runtime import Network
    from agentbazaar.agents.spec import register_agent
    from agentbazaar.identity.contracts import Registries

    cfg = run_context(ctx).config
    chain, suite = _suite(cfg)
    network = Network(chain, Registries.from_suite(suite), suite.tokens.get("USDC"))
    with waiting("registering..."):
        agent = register_agent(spec, cfg, network, open_wallet(ctx, wallet or spec.agent.wallet))
    out = {
        "agent_id": agent.agent_id,
        "tx_hash": agent.registration_tx,
        "wallet": agent.address,
        "name": agent.name,
        "url": agent.url,
    }
    if json_out:
        emit_json(out)
    else:
        console.print(
            f"registered agent {agent.agent_id} ({agent.name}) wallet {agent.address} "
            f"at {agent.url} tx {agent.registration_tx}",
            soft_wrap=True,
            highlight=False,
        )


def _price(suite: Suite, text: str | None) -> tuple[str | None, int | None]:
    if not text:
        return None, None
    token, units = suite.tokens.parse_amount(text, default_token="USDC")
    if token.address is None:
        raise InputError("agents price in tokens: give the max price like '0.05 USDC'")
    return token.address, units


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InputError(f"--min-rep must be a number, not {text!r}") from exc
    if not value.is_finite():
        raise InputError("--min-rep must be finite")
    return value


def _row(r: AgentRecord, suite: Suite) -> list[Any]:
    prices = []
    for s in r.skills:
        for p in s.get("prices", []):
            token = suite.tokens.get(p["asset"]) if _known(suite, p["asset"]) else None
            amount = token.format(int(p["amount"])) if token else f"{p['amount']} units"
            prices.append(f"{s['id']} {amount}")
    rep = "-" if r.rep_avg is None else f"{r.rep_avg:.2f} ({r.rep_count})"
    trust = "yes" if r.trusted else f"no: {r.reason}"
    return [r.agent_id, r.name, ", ".join(prices), rep, f"{r.score:.2f}", trust]


def _known(suite: Suite, address: str) -> bool:
    try:
        suite.tokens.get(address)
    except InputError:
        return False
    return True


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    skill: str | None = typer.Option(None, "--skill", help="skill id or tag"),
    max_price: str | None = typer.Option(None, "--max-price", help="e.g. '0.05 USDC'"),
    min_rep: str | None = typer.Option(None, "--min-rep", help="minimum proven reputation"),
    inactive: bool = typer.Option(False, "--inactive", help="include inactive agents"),
    untrusted: bool = typer.Option(False, "--untrusted", help="include untrusted agents"),
    limit: int = typer.Option(20, "--limit"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Discover agents, best score first (score: proven reputation, damped for few reviews).

    Example: bazaar agent list --skill translate --max-price "0.05 USDC" --min-rep 80
    """
    from agentbazaar.identity.discovery import Query

    cfg = run_context(ctx).config
    chain, suite = _suite(cfg)
    asset, units = _price(suite, max_price)
    query = Query(
        skill=skill,
        asset=asset,
        max_price=units,
        min_rep=_decimal(min_rep),
        active=None if inactive else True,
        trusted_only=not untrusted,
        limit=limit,
    )
    records = _follower(cfg, chain, suite).index.query(query)
    if json_out:
        emit_json([r.to_dict() for r in records])
        return
    emit_table(
        f"agents on chain {chain.chain_id}",
        ["id", "name", "prices", "reputation", "score", "trusted"],
        [_row(r, suite) for r in records],
    )


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    agent_id: int = typer.Argument(..., min=0),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """One agent: owner, wallet, trust, skills and prices, feedback (proven or why not).

    Example: bazaar agent show 0 --json
    """
    cfg = run_context(ctx).config
    chain, suite = _suite(cfg)
    index = _follower(cfg, chain, suite).index
    record = index.agent(agent_id)
    if record is None:
        raise IdentityError(f"agent {agent_id} is not registered on chain {chain.chain_id}")
    feedback = index.feedback(agent_id)
    if json_out:
        emit_json(dict(record.to_dict(), feedback=feedback))
        return
    trust = "trusted" if record.trusted else f"UNTRUSTED ({record.reason})"
    console.print(f"agent {agent_id}: {record.name} - {trust}", markup=False)
    console.print(f"owner {record.owner}  wallet {record.wallet}", markup=False)
    emit_table(
        "skills", ["id", "name", "prices", "reputation", "score", "trusted"], [_row(record, suite)]
    )
    emit_table(
        "feedback",
        ["client", "#", "value", "proven"],
        [
            [f["client"], f["idx"], f"{Decimal(f['value']).scaleb(-f['decimals'])}",
             "yes" if f["proven"] else f"no: {f['reason']}"]
            for f in feedback
        ],
    )  # fmt: skip


def _value(text: str) -> tuple[int, int]:
    """'4.5' -> (45, 1): the feedback value and its decimals, exactly."""
    try:
        d = Decimal(text)
    except InvalidOperation as exc:
        raise InputError(f"feedback value must be a number, not {text!r}") from exc
    if not d.is_finite():
        raise InputError("feedback value must be finite")
    exponent = int(d.as_tuple().exponent)
    decimals = max(0, -exponent)
    if decimals > 18:
        raise InputError("feedback value has more than 18 decimals")
    return int(d.scaleb(decimals)), decimals


@app.command("feedback")
def feedback_cmd(
    ctx: typer.Context,
    agent_id: int = typer.Argument(..., min=0),
    value: str = typer.Argument(..., help="e.g. 90 or 4.5"),
    payment: str = typer.Option(..., "--payment", help="tx hash of your payment to the agent"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="your wallet, the payer (default: BAZAAR_WALLET, ...)"
    ),
    tag1: str = typer.Option("", "--tag1"),
    tag2: str = typer.Option("", "--tag2"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Rate an agent you paid: the payment is checked on chain before anything is sent.

    Example: bazaar agent feedback 0 95 --payment 0xabc... --wallet bob
    """
    from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
    from agentbazaar.identity.feedback import give_feedback

    cfg = run_context(ctx).config
    chain, suite = _suite(cfg)
    amount, decimals = _value(value)
    index = _follower(cfg, chain, suite).index
    record = index.agent(agent_id)
    if record is None:
        raise IdentityError(f"agent {agent_id} is not registered on chain {chain.chain_id}")
    if not record.wallet:
        raise IdentityError(f"agent {agent_id} has no agentWallet: it cannot have been paid")
    tokens = {p["asset"] for s in record.skills for p in s.get("prices", [])}
    tokens |= {t.address for t in suite.tokens.all() if t.address}
    client = _account(ctx, wallet)
    with waiting("checking the payment and sending feedback..."):
        prepared, tx = give_feedback(
            chain,
            suite.contract(REPUTATION_KEY),
            client,
            identity_registry=suite.contract(IDENTITY_KEY).address,
            agent_id=agent_id,
            agent_wallet=record.wallet,
            value=amount,
            value_decimals=decimals,
            payment_tx=payment,
            tokens=tokens,
            tag1=tag1,
            tag2=tag2,
        )
    out = {"agent_id": agent_id, "tx_hash": tx, "feedback_hash": "0x" + prepared.hash.hex()}
    if json_out:
        emit_json(out)
    else:
        console.print(f"feedback {value} for agent {agent_id} sent (tx {tx})")


@app.command("card")
def card_cmd(
    ctx: typer.Context,
    agent_id: int = typer.Argument(..., min=0),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Print the agent's card and whether its signature and its wallet check out.

    The wallet must be the agent's on-chain agentWallet.

    Example: bazaar agent card 0
    """
    from agentbazaar.identity.cards import check_wallet, fetch_document, parse_card
    from agentbazaar.identity.contracts import IDENTITY_KEY

    cfg = run_context(ctx).config
    chain, suite = _suite(cfg)
    identity = suite.contract(IDENTITY_KEY)
    try:
        uri = str(chain.call(identity.functions.tokenURI(agent_id)))
    except Exception as exc:
        raise IdentityError(
            f"agent {agent_id} is not registered on chain {chain.chain_id}"
        ) from exc
    raw = fetch_document(uri)
    try:
        card: Any = json.loads(raw)
    except ValueError:
        card = raw.decode("utf-8", "replace")
    status: dict[str, Any] = {"verified": True, "reason": ""}
    try:
        parsed = parse_card(raw)
        check_wallet(parsed, str(chain.call(identity.functions.getAgentWallet(agent_id))))
    except IdentityError as exc:
        status = {"verified": False, "reason": f"{type(exc).__name__}: {exc}"}
    if json_out:
        emit_json(
            {"agent_id": agent_id, "uri_scheme": uri.split(":", 1)[0], "card": card, **status}
        )
        return
    sys.stdout.write(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    note = (
        "signature and wallet verified"
        if status["verified"]
        else f"NOT verified: {status['reason']}"
    )
    console.print(note, markup=False)


@app.command("discovery-server")
def discovery_server_cmd(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8404, "--port"),
) -> None:
    """Serve discovery over HTTP (GET /agents?skill=&max_price=&asset=&min_rep=, /agents/ID).

    Example: bazaar agent discovery-server --port 8404
    """
    import uvicorn

    from agentbazaar.identity.server import create_app

    cfg = run_context(ctx).config
    chain, suite = _suite(cfg)
    follower = _follower(cfg, chain, suite)
    api = create_app(follower.index, follower=follower, tokens=suite.tokens)
    console.print(f"discovery on http://{host}:{port}/agents (chain {chain.chain_id})")
    server_logging(ctx)
    uvicorn.run(api, host=host, port=port, log_level="warning")
