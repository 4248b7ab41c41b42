"""The typed ``Intent``: what a sentence asks for, before any chain is consulted.

Fields by action (others are None):
- ``swap``: ``token_in``, ``token_out``; either ``amount`` with ``amount_side`` ("in": the amount
  of token_in to sell; "out": the amount of token_out to buy) or ``fraction`` of the token_in
  balance ("half my USDC" is ``fraction="0.5"``); optional ``max_slippage_bps``, ``max_price``
  (token_in per token_out), ``deadline_seconds``.
- ``send``: ``amount`` of ``token_in`` (or a ``fraction`` of its balance) ``to`` an address or a
  wallet name.
- ``pay``: ``amount`` of ``token_in`` to an agent: ``to`` is ``agent:<id>`` or ``agent:<name>``.
- ``hire``: ``to`` is ``skill:<words>``; ``max_price`` of ``token_in`` is the budget.
- ``buy_data``: ``to`` is ``dataset:<name>``; ``max_price`` of ``token_in`` is the budget.
- ``balance``: ``token_in`` if one token was named, else None (all tokens).

Amounts are canonical decimal strings ("1000.5", never "1,000.50" or a float); tokens are upper
case symbols; the same validation applies to intents from any parser (``Intent.model_validate``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

Action = Literal["swap", "send", "pay", "hire", "buy_data", "balance"]
STABLE_KEYS = (
    "action",
    "amount",
    "amount_side",
    "fraction",
    "token_in",
    "token_out",
    "to",
    "max_slippage_bps",
    "max_price",
    "deadline_seconds",
)
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,10}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_PREFIXED = re.compile(r"^(agent|skill|dataset):\S.{0,127}$")


def canonical_decimal(text: str) -> str:
    """'1,000.50' -> '1000.5'; refuses anything that is not a finite positive decimal."""
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError(f"amount must be a positive number: {text!r}")
    out = format(value.normalize(), "f")
    return out


class Intent(BaseModel):
    """One thing the user wants done. Frozen; extra keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    amount: str | None = None
    amount_side: Literal["in", "out"] | None = None
    fraction: str | None = None
    token_in: str | None = None
    token_out: str | None = None
    to: str | None = None
    max_slippage_bps: int | None = None
    max_price: str | None = None
    deadline_seconds: int | None = None

    @field_validator("amount", "max_price", "fraction")
    @classmethod
    def _decimal(cls, value: str | None) -> str | None:
        return None if value is None else canonical_decimal(value)

    @field_validator("token_in", "token_out")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _ADDRESS.match(value):
            return value
        upper = value.upper()
        if not _SYMBOL.match(upper):
            raise ValueError(f"not a token symbol: {value!r}")
        return upper

    @field_validator("max_slippage_bps")
    @classmethod
    def _bps(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 10_000:
            raise ValueError("max_slippage_bps must be between 0 and 10000")
        return value

    @field_validator("deadline_seconds")
    @classmethod
    def _deadline(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value <= 7 * 24 * 3600:
            raise ValueError("deadline must be between 1 second and 7 days")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Intent:
        _check_shape(self)
        return self

    def stable(self) -> dict[str, Any]:
        """The stable JSON form (``bazaar intent --json``): every field, ``STABLE_KEYS``."""
        return {key: getattr(self, key) for key in STABLE_KEYS}


def _check_shape(intent: Intent) -> None:
    a = intent.action
    has_amount = intent.amount is not None or intent.fraction is not None
    if intent.amount is not None and intent.fraction is not None:
        raise ValueError("give an amount or a fraction of the balance, not both")
    if intent.fraction is not None and Decimal(intent.fraction) > 1:
        raise ValueError("a fraction of the balance must be at most 1")
    if a == "swap":
        _need(intent.token_in and intent.token_out, "a swap needs a token to sell and one to buy")
        _need(intent.token_in != intent.token_out, "a swap needs two different tokens")
        _need(has_amount, "a swap needs an amount")
        _need(
            intent.amount is None or intent.amount_side is not None,
            "a swap amount needs a side (in or out)",
        )
    else:
        _need(intent.amount_side is None, "only swaps have an amount side")
        _need(intent.token_out is None, "only swaps have an output token")
    if a in ("send", "pay"):
        _need(has_amount and intent.token_in, f"{a} needs an amount and a token")
        _need(intent.to is not None, f"{a} needs a recipient")
        _check_recipient(intent.to or "", agent=a == "pay")
    if a == "hire":
        _need((intent.to or "").startswith("skill:"), "hire needs a skill (to='skill:...')")
    if a == "buy_data":
        _need((intent.to or "").startswith("dataset:"), "buy_data needs to='dataset:...'")
    if a in ("hire", "buy_data"):
        _need(not has_amount, f"{a} takes a budget (max_price), not an amount")
        _need(intent.max_price is None or intent.token_in, "a budget needs a token")
    if a == "balance":
        _need(not has_amount and intent.to is None, "a balance check takes only a token")


def _check_recipient(to: str, *, agent: bool) -> None:
    if agent:
        _need(to.startswith("agent:"), "pay goes to an agent (to='agent:<id or name>')")
    else:
        _need(
            bool(_ADDRESS.match(to) or _NAME.match(to)),
            "send goes to an address (0x + 40 hex digits) or a wallet name",
        )
    _need(bool(_ADDRESS.match(to) or _NAME.match(to) or _PREFIXED.match(to)), "bad recipient")


def _need(condition: object, message: str) -> None:
    if not condition:
        raise ValueError(message)
