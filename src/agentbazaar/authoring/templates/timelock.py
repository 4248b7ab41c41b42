"""Timelock ("a timelock with a 2 day delay where alice proposes and bob executes"): snekmate's
TimelockController; calls run only after the delay, proposed and executed by named roles."""

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
_NO_PREDECESSOR = b"\0" * 32


def _op(run: Run, draw: Draw) -> tuple[str, int, bytes, bytes, bytes]:
    """A harmless operation: a call with no data to a fresh address."""
    target = actor(f"target-{draw(st.integers(0, 3))}")
    salt = bytes(draw(st.binary(min_size=32, max_size=32)))
    return target, 0, b"", _NO_PREDECESSOR, salt


def _delay_respected(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    delay = p["min_delay"] + int(draw(st.integers(0, 86_400)))
    op = _op(run, draw)
    box.must(c, "schedule", *op, delay, sender=p["proposers"][0])
    scheduled = box.now
    box.warp(int(draw(st.integers(0, delay - 1))) if delay > 0 else 0)
    early = box.call(c, "execute", *op, sender=p["executors"][0])
    expect(not early.ok or box.now >= scheduled + delay, "executed before the delay")
    box.warp_to(scheduled + delay)
    expect(box.call(c, "execute", *op, sender=p["executors"][0]).ok, "not executable after delay")
    expect(not box.call(c, "execute", *op, sender=p["executors"][0]).ok, "executed twice")


def _roles(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    stranger = actor("stranger")
    op = _op(run, draw)
    who = draw(st.sampled_from([stranger, *p["executors"], *p["proposers"]]))
    out = box.call(c, "schedule", *op, p["min_delay"], sender=who)
    expect(out.ok == (who in p["proposers"]), f"schedule by {who}: {out}")
    if not out.ok:
        box.must(c, "schedule", *op, p["min_delay"], sender=p["proposers"][0])
    box.warp(p["min_delay"])
    runner = draw(st.sampled_from([stranger, *p["executors"], *p["proposers"]]))
    out = box.call(c, "execute", *op, sender=runner)
    expect(out.ok == (runner in p["executors"]), f"execute by {runner}: {out}")


def _min_delay(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    if p["min_delay"] == 0:
        return  # no delay is below zero
    short = int(draw(st.integers(0, p["min_delay"] - 1)))
    out = box.call(c, "schedule", *_op(run, draw), short, sender=p["proposers"][0])
    expect(not out.ok, f"scheduled with a delay of {short} s below the minimum")


PROPERTIES = (
    Property(
        "delay_respected",
        "a scheduled operation cannot run before its delay has passed, runs after it, and runs "
        "at most once",
        _delay_respected,
    ),
    Property("roles", "only proposers schedule and only executors execute", _roles),
    Property("min_delay", "a delay below the minimum is refused", _min_delay),
)


def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    proposer, executor = p["proposers"][0], p["executors"][0]
    op = (actor("target-0"), 0, b"", _NO_PREDECESSOR, b"\1" * 32)
    out = box.call(c, "schedule", *op, p["min_delay"], sender=proposer)
    steps = [
        Step(
            f"{run.name(proposer)} schedules a call with the minimum delay ({p['min_delay']} s)",
            "it is scheduled",
            "scheduled" if out.ok else f"reverted: {out.reason}",
            out.ok,
        )
    ]
    if p["min_delay"] > 0:
        early = box.call(c, "execute", *op, sender=executor)
        steps.append(
            Step(
                f"{run.name(executor)} executes it at once",
                "it reverts: not ready",
                "reverted" if not early.ok else "executed",
                not early.ok,
            )
        )
    box.warp(p["min_delay"])
    done = box.call(c, "execute", *op, sender=executor)
    steps.append(
        Step(
            f"after the delay, {run.name(executor)} executes it",
            "it runs",
            "executed" if done.ok else f"reverted: {done.reason}",
            done.ok,
        )
    )
    return steps


PARAMS = (
    Param("min_delay", Kind.DURATION, "the minimum delay of every operation"),
    Param("proposers", Kind.ADDRESSES, "who schedules and cancels operations", max_length=16),
    Param("executors", Kind.ADDRESSES, "who executes ready operations", max_length=16),
    Param("admin", Kind.ADDRESS, "an optional role administrator", required=False),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if not p["proposers"] or not p["executors"]:
        raise BadParameters("timelock: name at least one proposer and one executor")
    if p["min_delay"] > 365 * 86_400:
        raise BadParameters("timelock: a minimum delay over a year locks everything away")


def parse(sentence: str) -> dict[str, Any] | None:
    if not _text.has_word(sentence, "timelock", "time lock", "time-lock"):
        return None
    raw: dict[str, Any] = {}
    raw["min_delay"] = _text.duration_before(sentence, "delay|timelock") or _text.duration_after(
        sentence, "delay of|delayed by|minimum delay of"
    )
    group = rf"((?:{_text.NAME})(?:\s*(?:,|and|&)\s*(?:{_text.NAME}))*?)"
    prop = re.search(rf"\b{group}\s+(?:proposes?|propose and cancel)\b", sentence)
    prop = prop or re.search(rf"\bproposers?\s+{group}(?=\s*(?:,|;|and \w+ execut|$))", sentence)
    exe = re.search(rf"\b{group}\s+execut(?:es?|ors?)\b", sentence)
    exe = exe or re.search(rf"\bexecutors?\s+{group}(?=\s*(?:,|;|$))", sentence)
    raw["proposers"] = _text.names_list(prop.group(1).split(" where ")[-1]) if prop else None
    raw["executors"] = _text.names_list(exe.group(1).split(" and ")[-1]) if exe else None
    admin = _text.after(sentence, "admin|administered by")
    if admin:
        raw["admin"] = admin
    return {k: v for k, v in raw.items() if v}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    name = run.name if run else str
    facts = [
        f"A timelock: {', '.join(name(a) for a in p['proposers'])} schedule (and cancel) calls, "
        f"{', '.join(name(a) for a in p['executors'])} execute them once at least "
        f"{p['min_delay']} s have passed; the minimum delay changes only through the timelock "
        "itself." + ("" if not p.get("admin") else f" {name(p['admin'])} administers roles."),
    ]
    if state:
        facts.append(f"Now: minimum delay {int(state['get_minimum_delay'])} s.")
    return facts


TEMPLATE = Template(
    name="timelock",
    contract="templates/Timelock",
    title="Timelock",
    summary="Calls scheduled by proposers run only after a minimum delay, by executors "
    "(snekmate's TimelockController).",
    params=PARAMS,
    keywords=("timelock", "time lock", "delay", "propose", "proposer", "execute", "governance"),
    examples=(
        "a timelock with a 2 day delay where alice proposes and bob executes",
        "create a timelock: delay of 12 hours, proposers alice and carol, executors bob",
        "a 1 week timelock where carol proposes and dave executes",
    ),
    constructor=lambda p: (p["min_delay"], p["proposers"], p["executors"], p["admin"] or ZERO),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    state=("get_minimum_delay",),
)
