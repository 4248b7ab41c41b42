"""Capped token ("create a token called Gold with symbol GLD capped at 1,000,000 and mint 1,000 to
alice"): snekmate's ERC-20 whose supply can never pass the cap."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from agentbazaar.authoring import _text
from agentbazaar.authoring.params import Kind, Param
from agentbazaar.authoring.sandbox import actor
from agentbazaar.authoring.template import Draw, Property, Run, Step, Template, expect
from agentbazaar.errors import BadParameters, NeedsClarification
from agentbazaar.units import format_units

_ACTORS = ("a", "b", "c")


def _holders(run: Run) -> list[str]:
    return [run.params["holder"], run.deployer, *(actor(f"holder-{x}") for x in _ACTORS)]


def _supply_capped(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    cap = p["cap"]
    for _ in range(int(draw(st.integers(1, 6)))):
        supply = box.view(c, "totalSupply")
        room = cap - supply
        amount = int(draw(st.one_of(st.just(room + 1), st.integers(0, room), st.integers(0, cap))))
        to = draw(st.sampled_from(_holders(run)))
        out = box.call(c, "mint", to, amount, sender=run.deployer)
        expect(out.ok == (supply + amount <= cap), f"mint {amount} at supply {supply}: {out}")
        expect(box.view(c, "totalSupply") <= cap, "supply above the cap")


def _balances_add_up(run: Run, draw: Draw) -> None:
    box, c = run.box, run.contract
    holders = _holders(run)
    for _ in range(int(draw(st.integers(1, 6)))):
        frm, to = draw(st.sampled_from(holders)), draw(st.sampled_from(holders))
        bal = box.view(c, "balanceOf", frm)
        amount = int(draw(st.integers(0, bal + 1)))
        out = box.call(c, "transfer", to, amount, sender=frm)
        expect(out.ok == (amount <= bal), f"transfer {amount} of {bal}: {out}")
        total = sum(box.view(c, "balanceOf", h) for h in set(holders))
        expect(total == box.view(c, "totalSupply"), "balances do not add up to the supply")


def _only_minters(run: Run, draw: Draw) -> None:
    box, c = run.box, run.contract
    who = actor(f"holder-{draw(st.sampled_from(_ACTORS))}")
    supply = box.view(c, "totalSupply")
    out = box.call(c, "mint", who, 1, sender=who)
    expect(not out.ok and box.view(c, "totalSupply") == supply, "a non-minter minted")


PROPERTIES = (
    Property(
        "supply_capped",
        "whatever is minted, totalSupply <= cap, and a mint past the cap reverts",
        _supply_capped,
    ),
    Property(
        "balances_add_up",
        "transfers move exactly the amount (never more than the balance) and the balances add up "
        "to totalSupply",
        _balances_add_up,
    ),
    Property("only_minters", "only minters mint", _only_minters),
)


def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    name = run.name
    fmt = _fmt(p)
    held = box.view(c, "balanceOf", p["holder"])
    steps = [
        Step(
            f"after deployment, {name(p['holder'])} holds the initial supply",
            fmt(p["initial_supply"]),
            fmt(held),
            held == p["initial_supply"],
        )
    ]
    room = p["cap"] - box.view(c, "totalSupply")
    if room > 0:
        out = box.call(c, "mint", p["holder"], room, sender=run.deployer)
        steps.append(
            Step(
                f"{name(run.deployer)} mints up to the cap ({fmt(room)})",
                "it goes through",
                "minted" if out.ok else f"reverted: {out.reason}",
                out.ok,
            )
        )
    over = box.call(c, "mint", p["holder"], 1, sender=run.deployer)
    steps.append(
        Step(
            "one more base unit is minted",
            "it reverts: cap exceeded",
            "reverted" if not over.ok else "minted",
            not over.ok,
        )
    )
    return steps


def _fmt(p: Mapping[str, Any]) -> Any:
    return lambda units: f"{format_units(int(units), int(p['decimals']))} {p['symbol']}"


def _me(ctx: Any, done: dict[str, Any]) -> str:
    if ctx.me is None:
        raise NeedsClarification("who receives the initial supply?", missing=["holder"])
    return str(ctx.me)


PARAMS = (
    Param("name", Kind.TEXT, "the token's name", max_length=25),
    Param("symbol", Kind.TEXT, "the token's symbol", max_length=5),
    Param("decimals", Kind.INTEGER, "decimal places", default=lambda c, d: 18),
    Param("cap", Kind.AMOUNT, "the most that can ever exist"),
    Param("initial_supply", Kind.AMOUNT, "minted at deployment", default=lambda c, d: 0),
    Param("holder", Kind.ADDRESS, "who receives the initial supply", default=_me),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if not 0 <= p["decimals"] <= 36:
        raise BadParameters("token: decimals must be between 0 and 36")
    if p["cap"] <= 0:
        raise BadParameters("token: the cap must be more than zero")
    if p["initial_supply"] > p["cap"]:
        raise BadParameters("token: the initial supply is more than the cap")
    if not re.fullmatch(r"[A-Za-z0-9]{1,5}", p["symbol"]):
        raise BadParameters("token: the symbol is 1 to 5 letters or digits")


def parse(sentence: str) -> dict[str, Any] | None:
    if not (_text.has_word(sentence, "token", "coin") and _text.has_word(sentence, "cap")):
        return None
    raw: dict[str, Any] = {}
    name = re.search(
        r"\b(?:called|named)\s+\"?([A-Za-z][\w ]{0,24}?)\"?(?=\s*(?:\(|,|with|symbol|capped|$))",
        sentence,
    )
    raw["name"] = name.group(1).strip() if name else None
    symbol = re.search(r"\(([A-Za-z0-9]{1,5})\)|\bsymbol\s+([A-Za-z0-9]{1,5})\b", sentence)
    raw["symbol"] = (symbol.group(1) or symbol.group(2)).upper() if symbol else None
    cap = re.search(rf"\b(?:capped at|cap of|max(?:imum)? supply of)\s+({_text.NUMBER})", sentence)
    raw["cap"] = _text.plain_number(cap.group(1)) if cap else None
    mint = re.search(
        rf"\b(?:mint|minting|with)\s+({_text.NUMBER})\s+(?:\w+\s+)?(?:to|for)\s+({_text.NAME})",
        sentence,
    )
    if mint:
        raw["initial_supply"], raw["holder"] = _text.plain_number(mint.group(1)), mint.group(2)
    decimals = re.search(r"\b(\d{1,2})\s+decimals\b", sentence)
    if decimals:
        raw["decimals"] = decimals.group(1)
    return {k: v for k, v in raw.items() if v is not None}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    fmt = _fmt(p)
    name = run.name if run else str
    facts = [
        f"An ERC-20 token {p['name']} ({p['symbol']}, {p['decimals']} decimals) whose supply can "
        f"never exceed {fmt(p['cap'])}; {fmt(p['initial_supply'])} went to {name(p['holder'])} "
        "at deployment; the deployer owns it and may mint up to the cap.",
    ]
    if state:
        facts.append(f"Now: {fmt(int(state['totalSupply']))} exist.")
    return facts


TEMPLATE = Template(
    name="token",
    contract="templates/CappedToken",
    title="Capped token",
    summary="An ERC-20 (snekmate) whose total supply can never exceed a cap.",
    params=PARAMS,
    keywords=("token", "coin", "erc20", "erc-20", "cap", "capped", "supply", "mint", "create"),
    examples=(
        "create a token called Gold with symbol GLD capped at 1,000,000 and mint 1,000 to alice",
        "a capped token named Points (PTS) with a cap of 10,000,000, mint 500 to bob",
        "create a token called Credits with symbol CRD capped at 21m",
    ),
    constructor=lambda p: (
        p["name"],
        p["symbol"],
        p["decimals"],
        p["cap"],
        p["holder"],
        p["initial_supply"],
    ),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    state=("totalSupply",),
)
