"""Buying side: pay x402 v2 services with the SDK's client, policy first, exactly once.

``PayingClient.request`` sends the request; on a 402 it picks an acceptable requirement (scheme
``exact``, our network, a token we know), asks its ``Payer`` to authorize it (the payer checks
the spending policy BEFORE anything is signed, and returns the earlier authorization when the
idempotency key was already used), retries with ``PAYMENT-SIGNATURE`` and records the
``PAYMENT-RESPONSE`` transaction hash.

Every authorization carries the x402 ``payment-identifier`` extension, derived from the
idempotency key, when the seller declares it: a retry with the same key (after a timeout, or from
another process: the signed payload comes back from the ledger) is recognised by the seller,
which answers it with the first response and its settlement, so the ledger row becomes
``settled`` with the transaction. A refusal after paying is recorded on the row (its reason); the
row stays ``signed`` until the authorization is proven dead (``wallet.reconcile``: expired
unused, or canceled on chain), because whoever holds it could still settle it until then.

Two payers: ``WalletPayer`` (our wallet: policy + ledger, the normal path) and ``AccountPayer``
(a bare key plus a policy function, for tools that have no wallet directory).
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from eth_account.signers.local import LocalAccount
from x402.http import decode_payment_required_header, x402HTTPClientSync
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements, SettleResponse

from agentbazaar.errors import PaymentError, PolicyViolation
from agentbazaar.payments._errors import PaymentHeaderError, PaymentRefused
from agentbazaar.payments.once import PAYMENT_IDENTIFIER, payment_identifier_for
from agentbazaar.payments.reasons import ERR_AUTHORIZATION_IN_USE, explain
from agentbazaar.tokens import Token
from x402 import x402ClientSync


@dataclass(frozen=True)
class PaymentIntent:
    """What the policy sees before a signature: who is paid how much of what, for what."""

    url: str
    network: str
    asset: str
    amount: int
    pay_to: str
    idempotency_key: str


@dataclass
class PaymentMade:
    intent: PaymentIntent
    payer: str
    replayed: bool
    success: bool = False
    transaction: str | None = None
    error: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.intent.url,
            "network": self.intent.network,
            "asset": self.intent.asset,
            "amount": str(self.intent.amount),
            "pay_to": self.intent.pay_to,
            "payer": self.payer,
            "idempotency_key": self.intent.idempotency_key,
            "replayed": self.replayed,
            "success": self.success,
            "transaction": self.transaction,
            "error": self.error,
            "message": self.message,
        }


class Authorized(Protocol):
    """A signed payment, and how to record its outcome."""

    payload: PaymentPayload
    replayed: bool

    def settled(self, settle: SettleResponse) -> None: ...

    def refused(self, reason: str) -> None: ...


class Payer(Protocol):
    @property
    def address(self) -> str: ...

    def authorize(self, intent: PaymentIntent, required: PaymentRequired) -> Authorized: ...


def sign_with_sdk(
    account: LocalAccount,
    required: PaymentRequired,
    chosen: PaymentRequirements,
    *,
    payment_id: str | None = None,
) -> PaymentPayload:
    """The SDK's own EIP-3009 signer, for exactly the requirement we chose; ``payment_id`` goes
    in the ``payment-identifier`` extension when the seller declares it."""
    client = register_exact_evm_client(
        x402ClientSync(), EthAccountSigner(account), networks=chosen.network
    )
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": chosen.network,
                    "asset": chosen.asset,
                    "max_amount_per_payment": chosen.amount,
                }
            ]
        }
    )
    only = required.model_copy(update={"accepts": [chosen]})
    payload = client.create_payment_payload(
        only, extensions=_with_payment_id(required.extensions, payment_id)
    )
    if not isinstance(payload, PaymentPayload):
        raise PaymentError("the SDK produced an x402 v1 payload for a v2 requirement")
    return payload


def _with_payment_id(
    declared: dict[str, Any] | None, payment_id: str | None
) -> dict[str, Any] | None:
    """The seller's declared extensions with our ``payment-identifier`` id filled in."""
    extensions = copy.deepcopy(declared) if declared else None
    entry = (extensions or {}).get(PAYMENT_IDENTIFIER)
    if payment_id is None or not isinstance(entry, dict) or not isinstance(entry.get("info"), dict):
        return extensions
    entry["info"] = {**entry["info"], "id": payment_id}
    return extensions


def _chosen(required: PaymentRequired, intent: PaymentIntent) -> PaymentRequirements:
    for req in required.accepts:
        if (req.network, req.asset.lower(), req.pay_to.lower(), int(req.amount)) == (
            intent.network,
            intent.asset.lower(),
            intent.pay_to.lower(),
            intent.amount,
        ):
            return req
    raise PaymentError("the chosen requirement is not in the 402 response")


# ---- payers --------------------------------------------------------------------------------
@dataclass
class _Done:
    payload: PaymentPayload
    replayed: bool
    on_settled: Callable[[SettleResponse], None] = lambda s: None
    on_refused: Callable[[str], None] = lambda reason: None

    def settled(self, settle: SettleResponse) -> None:
        self.on_settled(settle)

    def refused(self, reason: str) -> None:
        self.on_refused(reason)


PolicyCheck = Callable[[PaymentIntent], None]


@dataclass
class AccountPayer:
    """A bare key. ``check`` raises ``PolicyViolation`` to refuse; authorizations are kept per
    idempotency key in memory, so a retry in this process reuses the same signature."""

    account: LocalAccount
    check: PolicyCheck | None = None
    _signed: dict[str, PaymentPayload] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def authorize(self, intent: PaymentIntent, required: PaymentRequired) -> Authorized:
        previous = self._signed.get(intent.idempotency_key)
        if previous is not None:
            return _Done(previous, replayed=True)
        if self.check is not None:
            self.check(intent)
        payload = sign_with_sdk(
            self.account,
            required,
            _chosen(required, intent),
            payment_id=payment_identifier_for(intent.idempotency_key),
        )
        self._signed[intent.idempotency_key] = payload
        return _Done(payload, replayed=False)


class WalletPayer:
    """Our wallet: ``Wallet.spend`` checks the spending policy and reserves in the ledger before
    the SDK signs; a replayed idempotency key returns the payload signed the first time."""

    def __init__(
        self, wallet: Any, *, approve: bool = False, tokens: Mapping[str, Token] | None = None
    ) -> None:
        self.wallet = wallet
        self.approve = approve
        self.tokens = {k.lower(): v for k, v in (tokens or {}).items()}

    @property
    def address(self) -> str:
        return str(self.wallet.address)

    def authorize(self, intent: PaymentIntent, required: PaymentRequired) -> Authorized:
        chosen = _chosen(required, intent)
        with self.wallet.spend(
            kind="x402",
            token=self.tokens.get(intent.asset.lower(), intent.asset),
            amount=intent.amount,
            counterparty=intent.pay_to,
            idempotency_key=intent.idempotency_key,
            approve=self.approve,
            memo={"url": intent.url, "network": intent.network},
            chain_id=_chain_id(intent.network),
        ) as spend:
            if spend.replayed:
                stored = spend.payload or {}
                payload = PaymentPayload.model_validate(stored.get("x402"))
            else:
                payment_id = payment_identifier_for(intent.idempotency_key)
                payload = spend.sign_with(
                    lambda account: sign_with_sdk(account, required, chosen, payment_id=payment_id),
                    lambda p: {"type": "x402", "x402": p.model_dump(by_alias=True, mode="json")},
                )

        def on_settled(settle: SettleResponse) -> None:
            if settle.success and spend.status != "settled":
                spend.settle(tx_hash=settle.transaction)

        def on_refused(reason: str) -> None:
            if spend.status == "signed":  # still usable by whoever holds it: note, not release
                self.wallet.ledger.note(spend.record.id, f"refused by the seller: {reason}")

        return _Done(
            payload, replayed=bool(spend.replayed), on_settled=on_settled, on_refused=on_refused
        )


def _chain_id(network: str) -> int | None:
    prefix, _, ref = network.partition(":")
    return int(ref) if prefix == "eip155" and ref.isdigit() else None


# ---- the client ----------------------------------------------------------------------------
def choose_exact(
    required: PaymentRequired,
    accepted: set[tuple[str, str]],
    url: str,
    key: str,
    max_amount: int | None = None,
) -> PaymentIntent:
    """The cheapest ``exact`` requirement on an accepted (network, asset lower case), as the
    intent the payer authorizes; refused above ``max_amount`` before anything is signed."""
    options = [
        r
        for r in required.accepts
        if r.scheme == "exact" and (r.network, r.asset.lower()) in accepted and r.amount.isdigit()
    ]
    if not options:
        raise PaymentRefused(
            "no payment option this client accepts (exact scheme, known token and network)",
            url=url,
        )
    best = min(options, key=lambda r: int(r.amount))
    intent = PaymentIntent(url, best.network, best.asset, int(best.amount), best.pay_to, key)
    if max_amount is not None and intent.amount > max_amount:
        raise PolicyViolation(
            f"the service asks {intent.amount} base units, above the limit of "
            f"{max_amount} for this call",
            amount=intent.amount,
            limit=max_amount,
        )
    return intent


IN_USE_WAITS = (0.25, 0.5, 1.0, 2.0)  # seconds between resends while our payment is in use


@dataclass(frozen=True)
class AcceptedToken:
    network: str
    asset: str


@dataclass
class PaidResponse:
    response: httpx.Response
    payment: PaymentMade | None


class PayingClient:
    """An httpx client that pays x402 v2 402s through ``payer`` (policy and ledger first)."""

    def __init__(
        self,
        payer: Payer,
        accepted: list[AcceptedToken],
        *,
        max_amount: int | None = None,
        http: httpx.AsyncClient | None = None,
        retries: int = 2,
    ) -> None:
        self.payer = payer
        self.accepted = {(a.network, a.asset.lower()) for a in accepted}
        self.max_amount = max_amount
        self.retries = retries
        self._http = http or httpx.AsyncClient(timeout=60.0)
        self._x402 = x402HTTPClientSync(x402ClientSync())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PayingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def choose(self, required: PaymentRequired, url: str, key: str) -> PaymentIntent:
        return choose_exact(required, self.accepted, url, key, self.max_amount)

    def _payment_required(self, response: httpx.Response) -> PaymentRequired:
        try:
            body = response.json()
        except ValueError:
            body = None
        try:
            required = self._x402.get_payment_required_response(response.headers.get, body)
        except Exception as exc:
            raise PaymentHeaderError(f"unreadable 402 from {response.url}: {exc}") from exc
        if not isinstance(required, PaymentRequired):
            raise PaymentRefused(f"{response.url} speaks x402 v1 only; v2 is required")
        return required

    async def _send(
        self, method: str, url: str, content: bytes | None, headers: Mapping[str, str]
    ) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                return await self._http.request(method, url, content=content, headers=headers)
            except httpx.TransportError as exc:
                last = exc
                await asyncio.sleep(0.05 * (attempt + 1))
        raise PaymentError(f"cannot reach {url}: {last}", url=url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> PaidResponse:
        """One logical request. Network retries (and a later call with the same
        ``idempotency_key``) reuse the same authorization: never two payments."""
        base = dict(headers or {})
        key = idempotency_key or f"x402-{secrets.token_hex(16)}"
        first = await self._send(method, url, content, base)
        if first.status_code != 402:
            return PaidResponse(first, None)
        required = self._payment_required(first)
        intent = self.choose(required, url, key)
        auth = await asyncio.to_thread(self.payer.authorize, intent, required)
        made = PaymentMade(intent, self.payer.address, auth.replayed)
        pay_headers = {**base, **self._x402.encode_payment_signature_header(auth.payload)}
        paid = await self._send(method, url, content, pay_headers)
        for wait in IN_USE_WAITS:  # our own earlier attempt is still being served: wait for it
            if paid.status_code != 402 or _reason_of(paid) != ERR_AUTHORIZATION_IN_USE:
                break
            await asyncio.sleep(wait)
            paid = await self._send(method, url, content, pay_headers)
        settle = self._settle_response(paid)
        if settle is not None:
            made.success, made.transaction = settle.success, settle.transaction or None
            made.error = settle.error_reason
            if settle.success and paid.status_code < 400:
                await asyncio.to_thread(auth.settled, settle)
        if paid.status_code >= 400 and not made.success:
            made.error = made.error or _reason_of(paid)
            made.message = _message_of(paid) or explain(made.error)
            await asyncio.to_thread(auth.refused, made.error)
        return PaidResponse(paid, made)

    def _settle_response(self, response: httpx.Response) -> SettleResponse | None:
        try:
            return self._x402.get_payment_settle_response(response.headers.get)
        except Exception:
            return None


def _reason_of(response: httpx.Response) -> str:
    """The refusal's reason code: the JSON body's ``error`` (our sellers), else the
    ``PAYMENT-REQUIRED`` header's ``error`` (any x402 v2 seller)."""
    body = _json_of(response)
    if isinstance(body.get("error"), str) and body["error"]:
        return str(body["error"])
    try:
        required = decode_payment_required_header(response.headers["PAYMENT-REQUIRED"])
        if required.error:
            return str(required.error)
    except Exception:
        pass
    return "payment_refused" if response.status_code == 402 else f"http_{response.status_code}"


def _message_of(response: httpx.Response) -> str | None:
    message = _json_of(response).get("message")
    return message if isinstance(message, str) and message else None


def _json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
