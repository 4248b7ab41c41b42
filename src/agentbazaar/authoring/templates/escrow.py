"""Escrow with an arbiter and a deadline ("hold 50 USDC in escrow for carol until dave approves or
7 days pass"): the arbiter's approval pays the payee; otherwise the payer gets it back."""

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


def _parties(run: Run) -> dict[str, str]:
    p = run.params
    return {"payer": p["payer"], "payee": p["payee"], "arbiter": p["arbiter"],
            "stranger": actor("stranger")}  # fmt: skip


def _when(run: Run, draw: Draw) -> None:
    deadline = run.params["deadline"]
    at = int(draw(st.integers(run.box.now, deadline + 86_400)))
    run.box.warp_to(at)


def _held(run: Run) -> int:
    return run.box.balance(run.params["token"], run.contract.address)


# ---- properties ---------------------------------------------------------------------------------
def _release_rule(run: Run, draw: Draw) -> None:
    p, box = run.params, run.box
    who = draw(st.sampled_from(sorted(_parties(run).items())))
    _when(run, draw)
    held, before = _held(run), box.balance(p["token"], p["payee"])
    out = box.call(run.contract, "release", sender=who[1])
    allowed = who[0] == "arbiter" and box.now < p["deadline"]
    expect(out.ok == allowed, f"release by the {who[0]} at {box.now}: ok={out.ok}")
    if out.ok:
        expect(box.balance(p["token"], p["payee"]) - before == held, "payee did not get it all")
        expect(_held(run) == 0, "tokens left in the escrow after release")


def _refund_rule(run: Run, draw: Draw) -> None:
    p, box = run.params, run.box
    who = draw(st.sampled_from(sorted(_parties(run).items())))
    _when(run, draw)
    held, before = _held(run), box.balance(p["token"], p["payer"])
    out = box.call(run.contract, "refund", sender=who[1])
    allowed = who[0] in ("arbiter", "payee") or box.now >= p["deadline"]
    expect(out.ok == allowed, f"refund by the {who[0]} at {box.now}: ok={out.ok}")
    if out.ok:
        expect(box.balance(p["token"], p["payer"]) - before == held, "payer did not get it all")


def _one_outcome(run: Run, draw: Draw) -> None:
    p, box = run.params, run.box
    parties = _parties(run)
    people = [p["payer"], p["payee"], run.contract.address]
    total = sum(box.balance(p["token"], a) for a in people)
    settled = 0
    for _ in range(int(draw(st.integers(1, 5)))):
        _when(run, draw)
        fn = draw(st.sampled_from(["release", "refund"]))
        out = box.call(run.contract, fn, sender=parties[draw(st.sampled_from(sorted(parties)))])
        settled += int(out.ok)
        expect(settled <= 1, "the escrow settled twice")
        expect(sum(box.balance(p["token"], a) for a in people) == total, "tokens went elsewhere")


PROPERTIES = (
    Property(
        "release_rule",
        "only the arbiter releases, only before the deadline; the payee then gets everything held",
        _release_rule,
    ),
    Property(
        "refund_rule",
        "the arbiter or the payee may refund at any time, anyone from the deadline on; the payer "
        "then gets everything held",
        _refund_rule,
    ),
    Property(
        "one_outcome",
        "whatever the calls, the escrow settles at most once and the tokens go only to the payee "
        "or the payer",
        _one_outcome,
    ),
)


# ---- scenario ---------------------------------------------------------------------------------
def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    token, amount, payee, arbiter = p["token"], p["amount"], p["payee"], p["arbiter"]
    funded = box.transfer(token, p["payer"], c.address, amount)
    steps = [
        Step(
            f"{run.name(p['payer'])} funds the escrow with {run.amount(amount)}",
            f"the escrow holds {run.amount(amount)}",
            f"holds {run.amount(_held(run))}",
            funded.ok and _held(run) == amount,
        )
    ]
    early = box.call(c, "release", sender=payee)
    steps.append(
        Step(
            f"{run.name(payee)} tries to release it",
            "it reverts: only the arbiter releases",
            "reverted" if not early.ok else "released",
            not early.ok,
        )
    )
    with box.anchor():  # branch 1: the arbiter approves in time
        before = box.balance(token, payee)
        out = box.call(c, "release", sender=arbiter)
        got = box.balance(token, payee) - before
        steps.append(
            Step(
                f"{run.name(arbiter)} approves before the deadline",
                f"{run.name(payee)} receives {run.amount(amount)}",
                f"received {run.amount(got)}" if out.ok else f"reverted: {out.reason}",
                out.ok and got == amount,
            )
        )
    box.warp_to(p["deadline"])  # branch 2: nobody approves
    late = box.call(c, "release", sender=arbiter)
    steps.append(
        Step(
            "without approval, at the deadline the arbiter tries to release",
            "it reverts: the deadline has passed",
            "reverted" if not late.ok else "released",
            not late.ok,
        )
    )
    before = box.balance(token, p["payer"])
    out = box.call(c, "refund", sender=actor("anyone"))
    got = box.balance(token, p["payer"]) - before
    steps.append(
        Step(
            "anyone calls refund() after the deadline",
            f"{run.name(p['payer'])} gets {run.amount(amount)} back",
            f"got {run.amount(got)} back" if out.ok else f"reverted: {out.reason}",
            out.ok and got == amount,
        )
    )
    return steps


# ---- parameters, parsing, explaining ----------------------------------------------------------
def _me(ctx: Any, done: dict[str, Any]) -> str:
    if ctx.me is None:
        from agentbazaar.errors import NeedsClarification

        raise NeedsClarification("who pays into the escrow? give --wallet", missing=["payer"])
    return str(ctx.me)


PARAMS = (
    Param("token", Kind.TOKEN, "the token held"),
    Param("amount", Kind.AMOUNT, "how much is held"),
    Param("payee", Kind.ADDRESS, "who is paid when the arbiter approves"),
    Param("arbiter", Kind.ADDRESS, "who approves the payment"),
    Param("deadline", Kind.TIMESTAMP, "when the payer can take it back if nobody approved"),
    Param("payer", Kind.ADDRESS, "who funds the escrow and gets refunds", default=_me),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if p["deadline"] <= now:
        raise BadParameters("escrow: the deadline must be in the future")
    if p["payee"] == p["payer"]:
        raise BadParameters("escrow: the payee is the payer")
    if p["arbiter"] == p["payee"]:
        raise BadParameters("escrow: the payee cannot be its own arbiter")


def parse(sentence: str) -> dict[str, Any] | None:
    if not (_text.has_word(sentence, "escrow") or re.search(r"\bhold\b.*\buntil\b", sentence)):
        return None
    raw: dict[str, Any] = {}
    found = _text.amount_token(sentence)
    if found:
        raw["amount"], raw["token"] = found
    raw["payee"] = _text.after(sentence, "for|to|pay|paying")
    m = re.search(rf"\buntil\s+({_text.NAME})\s+(?:approves|releases|confirms|signs off)", sentence)
    m = m or re.search(
        rf"\b(?:approved by|arbiter(?: is)?|arbitrated by)\s+({_text.NAME})", sentence
    )
    raw["arbiter"] = m.group(1) if m else None
    raw["deadline"] = _text.duration_before(
        sentence, "pass|passes|have passed|go by|elapse"
    ) or _text.duration_after(sentence, "within|for up to|deadline of|deadline in|expires in")
    return {k: v for k, v in raw.items() if v is not None}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    fmt = run.amount if run else str
    name = run.name if run else str
    facts = [
        f"Holds {fmt(int(p['amount']))} of the token at {p['token']} for {name(p['payee'])}. "
        f"{name(p['arbiter'])} may release it to {name(p['payee'])} before unix time "
        f"{p['deadline']}; the arbiter or the payee may refund it to {name(p['payer'])} at any "
        "time, and anyone may refund it from the deadline on.",
    ]
    if state:
        outcome = {0: "open", 1: "released to the payee", 2: "refunded to the payer"}
        facts.append(
            f"Now: {outcome.get(int(state['state']), 'unknown')}, {fmt(int(state['held']))} held."
        )
    return facts


TEMPLATE = Template(
    name="escrow",
    contract="templates/Escrow",
    title="Escrow with an arbiter and a deadline",
    summary="Tokens held for a payee until an arbiter approves; refunded to the payer otherwise.",
    params=PARAMS,
    keywords=("escrow", "hold", "approve", "approves", "arbiter", "release", "deadline", "until"),
    examples=(
        "hold 50 USDC in escrow for carol until dave approves or 7 days pass",
        "escrow 200 USDC for bob, approved by carol, deadline in 14 days",
        "hold 10 USDC for dave until carol approves or 48 hours pass",
    ),
    constructor=lambda p: (
        p["token"],
        p["payer"],
        p["payee"],
        p["arbiter"],
        p["amount"],
        p["deadline"],
    ),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    funding=lambda p: [(p["token"], p["amount"])],
    state=("state", "held"),
)
