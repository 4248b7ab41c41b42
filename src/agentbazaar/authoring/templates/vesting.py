"""Linear vesting with a cliff ("vest 1,000 USDC to bob over 12 months with a 3 month cliff")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from agentbazaar.authoring import _text
from agentbazaar.authoring.params import Kind, Param
from agentbazaar.authoring.sandbox import actor
from agentbazaar.authoring.template import Draw, Property, Run, Step, Template, expect
from agentbazaar.errors import BadParameters


def _vested(p: Mapping[str, Any], at: int) -> int:
    start, cliff, duration, total = (int(p[k]) for k in ("start", "cliff", "duration", "amount"))
    if at < start + cliff:
        return 0
    if at >= start + duration:
        return int(total)
    return int(total) * (at - start) // int(duration)


def _time(run: Run, draw: Draw) -> int:
    p = run.params
    return int(draw(st.integers(p["start"] - 86_400, p["start"] + p["duration"] + 86_400)))


# ---- properties ---------------------------------------------------------------------------------
def _nothing_before_cliff(run: Run, draw: Draw) -> None:
    p = run.params
    low, high = max(run.box.now, p["start"] - 86_400), p["start"] + p["cliff"] - 1
    if high < low:
        return  # no moment before the cliff is still ahead
    run.box.warp_to(int(draw(st.integers(low, high))))
    expect(
        run.box.view(run.contract, "releasable") == 0, "something is releasable before the cliff"
    )
    out = run.box.call(run.contract, "release", sender=p["beneficiary"])
    expect(not out.ok, "release paid before the cliff")


def _vested_monotone_and_bounded(run: Run, draw: Draw) -> None:
    a, b = sorted((_time(run, draw), _time(run, draw)))
    va = run.box.view(run.contract, "vested_amount", a)
    vb = run.box.view(run.contract, "vested_amount", b)
    total = run.params["amount"]
    expect(va <= vb <= total, f"vested({a})={va}, vested({b})={vb}, total {total}")
    expect(va == _vested(run.params, a), f"vested({a}) is {va}, expected {_vested(run.params, a)}")
    end = run.params["start"] + run.params["duration"]
    expect(run.box.view(run.contract, "vested_amount", end) == total, "not all vested at the end")


def _conservation(run: Run, draw: Draw) -> None:
    p = run.params
    token, ben, c = p["token"], p["beneficiary"], run.contract
    caller = draw(st.sampled_from([ben, run.deployer, actor("stranger")]))
    before = run.box.balance(token, ben)
    for _ in range(int(draw(st.integers(1, 4)))):
        run.box.warp_to(max(run.box.now, _time(run, draw)))
        run.box.call(c, "release", sender=caller)
        released = run.box.view(c, "released")
        held = run.box.balance(token, c.address)
        expect(released + held == p["amount"], f"released {released} + held {held} != total")
        expect(run.box.balance(token, ben) - before == released, "beneficiary got != released")
        expect(released == _vested(p, run.box.now), f"released {released} at {run.box.now}")


PROPERTIES = (
    Property(
        "nothing_before_cliff",
        "nothing is releasable before start + cliff, and release() reverts",
        _nothing_before_cliff,
    ),
    Property(
        "vested_monotone_bounded",
        "vested(t) = total * (t - start) / duration between cliff and end: it never decreases, "
        "never exceeds the total and is the total at the end",
        _vested_monotone_and_bounded,
    ),
    Property(
        "conservation",
        "whoever calls release(), released + balance == total and the beneficiary received "
        "exactly what was released",
        _conservation,
    ),
)


# ---- the sentence's own scenario ------------------------------------------------------------------
def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    token, ben, total = p["token"], p["beneficiary"], p["amount"]
    steps = []
    funded = box.transfer(token, run.deployer, c.address, total)
    steps.append(
        Step(
            f"{run.name(run.deployer)} funds the contract with {run.amount(total)}",
            f"the contract holds {run.amount(total)}",
            f"holds {run.amount(box.balance(token, c.address))}",
            funded.ok and box.balance(token, c.address) == total,
        )
    )
    cliff_at = p["start"] + p["cliff"]
    if p["cliff"] > 0:
        box.warp_to(cliff_at - 1)
        early = box.call(c, "release", sender=ben)
        steps.append(
            Step(
                f"one second before the cliff, {run.name(ben)} calls release()",
                "it reverts: nothing has vested",
                "reverted" if not early.ok else f"paid {run.amount(int(early.value))}",
                not early.ok,
            )
        )
    first = (
        ("at the cliff", cliff_at) if p["cliff"] else ("half way", p["start"] + p["duration"] // 2)
    )
    for label, at in (first, ("at the end", p["start"] + p["duration"])):
        steps.append(_claim(run, label, at))
    final = box.balance(token, ben)
    steps.append(
        Step(
            "afterwards",
            f"{run.name(ben)} received {run.amount(total)} in all; the contract holds nothing",
            f"received {run.amount(box.view(c, 'released'))}, contract holds "
            f"{run.amount(box.balance(token, c.address))}",
            box.view(c, "released") == total and box.balance(token, c.address) == 0 and final > 0,
        )
    )
    return steps


def _claim(run: Run, label: str, at: int) -> Step:
    p, box, c = run.params, run.box, run.contract
    ben = p["beneficiary"]
    box.warp_to(max(box.now, at))
    due = _vested(p, box.now) - box.view(c, "released")
    before = box.balance(p["token"], ben)
    out = box.call(c, "release", sender=ben)
    got = box.balance(p["token"], ben) - before
    return Step(
        f"{label}, {run.name(ben)} calls release()",
        f"{run.name(ben)} receives {run.amount(due)}",
        f"received {run.amount(got)}" if out.ok else f"reverted: {out.reason}",
        out.ok and got == due,
    )


# ---- parameters, parsing, explaining ----------------------------------------------------------------
def _now(ctx: Any, done: dict[str, Any]) -> int:
    return int(ctx.now)


PARAMS = (
    Param("token", Kind.TOKEN, "the token that vests"),
    Param("amount", Kind.AMOUNT, "how much vests in all"),
    Param("beneficiary", Kind.ADDRESS, "who receives the vested tokens"),
    Param("duration", Kind.DURATION, "how long until everything has vested"),
    Param("cliff", Kind.DURATION, "how long before anything vests", default=lambda c, d: 0),
    Param("start", Kind.TIMESTAMP, "when the vesting starts", default=_now),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if p["duration"] <= 0:
        raise BadParameters("vesting: the duration must be more than zero")
    if p["cliff"] > p["duration"]:
        raise BadParameters(
            f"vesting: the cliff ({p['cliff']} s) is longer than the vesting ({p['duration']} s)"
        )


def parse(sentence: str) -> dict[str, Any] | None:
    if not _text.has_word(sentence, "vest"):
        return None
    raw: dict[str, Any] = {}
    found = _text.amount_token(sentence)
    if found:
        raw["amount"], raw["token"] = found
    raw["beneficiary"] = _text.after(sentence, "to|for")
    raw["duration"] = _text.duration_after(sentence, "over|across|during|for")
    cliff = _text.duration_before(sentence, "cliff") or _text.duration_after(sentence, "cliff of")
    if cliff:
        raw["cliff"] = cliff
    elif _text.has_word(sentence, "no cliff"):
        raw["cliff"] = "0"
    start = _text.duration_after(sentence, "starting in|start in|starts in")
    if start:
        raw["start"] = start
    return {k: v for k, v in raw.items() if v is not None}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    fmt = run.amount if run else str
    name = run.name if run else str
    facts = [
        f"Vests tokens at {p['token']} to {name(p['beneficiary'])}: nothing before the cliff "
        f"({p['cliff']} s after the start at unix time {p['start']}), then linearly until "
        f"{p['duration']} s after the start, when everything has vested.",
        "Anyone may call release(); the tokens always go to the beneficiary. Nobody can take "
        "them back.",
    ]
    if state:
        facts.append(
            f"Now: {fmt(int(state['held']))} held, {fmt(int(state['released']))} released, "
            f"{fmt(int(state['releasable']))} releasable."
        )
    return facts


TEMPLATE = Template(
    name="vesting",
    contract="templates/LinearVesting",
    title="Linear vesting with a cliff",
    summary="Tokens vest linearly to one beneficiary after a cliff; anyone can release them.",
    params=PARAMS,
    keywords=("vest", "vesting", "cliff", "unlock", "gradually", "schedule"),
    examples=(
        "vest 1,000 USDC to bob over 12 months with a 3 month cliff",
        "vest 500 USDC for carol over 2 years with a 6 month cliff",
        "vest 120 USDC to dave over 30 days",
    ),
    constructor=lambda p: (p["token"], p["beneficiary"], p["start"], p["cliff"], p["duration"]),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    funding=lambda p: [(p["token"], p["amount"])],
    state=("released", "releasable"),
)
