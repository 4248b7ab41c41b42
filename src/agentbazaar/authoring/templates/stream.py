"""Streaming payment ("stream 300 USDC to bob over 30 days", "stream 10 USDC per day to bob for
30 days"): paid by the second, cancellable by either side, the rest refunded."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from agentbazaar.authoring import _text
from agentbazaar.authoring.params import Kind, Param, parse_duration
from agentbazaar.authoring.sandbox import actor
from agentbazaar.authoring.template import Draw, Property, Run, Step, Template, expect
from agentbazaar.errors import BadParameters, NeedsClarification


def _streamed(p: Mapping[str, Any], at: int, canceled: int = 0) -> int:
    t: int = min(at, int(p["start"]) + int(p["duration"]))
    if canceled:
        t = min(t, canceled)
    if t <= p["start"]:
        return 0
    return int(p["amount"]) * (t - int(p["start"])) // int(p["duration"])


def _time(run: Run, draw: Draw) -> int:
    p = run.params
    return int(draw(st.integers(run.box.now, p["start"] + p["duration"] + 3_600)))


def _streamed_shape(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    a, b = sorted((_time(run, draw), _time(run, draw)))
    sa, sb = box.view(c, "streamed", a), box.view(c, "streamed", b)
    expect(sa <= sb <= p["amount"], f"streamed({a})={sa} streamed({b})={sb}")
    expect(sa == _streamed(p, a), f"streamed({a}) is {sa}, expected {_streamed(p, a)}")
    expect(box.view(c, "streamed", p["start"]) == 0, "something streamed at the start")
    expect(box.view(c, "streamed", p["start"] + p["duration"]) == p["amount"], "not all at stop")


def _withdraw_conservation(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    caller = draw(st.sampled_from([p["recipient"], p["sender"], actor("stranger")]))
    for _ in range(int(draw(st.integers(1, 4)))):
        box.warp_to(max(box.now, _time(run, draw)))
        box.call(c, "withdraw", sender=caller)
        withdrawn = box.view(c, "withdrawn")
        expect(withdrawn == _streamed(p, box.now), f"withdrawn {withdrawn} at {box.now}")
        expect(box.balance(p["token"], c.address) == p["amount"] - withdrawn, "balance drifted")


def _cancel_split(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    token, sender, recipient = p["token"], p["sender"], p["recipient"]
    who = draw(st.sampled_from([sender, recipient, actor("stranger")]))
    box.warp_to(max(box.now, _time(run, draw)))
    before = (box.balance(token, sender), box.balance(token, recipient))
    out = box.call(c, "cancel", sender=who)
    allowed = who in (sender, recipient) and box.now < p["start"] + p["duration"]
    expect(out.ok == allowed, f"cancel by {who} at {box.now}: ok={out.ok}")
    if not out.ok:
        return
    due = _streamed(p, box.now)
    expect(box.balance(token, recipient) - before[1] == due, "recipient not paid what streamed")
    expect(box.balance(token, sender) - before[0] == p["amount"] - due, "sender not refunded")
    box.warp(int(draw(st.integers(1, p["duration"]))))
    expect(not box.call(c, "withdraw", sender=recipient).ok, "it kept streaming after cancel")


PROPERTIES = (
    Property(
        "streamed_shape",
        "streamed(t) = amount * (t - start) / duration: zero at the start, never decreasing, the "
        "whole amount at the stop",
        _streamed_shape,
    ),
    Property(
        "withdraw_conservation",
        "whoever calls withdraw(), withdrawn == streamed(now) and the balance is amount - withdrawn",
        _withdraw_conservation,
    ),
    Property(
        "cancel_split",
        "only the sender or the recipient cancels, before the stop; the recipient gets exactly "
        "what streamed, the sender the rest, and nothing streams afterwards",
        _cancel_split,
    ),
)


def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    token, amount, recipient, sender = p["token"], p["amount"], p["recipient"], p["sender"]
    funded = box.transfer(token, sender, c.address, amount)
    held = box.balance(token, c.address)
    steps = [
        Step(
            f"{run.name(sender)} funds the stream with {run.amount(amount)}",
            f"the stream holds {run.amount(amount)}",
            f"holds {run.amount(held)}",
            funded.ok and held == amount,
        )
    ]
    half = p["start"] + p["duration"] // 2
    box.warp_to(half)
    due = _streamed(p, half)
    before = box.balance(token, recipient)
    out = box.call(c, "withdraw", sender=recipient)
    got = box.balance(token, recipient) - before
    steps.append(
        Step(
            f"half way, {run.name(recipient)} withdraws",
            f"{run.name(recipient)} receives {run.amount(due)}",
            f"received {run.amount(got)}" if out.ok else f"reverted: {out.reason}",
            out.ok and got == due,
        )
    )
    box.warp_to(p["start"] + 3 * p["duration"] // 4)
    owed = _streamed(p, box.now) - box.view(c, "withdrawn")
    before_s, before_r = box.balance(token, sender), box.balance(token, recipient)
    out = box.call(c, "cancel", sender=sender)
    paid = box.balance(token, recipient) - before_r
    back = box.balance(token, sender) - before_s
    steps.append(
        Step(
            f"at three quarters, {run.name(sender)} cancels",
            f"{run.name(recipient)} gets {run.amount(owed)}, {run.name(sender)} gets "
            f"{run.amount(amount - due - owed)} back",
            f"paid {run.amount(paid)}, refunded {run.amount(back)}"
            if out.ok
            else f"reverted: {out.reason}",
            out.ok and paid == owed and back == amount - due - owed,
        )
    )
    return steps


def _now(ctx: Any, done: dict[str, Any]) -> int:
    return int(ctx.now)


def _me(ctx: Any, done: dict[str, Any]) -> str:
    if ctx.me is None:
        raise NeedsClarification("who funds the stream? give --wallet", missing=["sender"])
    return str(ctx.me)


PARAMS = (
    Param("token", Kind.TOKEN, "the token streamed"),
    Param("amount", Kind.AMOUNT, "everything streamed from start to stop"),
    Param("recipient", Kind.ADDRESS, "who receives the stream"),
    Param("duration", Kind.DURATION, "how long the stream runs"),
    Param("start", Kind.TIMESTAMP, "when the stream starts", default=_now),
    Param("sender", Kind.ADDRESS, "who funds the stream and gets the rest back", default=_me),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if p["duration"] <= 0:
        raise BadParameters("stream: the duration must be more than zero")
    if p["recipient"] == p["sender"]:
        raise BadParameters("stream: the recipient is the sender")


_RATE = re.compile(
    rf"({_text.NUMBER})\s*([A-Za-z]{{2,6}})\s+(?:per|a|an|each|every)\s+(second|minute|hour|day|week|month)",
    re.IGNORECASE,
)


def parse(sentence: str) -> dict[str, Any] | None:
    if not _text.has_word(sentence, "stream"):
        return None
    raw: dict[str, Any] = {}
    raw["recipient"] = _text.after(sentence, "to|for")
    duration = _text.duration_after(sentence, "over|for|during|across")
    raw["duration"] = duration
    rate = _RATE.search(sentence)
    if rate and duration:
        per = parse_duration(f"1 {rate.group(3)}")
        total = Decimal(_text.plain_number(rate.group(1)).replace(",", "")) * parse_duration(
            duration
        )
        raw["amount"] = format((total / per).normalize(), "f")
        raw["token"] = rate.group(2).upper()
    else:
        found = _text.amount_token(sentence)
        if found:
            raw["amount"], raw["token"] = found
    return {k: v for k, v in raw.items() if v is not None}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    fmt = run.amount if run else str
    name = run.name if run else str
    facts = [
        f"Streams {fmt(int(p['amount']))} to {name(p['recipient'])} from unix time {p['start']} "
        f"over {p['duration']} s, by the second; {name(p['sender'])} or "
        f"{name(p['recipient'])} may cancel before the end, and the rest goes back to "
        f"{name(p['sender'])}.",
    ]
    if state:
        canceled = int(state["canceled_at"])
        facts.append(
            f"Now: {fmt(int(state['withdrawn']))} withdrawn, "
            f"{fmt(int(state['withdrawable']))} withdrawable"
            + (f", canceled at unix time {canceled}." if canceled else ".")
        )
    return facts


TEMPLATE = Template(
    name="stream",
    contract="templates/PaymentStream",
    title="Streaming payment",
    summary="Tokens stream to a recipient by the second; either side may cancel, the rest is "
    "refunded.",
    params=PARAMS,
    keywords=("stream", "streaming", "per second", "salary", "drip", "continuous", "cancel"),
    examples=(
        "stream 300 USDC to bob over 30 days",
        "stream 10 USDC per day to carol for 2 weeks",
        "stream 1 USDC per hour to dave for 3 days",
    ),
    constructor=lambda p: (
        p["token"],
        p["sender"],
        p["recipient"],
        p["amount"],
        p["start"],
        p["start"] + p["duration"],
    ),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    funding=lambda p: [(p["token"], p["amount"])],
    state=("withdrawn", "withdrawable", "canceled_at"),
)
