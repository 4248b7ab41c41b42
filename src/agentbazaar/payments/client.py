"""Buying side: the one paying client for x402 v2, policy first, exactly once.

``X402Auth`` is an ``httpx.Auth`` flow, so any httpx client (sync or async) pays with it:

    response = httpx.post(url, json=body, auth=X402Auth(WalletPayer(wallet), accepted))
    made = payment_of(response)          # what was paid: scheme, amount, nonce, tx, receipt

On a 402 it chooses among the seller's accepted requirements by the caller's scheme preference
(``schemes``), the tokens and networks it accepts, the expected payee (``pay_to``: refuse any
other) and the most it may pay (``max_amount``), all BEFORE anything is signed (a typed refusal:
``PaymentDeclined`` or ``PolicyViolation``). Its ``Payer`` then authorizes the chosen
requirement: ``WalletPayer`` through ``Wallet.spend`` (spending policy, ledger reservation, key;
an idempotency key already used returns the earlier authorization). The request is resent with
``PAYMENT-SIGNATURE`` and the ``PAYMENT-RESPONSE`` settlement is recorded on the ledger row.
``PayingClient`` wraps it for callers that want network retries under one idempotency key and a
``PaidResponse``.

Every authorization carries the x402 ``payment-identifier`` extension, derived from the
idempotency key, when the seller declares it: a retry with the same key (after a timeout, or from
another process: the signed payload comes back from the ledger) is recognised by the seller,
which answers it with the first response and its settlement, so the ledger row becomes
``settled`` with the transaction. A refusal after paying is recorded on the row (its reason); the
row stays ``signed`` until the authorization is proven dead (``wallet.reconcile``: expired
unused, or canceled on chain), because whoever holds it could still settle it until then. A
payment reads as paid (``PaymentMade.success``, ``PaidResponse.paid``) only when the seller
answered below 400 with a successful settlement.

The payer (``WalletPayer``) is in ``payments.payers``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from x402 import x402ClientSync
from x402.http import decode_payment_required_header, x402HTTPClientSync
from x402.schemas import PaymentPayload, PaymentRequired, SettleResponse

from agentbazaar.errors import PaymentError, PolicyViolation
from agentbazaar.payments.errors import PaymentDeclined, PaymentHeaderError
from agentbazaar.payments.once import authorization_key
from agentbazaar.payments.payers import Authorized, Payer, PaymentIntent
from agentbazaar.payments.reasons import ERR_AUTHORIZATION_IN_USE, ERR_NOT_SETTLED, explain


@dataclass
class PaymentMade:
    """What one paid request paid: the intent signed, its authorization's nonce (the seller's
    payment reference), the settlement (``success``, ``transaction``) or the refusal
    (``error``, ``message``), and the seller's receipt when its JSON body carries one."""

    intent: PaymentIntent
    payer: str
    replayed: bool
    nonce: str | None = None
    success: bool = False
    transaction: str | None = None
    error: str | None = None
    message: str | None = None
    receipt: dict[str, Any] | None = None

    @property
    def scheme(self) -> str:
        return self.intent.scheme

    @property
    def amount(self) -> int:
        return self.intent.amount

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.intent.url,
            "scheme": self.intent.scheme,
            "network": self.intent.network,
            "asset": self.intent.asset,
            "amount": str(self.intent.amount),
            "pay_to": self.intent.pay_to,
            "payer": self.payer,
            "idempotency_key": self.intent.idempotency_key,
            "replayed": self.replayed,
            "nonce": self.nonce,
            "success": self.success,
            "transaction": self.transaction,
            "error": self.error,
            "message": self.message,
        }


# ---- the client ----------------------------------------------------------------------------
IN_USE_WAITS = (0.25, 0.5, 1.0, 2.0)  # seconds between resends while our payment is in use
SIGNABLE_SCHEMES = ("exact",)  # what our payers sign (the SDK's EIP-3009 exact client)
IDEMPOTENCY_KEY = "agentbazaar.idempotency_key"  # request extension: the logical request's key
PAYMENT_MADE = "agentbazaar.payment"  # response extension: the ``PaymentMade``


@dataclass(frozen=True)
class AcceptedToken:
    network: str
    asset: str


@dataclass
class PaidResponse:
    response: httpx.Response
    payment: PaymentMade | None

    @property
    def paid(self) -> bool:
        """A payment was made, settled, and the seller answered below 400."""
        made = self.payment
        return made is not None and made.success and self.response.status_code < 400


def payment_of(response: httpx.Response) -> PaymentMade | None:
    """What ``X402Auth`` paid for ``response`` (None when no payment was asked or made)."""
    made = response.extensions.get(PAYMENT_MADE)
    return made if isinstance(made, PaymentMade) else None


@dataclass
class _Step:
    """A signed authorization on its way: what was chosen, and the outcome hooks."""

    made: PaymentMade
    auth: Authorized
    headers: dict[str, str]


class X402Auth(httpx.Auth):
    """Answer a 402 by paying through ``payer`` (see the module docstring).

    ``accepted``: the (network, token) pairs we pay in; ``schemes``: the schemes we pay with,
    preferred first (only those our payers sign are usable); ``max_amount``: the most one
    request may cost, in base units; ``pay_to``: the only payee we pay (e.g. the provider's
    on-chain wallet). Each refusal happens before anything is signed."""

    requires_request_body = True

    def __init__(
        self,
        payer: Payer,
        accepted: list[AcceptedToken],
        *,
        schemes: tuple[str, ...] = SIGNABLE_SCHEMES,
        max_amount: int | None = None,
        pay_to: str | None = None,
    ) -> None:
        self.payer = payer
        self.accepted = {(a.network, a.asset.lower()) for a in accepted}
        self.schemes = tuple(s for s in schemes if s in SIGNABLE_SCHEMES)
        self.offered_schemes = tuple(schemes)
        self.max_amount = max_amount
        self.pay_to = pay_to
        self._x402 = x402HTTPClientSync(x402ClientSync())

    # -- choosing (pure: no signature) --
    def choose(self, required: PaymentRequired, url: str, key: str) -> PaymentIntent:
        """The requirement to pay, by scheme preference then price; typed refusals when none
        fits (scheme, token or network, payee, maximum)."""
        usable = [r for r in required.accepts if r.amount.isdigit() and r.scheme in self.schemes]
        if not usable:
            raise PaymentDeclined(
                f"{url} offers only {_listed(r.scheme for r in required.accepts)}; this client "
                f"pays with {_listed(self.offered_schemes)} (signable: {_listed(SIGNABLE_SCHEMES)})",
                url=url,
                reason="unsupported_scheme",
            )
        known = [r for r in usable if (r.network, r.asset.lower()) in self.accepted]
        if not known:
            raise PaymentDeclined(
                f"{url} asks for {_listed(f'{r.asset} on {r.network}' for r in usable)}; this "
                f"client pays {_listed(f'{a} on {n}' for n, a in sorted(self.accepted))}",
                url=url,
                reason="unsupported_network_or_token",
            )
        payee = self.pay_to
        if payee is not None:
            offered = known
            known = [r for r in known if r.pay_to.lower() == payee.lower()]
            if not known:
                raise PaymentDeclined(
                    f"{url} asks to be paid at {_listed(r.pay_to for r in offered)}, not its "
                    f"wallet {payee}",
                    url=url,
                    reason="payee_mismatch",
                )
        best = min(known, key=lambda r: (self.schemes.index(r.scheme), int(r.amount)))
        amount = int(best.amount)
        if self.max_amount is not None and amount > self.max_amount:
            raise PolicyViolation(
                f"the service asks {amount} base units, above the maximum of "
                f"{self.max_amount} for this call (the caller's limit)",
                amount=amount,
                limit=self.max_amount,
            )
        return PaymentIntent(url, best.network, best.asset, amount, best.pay_to, key, best.scheme)

    def payment_required(self, response: httpx.Response) -> PaymentRequired:
        try:
            body = response.json()
        except ValueError:
            body = None
        try:
            required = self._x402.get_payment_required_response(response.headers.get, body)
        except Exception as exc:
            raise PaymentHeaderError(f"unreadable 402 from {response.url}: {exc}") from exc
        if not isinstance(required, PaymentRequired):
            raise PaymentDeclined(f"{response.url} speaks x402 v1 only; v2 is required")
        return required

    # -- signing and recording --
    def _authorize(self, request: httpx.Request, response: httpx.Response) -> _Step:
        """Choose, then sign through the payer (policy and ledger first)."""
        required = self.payment_required(response)
        key = request.extensions.get(IDEMPOTENCY_KEY) or f"x402-{secrets.token_hex(16)}"
        intent = self.choose(required, str(request.url), str(key))
        auth = self.payer.authorize(intent, required)
        made = PaymentMade(intent, self.payer.address, auth.replayed, _nonce(intent, auth.payload))
        headers = self._x402.encode_payment_signature_header(auth.payload)
        return _Step(made, auth, dict(headers))

    def _record(self, step: _Step, paid: httpx.Response) -> None:
        """Read the settlement (or the refusal) into ``PaymentMade`` and the ledger: settled
        only with a successful settlement AND an answer below 400."""
        made = step.made
        settle = self._settle_response(paid)
        if settle is not None:
            made.error, made.transaction = settle.error_reason, settle.transaction or None
            if settle.success and paid.status_code < 400:
                made.success = True
                step.auth.settled(settle)
        if paid.status_code >= 400:
            made.error = made.error or _reason_of(paid)
            made.message = _message_of(paid) or explain(made.error)
            step.auth.refused(made.error)
        elif not made.success:
            made.error = made.error or ERR_NOT_SETTLED
            made.message = explain(made.error)
        made.receipt = _receipt_of(paid)
        paid.extensions = {**paid.extensions, PAYMENT_MADE: made}

    def _settle_response(self, response: httpx.Response) -> SettleResponse | None:
        try:
            return self._x402.get_payment_settle_response(response.headers.get)
        except Exception:
            return None

    # -- the flows --
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.read()
        response = yield request
        if response.status_code != 402:
            return
        response.read()
        step = self._authorize(request, response)
        request.headers.update(step.headers)
        paid = yield request
        for wait in IN_USE_WAITS:  # our own earlier attempt is still being served: wait for it
            paid.read()
            if paid.status_code != 402 or _reason_of(paid) != ERR_AUTHORIZATION_IN_USE:
                break
            time.sleep(wait)
            paid = yield request
        paid.read()
        self._record(step, paid)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        response = yield request
        if response.status_code != 402:
            return
        await response.aread()
        step = await asyncio.to_thread(self._authorize, request, response)
        request.headers.update(step.headers)
        paid = yield request
        for wait in IN_USE_WAITS:
            await paid.aread()
            if paid.status_code != 402 or _reason_of(paid) != ERR_AUTHORIZATION_IN_USE:
                break
            await asyncio.sleep(wait)
            paid = yield request
        await paid.aread()
        await asyncio.to_thread(self._record, step, paid)


class PayingClient:
    """An async httpx client that pays x402 v2 402s through ``X402Auth`` (policy and ledger
    first), with network retries that reuse one idempotency key: never two payments."""

    def __init__(
        self,
        payer: Payer,
        accepted: list[AcceptedToken],
        *,
        max_amount: int | None = None,
        pay_to: str | None = None,
        schemes: tuple[str, ...] = SIGNABLE_SCHEMES,
        http: httpx.AsyncClient | None = None,
        retries: int = 2,
    ) -> None:
        self.payer = payer
        self.auth = X402Auth(payer, accepted, schemes=schemes, max_amount=max_amount, pay_to=pay_to)
        self.retries = retries
        self._http = http or httpx.AsyncClient(timeout=60.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PayingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
        key = idempotency_key or f"x402-{secrets.token_hex(16)}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(
                    method,
                    url,
                    content=content,
                    headers=dict(headers or {}),
                    auth=self.auth,
                    extensions={IDEMPOTENCY_KEY: key},
                )
                return PaidResponse(response, payment_of(response))
            except httpx.TransportError as exc:
                last = exc
                await asyncio.sleep(0.05 * (attempt + 1))
        raise PaymentError(f"cannot reach {url}: {last}", url=url)


def _nonce(intent: PaymentIntent, payload: PaymentPayload) -> str | None:
    """The authorization's nonce: what the seller names as the payment reference."""
    key = authorization_key(intent.network, intent.asset, payload.payload)
    return key[3] if key is not None else None


def _listed(items: Iterable[str]) -> str:
    seen = sorted(set(items))
    return ", ".join(seen) if seen else "nothing"


def _receipt_of(response: httpx.Response) -> dict[str, Any] | None:
    """The seller's signed receipt, when its JSON body carries one (``receipt``)."""
    receipt = _json_of(response).get("receipt")
    return receipt if isinstance(receipt, dict) else None


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
