"""Market tools: discover agents, hire one, understand and carry out plain-language intents."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import Field

from agentbazaar.errors import IdentityError, InputError
from agentbazaar.tools._money import ToolArgs, _usdc, money, price_limit

if TYPE_CHECKING:
    from agentbazaar.agents.hiring import Buyer
    from agentbazaar.identity.discovery import AgentRecord
    from agentbazaar.tools._toolbox import Toolbox

MAX_TEXTS = 64


class DiscoverArgs(ToolArgs):
    skill: str | None = Field(None, description="a skill id or tag, e.g. 'embed'")
    max_price: str | None = Field(None, description="most per unit of work, e.g. '0.01 USDC'")
    min_reputation: Decimal | None = Field(
        None, description="minimum proven average feedback (0-100)"
    )
    limit: int = Field(10, ge=1, le=100)


class HireArgs(ToolArgs):
    skill: str = Field(description="the skill to buy, e.g. 'embed'")
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS, description="the input texts")
    max_price: str = Field(description="most to pay for the whole job, e.g. '0.01 USDC'")


class IntentArgs(ToolArgs):
    sentence: str = Field(min_length=1, max_length=2000, description="what to do, in English")


class DoArgs(IntentArgs):
    idempotency_key: str | None = Field(None, description="a retry with it never pays twice")


def _registries(box: Toolbox) -> Any:
    from agentbazaar.identity.contracts import IDENTITY_KEY, Registries

    if not box.suite.has(IDENTITY_KEY):
        raise IdentityError("the ERC-8004 registries are not deployed on this chain")
    return Registries.from_suite(box.suite)


def agent_json(box: Toolbox, r: AgentRecord) -> dict[str, Any]:
    """An indexed agent with its prices in token units."""
    prices = []
    for skill in r.skills:
        for p in skill.get("prices", []):
            try:
                token = box.suite.tokens.get(p["asset"])
                shown = token.format(int(p["amount"]))
            except InputError:
                shown = f"{p['amount']} base units of {p['asset']}"
            prices.append({"skill": skill.get("id"), "price": shown, "units": str(p["amount"])})
    return {
        "agent_id": r.agent_id,
        "name": r.name,
        "description": r.description,
        "wallet": r.wallet,
        "trusted": r.trusted,
        "reason": r.reason,
        "reputation": r.rep_avg,
        "reviews": r.rep_count,
        "score": round(r.score, 4),
        "prices": prices,
    }


def discover(box: Toolbox, args: DiscoverArgs) -> dict[str, Any]:
    from agentbazaar.identity.discovery import Query, open_follower

    regs = _registries(box)
    asset = units = None
    if args.max_price is not None:
        token = _usdc(box)
        units, asset = price_limit(box, args.max_price, token), token.address
    follower = open_follower(
        box.chain, box.cfg.home, str(regs.identity.address), str(regs.reputation.address)
    )
    try:
        follower.sync()
        found = follower.index.query(
            Query(skill=args.skill, asset=asset, max_price=units,
                  min_rep=args.min_reputation, limit=args.limit)
        )  # fmt: skip
    finally:
        follower.index.close()
    return {"agents": [agent_json(box, r) for r in found]}


def _buyer(box: Toolbox) -> Buyer:
    """The paying wallet as a buyer of agents' work (kept for the toolbox's life)."""
    buyer: Buyer | None = box.cache.get("buyer")
    if buyer is None:
        from agentbazaar.agents.hiring import Buyer
        from agentbazaar.agents.runtime import Agent, Network

        wallet = box.wallet()
        network = Network(box.chain, _registries(box), _usdc(box))
        agent = Agent(wallet.name, wallet, network, data_dir=box.cfg.home / "agents" / wallet.name)
        buyer = box.cache.setdefault("buyer", Buyer(agent))
    return buyer


def hire(box: Toolbox, args: HireArgs) -> dict[str, Any]:
    token = _usdc(box)
    limit = price_limit(box, args.max_price, token)
    hired = _buyer(box).hire(args.skill, {"texts": args.texts}, limit)
    return {
        "provider": {"name": hired.provider.name, "agent_id": hired.provider.agent_id},
        "paid": money(token, hired.price),
        "tx_hash": hired.tx_hash,
        "receipt_id": hired.receipt.id,
        "feedback": hired.feedback_value,
        "skipped": hired.skipped,
        "output": [[round(float(x), 6) for x in row] for row in hired.output],
    }


def intent(box: Toolbox, args: IntentArgs) -> dict[str, Any]:
    from agentbazaar.intents import PlanError, parse_intent
    from agentbazaar.intents.act import carry_out

    parsed = parse_intent(args.sentence)
    out: dict[str, Any] = {"intent": parsed.stable(), "plan": None, "signed": False}
    if box.wallet_name is None:
        out["note"] = "no paying wallet: parsed only"
        return out
    try:
        planned = carry_out(parsed, suite=box.suite, wallet=box.wallet(), execute=False)
    except (InputError, PlanError) as exc:
        out["note"] = f"not planned: {exc}"
        return out
    out["plan"] = planned.to_dict()["plan"]
    return out


def do(box: Toolbox, args: DoArgs) -> dict[str, Any]:
    from agentbazaar.intents import parse_intent
    from agentbazaar.intents.act import carry_out

    parsed = parse_intent(args.sentence)
    done = carry_out(
        parsed, suite=box.suite, wallet=box.wallet(), execute=True,
        idempotency_key=args.idempotency_key,
    )  # fmt: skip
    return done.to_dict()
