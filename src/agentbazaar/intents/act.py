"""One call from an ``Intent`` to a plan, and (when asked) to its execution: what ``bazaar do``
runs. Swaps go through ``plan``; sends and agent payments through ``Wallet.send`` (the same
policy-checked spend); balances are read only. Hiring and buying data are understood by the
parser (``bazaar intent``) but not executed from a sentence: hiring needs the task's input and
buying data a seller, which a sentence does not carry; they are refused with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentbazaar.chain import Chain, to_address
from agentbazaar.dex.onchain import Amm
from agentbazaar.errors import InsufficientFunds
from agentbazaar.intents.errors import PlanError
from agentbazaar.intents.model import Intent
from agentbazaar.intents.plan import SwapPlan, check_policy, execute_swap, plan_swap
from agentbazaar.suite import Suite
from agentbazaar.tokens import Token, TokenRegistry
from agentbazaar.wallet import Wallet, balances


@dataclass(frozen=True)
class TransferPlan:
    """A send or an agent payment: ``amount`` of ``token`` to ``to`` (resolved address)."""

    intent: Intent
    token: Token
    amount: int
    to: str
    recipient: str  # as the user named it

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.intent.action,
            "token": self.token.symbol,
            "amount": str(self.amount),
            "amount_human": self.token.format(self.amount),
            "to": self.to,
            "recipient": self.recipient,
        }


@dataclass(frozen=True)
class Outcome:
    intent: Intent
    plan: dict[str, Any]
    executed: bool
    result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent.stable(),
            "plan": self.plan,
            "executed": self.executed,
            "result": self.result,
        }


def carry_out(
    intent: Intent,
    *,
    suite: Suite,
    wallet: Wallet,
    execute: bool,
    approve: bool = False,
    idempotency_key: str | None = None,
) -> Outcome:
    """Plan ``intent`` for ``wallet``; execute it when ``execute`` is True."""
    chain = suite.chain
    if intent.action == "balance":
        tokens = [suite.tokens.get(intent.token_in)] if intent.token_in else suite.tokens.all()
        rows = [b.to_dict() for b in balances(chain, wallet.address, _registry(suite, tokens))]
        return Outcome(
            intent, {"action": "balance", "address": wallet.address}, True, {"balances": rows}
        )
    if intent.action in ("hire", "buy_data"):
        raise PlanError(
            f"understood ({intent.action} {intent.to}), but `bazaar do` carries out swaps, "
            "sends, agent payments and balance checks only: hiring needs the task's input and "
            "buying data a seller, so they are not executed from a sentence",
        )
    if intent.action == "swap":
        amm = Amm.from_suite(suite)
        plan = plan_swap(
            intent,
            chain=chain,
            amm=amm,
            tokens=suite.tokens,
            payer=wallet.address,
            policy=wallet.policy,
            wallet_name=wallet.name,
        )
        if not execute:
            return Outcome(intent, plan.to_dict(), False, None)
        result = execute_swap(
            plan,
            chain=chain,
            amm=amm,
            wallet=wallet,
            approve=approve,
            idempotency_key=idempotency_key,
        )
        return Outcome(intent, plan.to_dict(), True, result.to_dict())
    transfer = plan_transfer(intent, suite=suite, wallet=wallet)
    if not execute:
        return Outcome(intent, transfer.to_dict(), False, None)
    sent = wallet.send(
        chain,
        transfer.to,
        transfer.amount,
        None if transfer.token.is_native else transfer.token,
        idempotency_key=idempotency_key,
        approve=approve,
    )
    return Outcome(intent, transfer.to_dict(), True, sent.to_dict())


def plan_transfer(intent: Intent, *, suite: Suite, wallet: Wallet) -> TransferPlan:
    """Resolve the recipient and amount of a send or pay; check policy and balance."""
    assert intent.token_in is not None and intent.to is not None
    token = suite.tokens.get(intent.token_in)
    to = resolve_recipient(intent.to, suite, wallet)
    balance = _balance(suite.chain, wallet.address, token, suite)
    if intent.fraction is not None:
        num, den = Decimal(intent.fraction).as_integer_ratio()
        amount = balance * num // den
    else:
        assert intent.amount is not None
        amount = token.parse(intent.amount)
    check_policy(wallet.policy, wallet.name, wallet.address, token, amount, to)
    if amount <= 0 or balance < amount:
        raise InsufficientFunds(
            f"{wallet.name} holds {token.format(balance)}, needs {token.format(amount)}",
            balance=balance,
            amount=amount,
        )
    return TransferPlan(intent=intent, token=token, amount=amount, to=to, recipient=intent.to)


def resolve_recipient(to: str, suite: Suite, wallet: Wallet) -> str:
    """0x address, wallet name of this data directory (authenticated through the paying
    wallet's address book, ``Wallet.resolve``), or ``agent:<id>`` (its ERC-8004 wallet)."""
    if to.startswith("agent:"):
        ref = to.removeprefix("agent:")
        if not ref.isdigit():
            return _agent_by_name(ref, suite)
        from agentbazaar.identity.contracts import IdentityRegistry

        verified = IdentityRegistry.from_suite(suite).get_agent_wallet(int(ref))
        if verified is None:
            raise PlanError(f"agent {ref} has no verified wallet to pay")
        return verified
    return wallet.resolve(to)


def _agent_by_name(ref: str, suite: Suite) -> str:
    """The verified wallet of the one trusted, active agent whose card name matches ``ref``
    (case and punctuation aside: "translator-bot" matches "Translator Bot"), from the discovery
    index brought up to date first."""
    from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
    from agentbazaar.identity.discovery import Query, open_follower

    reputation = suite.manifest.address(REPUTATION_KEY) if suite.has(REPUTATION_KEY) else None
    follower = open_follower(
        suite.chain, suite.cfg.home, suite.manifest.address(IDENTITY_KEY), reputation
    )
    try:
        follower.sync()
        agents = follower.index.query(Query(active=True, trusted_only=True, limit=1000))
    finally:
        follower.index.close()
    found = [a for a in agents if _slug(a.name) == _slug(ref) and a.wallet]
    if not found:
        raise PlanError(f"no trusted, active agent named {ref!r} in the discovery index")
    if len(found) > 1:
        ids = ", ".join(str(a.agent_id) for a in found)
        raise PlanError(f"several agents are named {ref!r} (ids {ids}): pay one by its id")
    return to_address(str(found[0].wallet))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _balance(chain: Chain, address: str, token: Token, suite: Suite) -> int:
    found = balances(chain, address, _registry(suite, [token]))
    return next((b.units for b in found if b.token.symbol == token.symbol), 0)


def _registry(suite: Suite, tokens: list[Token]) -> TokenRegistry:
    return TokenRegistry(tokens)


__all__ = ["Outcome", "SwapPlan", "TransferPlan", "carry_out", "plan_transfer", "resolve_recipient"]
