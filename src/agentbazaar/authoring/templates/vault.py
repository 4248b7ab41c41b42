"""Spending-limit vault, the on-chain agent account ("let bob spend up to 20 USDC per day from a
vault owned by me, paying only carol and dave"): a person owns it; the agent's session key pays
allowlisted payees within a per-period cap per token, directly or through EIP-3009 authorizations
the token accepts via ERC-1271."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak
from hypothesis import strategies as st

from agentbazaar.authoring import _text
from agentbazaar.authoring.params import Kind, Param
from agentbazaar.authoring.sandbox import actor
from agentbazaar.authoring.template import Draw, Property, Run, Step, Template, expect
from agentbazaar.errors import BadParameters, NeedsClarification

MAGIC = bytes.fromhex("1626ba7e")
_TEST_KEY = keccak(text="agentbazaar-vault-property-session-key")  # sandbox only, never funded


def _session(run: Run) -> str:
    """A session key the sandbox can sign with, added by the owner (the filled key signs
    nothing here: we do not hold its private key)."""
    key = Account.from_key(_TEST_KEY)
    run.box.must(
        run.contract,
        "set_session_key",
        key.address,
        run.box.now + 10**8,
        sender=run.params["owner"],
    )
    return str(key.address)


def _sign(digest: bytes, key: bytes = _TEST_KEY) -> bytes:
    signed = Account.unsafe_sign_hash(digest, key)
    return bytes(signed.signature)


def _caps_never_exceeded(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    agent = _session(run)
    token, cap, period = p["token"], p["cap"], p["period"]
    spent: dict[int, int] = {}
    start_balance = box.balance(token, c.address)
    paid = 0
    for _ in range(int(draw(st.integers(1, 8)))):
        box.warp(int(draw(st.integers(0, period))))
        amount = int(draw(st.integers(1, max(cap, 1) * 2)))
        to = draw(st.sampled_from(p["payees"]))
        now = box.view(c, "current_period")
        fits = spent.get(now, 0) + amount <= cap and amount <= start_balance - paid
        out = box.call(c, "pay", token, to, amount, sender=agent)
        expect(out.ok == fits, f"pay {amount} in period {now} (spent {spent.get(now, 0)}): {out}")
        if out.ok:
            spent[now] = spent.get(now, 0) + amount
            paid += amount
        expect(spent.get(now, 0) <= cap, f"period {now}: spent {spent.get(now)} > cap {cap}")
        expect(box.balance(token, c.address) == start_balance - paid, "balance fell by != paid")


def _who_may_pay(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    agent = _session(run)
    token = p["token"]
    amount = int(draw(st.integers(1, max(p["cap"], 1))))
    stranger = actor("stranger")
    expect(not box.call(c, "pay", token, stranger, amount, sender=agent).ok, "paid a non-payee")
    expect(
        not box.call(c, "pay", token, p["payees"][0], amount, sender=stranger).ok, "a stranger paid"
    )
    box.must(c, "set_session_key", agent, 0, sender=p["owner"])  # revoked
    expect(
        not box.call(c, "pay", token, p["payees"][0], amount, sender=agent).ok, "a revoked key paid"
    )
    big = box.balance(token, c.address)
    if big > 0:
        out = box.call(c, "pay", token, stranger, big, sender=p["owner"])
        expect(out.ok, f"the owner could not pay: {out.reason}")


def _signatures(run: Run, draw: Draw) -> None:
    p, box, c = run.params, run.box, run.contract
    agent = _session(run)
    digest = bytes(draw(st.binary(min_size=32, max_size=32)))
    expect(
        box.view(c, "isValidSignature", digest, _sign(digest)) != MAGIC,
        "an unauthorized digest validated",
    )
    amount = int(draw(st.integers(1, max(p["cap"], 1) * 2)))
    nonce = bytes(draw(st.binary(min_size=32, max_size=32)))
    out = box.call(
        c, "authorize_transfer", p["token"], p["payees"][0], amount, 0, 2**64, nonce, sender=agent
    )
    expect(out.ok == (amount <= p["cap"]), f"authorize {amount} with cap {p['cap']}: {out}")
    if out.ok:
        signed = bytes(out.value)
        expect(box.view(c, "isValidSignature", signed, _sign(signed)) == MAGIC, "not valid")
        other = os.urandom(32)
        expect(
            box.view(c, "isValidSignature", signed, _sign(signed, other)) != MAGIC,
            "another key's signature validated",
        )


PROPERTIES = (
    Property(
        "caps_never_exceeded",
        "in every period, what a session key paid of a token is at most its cap, and the vault's "
        "balance falls by exactly what was paid",
        _caps_never_exceeded,
    ),
    Property(
        "who_may_pay",
        "session keys pay only allowlisted payees and nothing once revoked; strangers pay "
        "nothing; the owner pays anyone",
        _who_may_pay,
    ),
    Property(
        "erc1271",
        "isValidSignature accepts a session key's signature only on a digest it pre-authorized "
        "within the cap",
        _signatures,
    ),
)


def scenario(run: Run) -> list[Step]:
    p, box, c = run.params, run.box, run.contract
    token, cap, agent = p["token"], p["cap"], p["session_key"]
    steps: list[Step] = []
    fund = p.get("fund") or cap * 2
    box.deal(token, c.address, box.balance(token, c.address) + fund)
    to = p["payees"][0]
    first = box.call(c, "pay", token, to, cap, sender=agent)
    steps.append(
        Step(
            f"the agent ({run.name(agent)}) pays {run.name(to)} the whole cap, {run.amount(cap)}",
            "it goes through",
            "paid" if first.ok else f"reverted: {first.reason}",
            first.ok,
        )
    )
    again = box.call(c, "pay", token, to, 1, sender=agent)
    steps.append(
        Step(
            "the agent pays one more base unit in the same period",
            "it reverts: over the cap",
            "reverted" if not again.ok else "paid",
            not again.ok,
        )
    )
    stranger = actor("not-on-the-list")
    box.warp(p["period"])
    odd = box.call(c, "pay", token, stranger, 1, sender=agent)
    steps.append(
        Step(
            "next period, the agent pays someone not on the list",
            "it reverts: payee not allowed",
            "reverted" if not odd.ok else "paid",
            not odd.ok,
        )
    )
    ok = box.call(c, "pay", token, to, cap, sender=agent)
    steps.append(
        Step(
            f"next period, the agent pays {run.name(to)} {run.amount(cap)} again",
            "it goes through: the cap is per period",
            "paid" if ok.ok else f"reverted: {ok.reason}",
            ok.ok,
        )
    )
    return steps


def _me(ctx: Any, done: dict[str, Any]) -> str:
    if ctx.me is None:
        raise NeedsClarification(
            "who owns the vault? give --wallet or say 'owned by NAME'", missing=["owner"]
        )
    return str(ctx.me)


PARAMS = (
    Param("token", Kind.TOKEN, "the token the agent may spend"),
    Param("cap", Kind.AMOUNT, "how much the agent may spend per period", rate=True),
    Param("session_key", Kind.ADDRESS, "the agent (its session key)"),
    Param("payees", Kind.ADDRESSES, "who the agent may pay", max_length=16),
    Param("period", Kind.DURATION, "the spending period", default=lambda c, d: 86_400),
    Param("owner", Kind.ADDRESS, "the person who owns the vault", default=_me),
    Param(
        "session_until",
        Kind.TIMESTAMP,
        "when the session key expires",
        default=lambda c, d: int(c.now) + 30 * 86_400,
    ),
    Param("fund", Kind.AMOUNT, "how much to put in the vault now", required=False),
    Param("epoch", Kind.TIMESTAMP, "when the first period starts", default=lambda c, d: int(c.now)),
)


def validate(p: Mapping[str, Any], now: int) -> None:
    if p["period"] <= 0:
        raise BadParameters("vault: the period must be more than zero")
    if p["session_key"] == p["owner"]:
        raise BadParameters("vault: the agent's session key cannot be the owner")
    if p["session_until"] <= now:
        raise BadParameters("vault: the session key would already be expired")
    if p["epoch"] > now:
        raise BadParameters("vault: the first period cannot start in the future")
    if not p["payees"]:
        raise BadParameters("vault: name at least one payee the agent may pay")


_PERIODS = {"second": "1 second", "minute": "1 minute", "hour": "1 hour", "day": "1 day",
            "week": "1 week", "month": "1 month", "daily": "1 day", "weekly": "1 week",
            "hourly": "1 hour", "monthly": "1 month"}  # fmt: skip


def parse(sentence: str) -> dict[str, Any] | None:
    if not (_text.has_word(sentence, "vault", "agent account", "session key", "spending limit")):
        return None
    raw: dict[str, Any] = {}
    found = _text.amount_token(sentence)
    if found:
        raw["cap"], raw["token"] = found
    m = re.search(r"\b(?:per|a|an|each|every)\s+(second|minute|hour|day|week|month)\b", sentence)
    m = m or re.search(r"\b(daily|weekly|hourly|monthly)\b", sentence)
    if m:
        raw["period"] = _PERIODS[m.group(1)]
    owner = _text.after(sentence, "owned by")
    if owner:
        raw["owner"] = owner
    agent = re.search(
        rf"\b(?:agent account for|let|lets|allow|allows|for agent|agent|session key)\s+"
        rf"(?!account\b|can\b|spend\b)({_text.NAME})\b",
        sentence,
    )
    raw["session_key"] = agent.group(1) if agent else None
    payees = re.search(
        rf"\b(?:paying only|only to|only pay|pay only|payees?)\s+((?:{_text.NAME})"
        rf"(?:\s*(?:,|and|&)\s*(?!fund\b|with\b)(?:{_text.NAME}))*)",
        sentence,
    )
    if payees:
        raw["payees"] = _text.names_list(payees.group(1))
    fund = re.search(
        rf"\bfund(?:ed)?(?: it)? with\s+({_text.NUMBER}(?:\s*[A-Za-z]{{2,6}})?)", sentence
    )
    if fund:
        raw["fund"] = fund.group(1)
    return {k: v for k, v in raw.items() if v is not None}


def describe(p: Mapping[str, Any], state: Mapping[str, Any], run: Run | None) -> list[str]:
    fmt = run.amount if run else str
    name = run.name if run else str
    payees = ", ".join(name(a) for a in p["payees"])
    facts = [
        f"An account owned by {name(p['owner'])}. The agent's session key "
        f"{name(p['session_key'])} (until unix time {p['session_until']}) may pay only "
        f"{payees}, at most {fmt(int(p['cap']))} per {p['period']} s; the owner pays anyone "
        "and changes caps, payees and session keys. EIP-3009 payments signed by the session key "
        "validate through ERC-1271 once pre-authorized within the cap.",
    ]
    if state:
        facts.append(f"Now: {fmt(int(state['remaining']))} left to spend in this period.")
    return facts


TEMPLATE = Template(
    name="vault",
    contract="templates/SpendingVault",
    title="Spending-limit vault (agent account)",
    summary="A person's account where an agent's session key pays allowlisted payees within a "
    "per-period cap; ERC-1271 for its EIP-3009 payments.",
    params=PARAMS,
    keywords=(
        "vault",
        "agent account",
        "spend",
        "spending",
        "limit",
        "cap",
        "session key",
        "allowance",
        "per day",
        "daily",
        "budget",
    ),
    examples=(
        "let bob spend up to 20 USDC per day from a vault owned by me, paying only carol and dave",
        "a vault where agent bob can spend 5 USDC per hour, only to carol",
        "agent account for bob: 100 USDC per week, paying only carol, dave and erin, fund it "
        "with 300 USDC",
    ),
    constructor=lambda p: (
        p["owner"],
        p["session_key"],
        p["session_until"],
        p["token"],
        p["cap"],
        p["period"],
        p["epoch"],
        p["payees"],
    ),
    properties=PROPERTIES,
    scenario=scenario,
    parse=parse,
    describe=describe,
    validate=validate,
    funding=lambda p: [(p["token"], p["fund"])] if p.get("fund") else [],
    extra={"sandbox_funding": lambda p: [(p["token"], p.get("fund") or 2 * p["cap"])]},
    state=("remaining",),
)
