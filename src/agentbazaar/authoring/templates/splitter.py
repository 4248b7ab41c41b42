"""Revenue splitter ("split this agent's income 70/30 between alice and bob"): the data layer's
``RevenueSplitter.vy`` deployed stand-alone: shares, pull payments, an exact integer split with
the remainder carried, optional upstream royalties."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from agentbazaar.authoring import _text
from agentbazaar.authoring.params import Kind, Param
from agentbazaar.authoring.sandbox import actor
from agentbazaar.authoring.template import Draw, Property, Run, Step, Template, expect
from agentbazaar.errors import BadParameters

ZERO = "0x0000000000000000000000000000000000000000"


class _Model:
    """The split in integers, as the contract must do it (royalties, floors, carry)."""

    def __init__(self, p: Mapping[str, Any]) -> None:
        self.shares = dict(zip(p["payees"], p["shares"], strict=True))
        self.bps = [p["royalty_bps"]] if p.get("upstream") else []
        self.owed = dict.fromkeys(self.shares, 0)
        self.carry = 0

    def income(self, amount: int) -> int:
        royalties: int = sum(amount * int(b) // 10_000 for b in self.bps)
        pool = amount - royalties + self.carry
        total = sum(self.shares.values())
        credited = 0
        for payee, s in self.shares.items():
            self.owed[payee] += pool * s // total
            credited += pool * s // total
        self.carry = pool - credited
        return royalties


def _pay_in(run: Run, amount: int) -> None:
    box, token = run.box, run.params["token"]
    box.deal(token, run.contract.address, box.balance(token, run.contract.address) + amount)


def _exact_split(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    model = _Model(p)
    upstream_got = 0
    for _ in range(int(draw(st.integers(1, 5)))):
        amount = int(draw(st.integers(0, 10**12)))
        _pay_in(run, amount)
        before = box.balance(p["token"], p["upstream"]) if p.get("upstream") else 0
        box.must(c, "distribute")
        royalties = model.income(amount) if amount else 0
        if p.get("upstream"):
            upstream_got = box.balance(p["token"], p["upstream"]) - before
            expect(upstream_got == royalties, f"royalty {upstream_got}, expected {royalties}")
        for payee in p["payees"]:
            owed = box.view(c, "owed", payee)
            expect(owed == model.owed[payee], f"owed {owed} != model {model.owed[payee]}")
        expect(box.view(c, "carry") == model.carry, "carry differs from the integer model")
        expect(model.carry < len(p["payees"]), "carry not below the number of payees")


def _pull_payments(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    _pay_in(run, int(draw(st.integers(1, 10**12))))
    caller = draw(st.sampled_from([*p["payees"], actor("stranger")]))
    target = draw(st.sampled_from([*p["payees"], actor("stranger")]))
    due = box.view(c, "releasable", target)
    before = box.balance(p["token"], target)
    out = box.call(c, "release", target, sender=caller)
    got = box.balance(p["token"], target) - before
    expect(got == (due if out.ok else 0), f"release paid {got}, releasable was {due}")
    expect(target in p["payees"] or got == 0, "a stranger was paid")


def _never_more_out(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    for _ in range(int(draw(st.integers(1, 5)))):
        _pay_in(run, int(draw(st.integers(0, 10**9))))
        box.call(c, "release", draw(st.sampled_from(p["payees"])), sender=actor("anyone"))
        received, released = box.view(c, "totalReceived"), box.view(c, "totalReleased")
        royalties, held = box.view(c, "totalRoyalties"), box.view(c, "held")
        expect(received == released + royalties + held, "received != released + royalties + held")
        expect(box.balance(p["token"], c.address) >= held, "holds less than it accounts")


PROPERTIES = (
    Property(
        "exact_split",
        "each income is split in integers exactly as the model: royalties first, then "
        "floor(pool * shares / total) per payee, the remainder carried (fewer units than payees)",
        _exact_split,
    ),
    Property(
        "pull_payments",
        "release(account) pays exactly what is releasable, to that account only, whoever calls",
        _pull_payments,
    ),
    Property(
        "never_more_out",
        "totalReceived == totalReleased + totalRoyalties + held, and the balance covers held",
        _never_more_out,
    ),
)


def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    token = p["token"]
    income = 100 * 10 ** _decimals(run)
    sent = box.transfer(token, run.deployer, c.address, income)
    steps = [Step(f"{run.name(run.deployer)} earns {run.amount(income)} into the splitter",
                  f"the splitter holds {run.amount(income)}",
                  f"holds {run.amount(box.balance(token, c.address))}", sent.ok)]  # fmt: skip
    model = _Model(p)
    model.income(income)
    for payee in p["payees"]:
        before = box.balance(token, payee)
        out = box.call(c, "release", payee, sender=payee)
        got = box.balance(token, payee) - before
        steps.append(
            Step(
                f"{run.name(payee)} pulls its share",
                f"receives {run.amount(model.owed[payee])}",
                f"received {run.amount(got)}" if out.ok else f"reverted: {out.reason}",
                out.ok and got == model.owed[payee],
            )
        )
    return steps


def _decimals(run: Run) -> int:
    try:
        return int(run.box.view(run.box.token(run.params["token"]), "decimals"))
    except Exception:  # a token without decimals(): count base units
        return 0


def _usdc(ctx: Any, done: dict[str, Any]) -> str:
    return str(ctx.tokens.get("USDC").address)


PARAMS = (
    Param("payees", Kind.ADDRESSES, "who shares the income", max_length=64),
    Param("shares", Kind.SHARES, "each payee's share, in the same order", max_length=64),
    Param("token", Kind.TOKEN, "the token split (default USDC)", default=_usdc),
    Param("upstream", Kind.ADDRESS, "who gets a royalty off the top", required=False),
    Param("royalty_bps", Kind.BPS, "the upstream's royalty", default=lambda c, d: 0),
    Param("owner", Kind.ADDRESS, "who may change the shares (none: fixed)", required=False),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if len(p["payees"]) != len(p["shares"]):
        raise BadParameters(f"splitter: {len(p['payees'])} payees but {len(p['shares'])} shares")
    if bool(p.get("upstream")) != bool(p["royalty_bps"]):
        raise BadParameters("splitter: a royalty needs both an upstream and a percentage")
    if p.get("upstream") in p["payees"]:
        raise BadParameters("splitter: the upstream is also a payee")


def parse(sentence: str) -> dict[str, Any] | None:
    if not _text.has_word(sentence, "split", "share"):
        return None
    raw: dict[str, Any] = {}
    ratio = re.search(r"\b(\d+(?:\s*/\s*\d+)+)\b", sentence)
    who = re.search(
        rf"\b(?:between|among|to)\s+((?:{_text.NAME})(?:\s*(?:,|and|&)\s*(?:{_text.NAME}))*)",
        sentence,
    )
    if who:
        raw["payees"] = _text.names_list(who.group(1))
    if ratio:
        raw["shares"] = [s.strip() for s in ratio.group(1).split("/")]
    elif _text.has_word(sentence, "equally", "evenly") and who:
        raw["shares"] = ["1"] * len(raw["payees"])
    found = _text.amount_token(sentence)
    if found:
        raw["token"] = found[1]
    royalty = re.search(rf"(\d+(?:\.\d+)?%)\s+(?:royalty\s+)?(?:to|for)\s+({_text.NAME})", sentence)
    if royalty:
        raw["royalty_bps"], raw["upstream"] = royalty.group(1), royalty.group(2)
    owner = _text.after(sentence, "owned by")
    if owner:
        raw["owner"] = owner
    return {k: v for k, v in raw.items() if v}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    name = run.name if run else str
    fmt = run.amount if run else str
    parts = ", ".join(f"{name(a)} {s}" for a, s in zip(p["payees"], p["shares"], strict=True))
    facts = [
        f"Splits everything it receives of the token at {p['token']} by shares ({parts}); each "
        "payee pulls its part with release(); the integer remainder is carried to the next split."
        + (f" {name(p['upstream'])} first gets {p['royalty_bps'] / 100}% off the top."
           if p.get("upstream") else "")
        + (f" {name(p['owner'])} may change the shares." if p.get("owner") else
           " Nobody can change the shares."),
    ]  # fmt: skip
    if state:
        facts.append(
            f"Now: {fmt(int(state['totalReceived']))} received in all, "
            f"{fmt(int(state['totalReleased']))} paid out."
        )
    return facts


TEMPLATE = Template(
    name="splitter",
    contract="RevenueSplitter",
    title="Revenue splitter",
    summary="Income split by shares in exact integers, each payee pulling its part; optional "
    "upstream royalties (the data layer's RevenueSplitter).",
    params=PARAMS,
    keywords=("split", "share", "income", "revenue", "royalty", "between", "percent"),
    examples=(
        "split this agent's income 70/30 between alice and bob",
        "split USDC income 50/30/20 between alice, bob and carol",
        "split income equally between bob and carol with 10% royalty to dave",
    ),
    constructor=lambda p: (
        p["token"],
        p["payees"],
        p["shares"],
        [p["upstream"]] if p.get("upstream") else [],
        [p["royalty_bps"]] if p.get("upstream") else [],
        p.get("owner") or ZERO,
    ),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    state=("totalReceived", "totalReleased"),
)
