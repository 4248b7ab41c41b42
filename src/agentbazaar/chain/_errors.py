"""Translate web3 / RPC / eth-tester errors into ours, in one place (the boundary)."""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator
from typing import Any, NoReturn

import requests
from web3 import exceptions as w3e

from agentbazaar.errors import (
    BazaarError,
    ChainError,
    ChainUnavailable,
    InsufficientFunds,
    TransactionReverted,
    TransactionTimeout,
)

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    w3e.ProviderConnectionError,
    ConnectionError,
)


_FUNDS_MARKERS = (
    "insufficient funds",
    "sender doesn't have enough funds",
    "does not have enough balance",
    "cannot afford txn gas",  # py-evm (the embedded chain)
)
# geth / anvil estimating the gas of a sender whose balance buys none: "... allowance: 0"
_NO_GAS = "gas required exceeds allowance"
# what the node says of an empty sender: "allowance: 0", "account balance 0", "have 0"
_ZERO = re.compile(r"(?:allowance|balance|have):?\s*\(?0\b")


def _rpc_message(exc: BaseException) -> str:
    if isinstance(exc, w3e.Web3RPCError) and isinstance(exc.rpc_response, dict):
        err = exc.rpc_response.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(exc)


def revert_reason(exc: BaseException) -> str:
    """Best-effort human revert reason from a web3 / eth-tester error."""
    message = getattr(exc, "message", None) or _rpc_message(exc)
    text = str(message)
    for prefix in ("execution reverted: ", "execution reverted", "revert: ", "revert"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    return text or "reverted without a reason"


_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data of a call that reverted (custom error or ``Error(string)``), or None
    when ``exc`` is not a revert. Works for web3's errors (rpc nodes) and eth-tester's."""
    data = getattr(exc, "data", None)
    if isinstance(exc, (w3e.ContractLogicError, w3e.ContractCustomError)) and isinstance(data, str):
        return _hex_bytes(data)
    text = str(getattr(exc, "message", None) or exc)
    if type(exc).__name__ != "TransactionFailed" and "revert" not in text.lower():
        return None
    reason = revert_reason(exc)
    if reason.startswith(("b'", 'b"')):  # eth-tester prints raw revert data as a bytes literal
        try:
            value = ast.literal_eval(reason)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, bytes):
            return value
    if reason == "reverted without a reason":
        return b""
    encoded = reason.encode()
    padded = encoded + b"\0" * (-len(encoded) % 32)
    return _ERROR_STRING + (32).to_bytes(32, "big") + len(encoded).to_bytes(32, "big") + padded


def _hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        return b""


def translate(
    exc: BaseException, *, action: str, url: str | None = None, **fields: Any
) -> BazaarError:
    """Return our error for ``exc`` (raised while doing ``action``)."""
    if isinstance(exc, BazaarError):
        return exc
    where = f" at {url}" if url else ""
    if isinstance(exc, _CONNECTION_ERRORS):
        return ChainUnavailable(
            f"cannot reach the chain{where} while trying to {action}: start it with "
            "`bazaar chain up`, or check the rpc url (--rpc / [chain] rpc_url)",
            url=url,
            **fields,
        )
    if isinstance(exc, w3e.TimeExhausted):
        return TransactionTimeout(
            f"no receipt in time while trying to {action}; the transaction may still be mined: "
            "check it later with its hash",
            **fields,
        )
    if isinstance(exc, (w3e.ContractLogicError, w3e.ContractCustomError, w3e.ContractPanicError)):
        reason = revert_reason(exc)
        return TransactionReverted(f"{action} reverted: {reason}", reason=reason, **fields)
    text = _rpc_message(exc)
    lowered = text.lower()
    if _NO_GAS in lowered or any(t in lowered for t in _FUNDS_MARKERS):
        return _no_funds(action, _ZERO.search(lowered) is not None, fields)
    if "revert" in lowered:
        reason = revert_reason(exc)
        return TransactionReverted(f"{action} reverted: {reason}", reason=reason, **fields)
    return ChainError(f"chain error while trying to {action}: {text}", **fields)


def _no_funds(action: str, no_eth: bool, fields: dict[str, Any]) -> InsufficientFunds:
    """Not enough ETH: say whose account, and how to fund it."""
    sender = fields.get("sender")
    who = f"account {sender}" if sender else "the sending account"
    fund = f"`bazaar faucet {sender or 'WALLET'} 1 ETH` on local chains, or send it ETH"
    if no_eth:
        return InsufficientFunds(
            f"{who} has no ETH to pay gas to {action}: fund it ({fund})", **fields
        )
    return InsufficientFunds(
        f"{who} has not enough ETH for value + gas to {action}: fund it ({fund})", **fields
    )


@contextlib.contextmanager
def chain_errors(action: str, *, url: str | None = None, **fields: Any) -> Iterator[None]:
    """``with chain_errors("send the transaction"):`` turns foreign errors into ours."""
    try:
        yield
    except BazaarError:
        raise
    except Exception as exc:
        raise translate(exc, action=action, url=url, **fields) from exc


def raise_translated(exc: BaseException, *, action: str, **fields: Any) -> NoReturn:
    raise translate(exc, action=action, **fields) from exc
