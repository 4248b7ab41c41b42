"""The binding of an MCP payment to its call, without a chain: the arguments hash is canonical,
and a payment is refused before verification exactly when it was made for another call."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from x402.schemas import PaymentRequirements

from agentbazaar.payments.mcp import MCP_EXTRA, _Call, _refusal, arguments_hash, tool_resource
from agentbazaar.payments.reasons import ERR_INVALID_PAYMENT, ERR_OTHER_ARGUMENTS, ERR_OTHER_TOOL

NAMES = st.sampled_from(["forecast", "translate", "boom", "echo"])
ARGS = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none()),
    max_size=4,
)


def sold(name: str, arguments: dict[str, Any]) -> _Call:
    digest = arguments_hash(arguments)
    requirement = PaymentRequirements(
        scheme="exact",
        network="eip155:31337",
        asset="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        amount="1000",
        pay_to="0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2", MCP_EXTRA: {"tool": name, "arguments": digest}},
    )
    return _Call(name, arguments, digest, requirement)


def payment_for(call: _Call) -> dict[str, Any]:
    """A payment as the SDK's client builds it: the requirement copied into ``accepted``."""
    return {
        "x402Version": 2,
        "accepted": call.requirement.model_dump(by_alias=True, mode="json"),
        "resource": {"url": tool_resource(call.name)},
        "payload": {"signature": "0x00", "authorization": {}},
    }


@given(ARGS)
def test_arguments_hash_ignores_key_order(arguments: dict[str, Any]) -> None:
    reordered = dict(reversed(list(arguments.items())))
    assert arguments_hash(reordered) == arguments_hash(arguments)


@given(NAMES, ARGS, NAMES, ARGS)
def test_refused_exactly_when_made_for_another_call(
    name: str, arguments: dict[str, Any], paid_name: str, paid_arguments: dict[str, Any]
) -> None:
    here, there = sold(name, arguments), sold(paid_name, paid_arguments)
    reason = _refusal(here, payment_for(there))
    if paid_name != name:
        assert reason == ERR_OTHER_TOOL
    elif arguments_hash(paid_arguments) != arguments_hash(arguments):
        assert reason == ERR_OTHER_ARGUMENTS
    else:
        assert reason is None


@given(st.one_of(st.text(), st.integers(), st.lists(st.integers()), st.none()))
def test_unreadable_payments_are_refused(raw: Any) -> None:
    assert _refusal(sold("forecast", {}), raw) == ERR_INVALID_PAYMENT
