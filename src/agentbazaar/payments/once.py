"""One paid authorization, one response: the selling side of exactly-once for x402 payments
made of one single-use authorization: ``exact`` (EIP-3009 or Permit2) and ``upto`` (Permit2).

The paywall (``payments.server.install_paywall``, with the metered ``upto`` routes its
``extend`` adds; the agents' priced skills sit behind it) builds its SDK middleware with
``exact_middleware`` here, paid MCP tools (``payments.mcp``) go through ``ExactlyOnce.once``
with ``reserving_server``, and A2A payments (``agents.a2a``) through ``ReservingClient``, so the
guarantee lives in one place.

Invariant. For one authorization (network, asset, payer, nonce; Permit2's are keyed by the
Permit2 contract, whose nonce space all its tokens share) at most one request is
*served*: its handler's response delivered with a successful settlement. Every other request
carrying that authorization - concurrent or later, same route or another, this process or
another seller process sharing the facilitator - gets a 402 with a typed reason and never
reaches the handler while the first is served; except a *genuine retry* of the served request,
which gets the very same response back (status, headers with the same ``PAYMENT-RESPONSE``
transaction, body): not a second service, not a ``nonce_already_used`` 402.

How it holds:

- Across routes and processes: the facilitator's reservation (``agentbazaar.payments.exact``):
  ``verify`` leases the authorization to one request until its ``validBefore``.
  ``ReservingClient`` wraps the facilitator client: it keeps each verify's lease token and gives
  the lease back (``release``) when the handler failed (the SDK's ``on_verified_payment_canceled``
  hook), so the buyer may use the authorization again; it answers an unreachable facilitator
  with ``facilitator_unavailable`` (and refused credentials with ``facilitator_unauthorized``)
  instead of raw exception text.
- Within one process: requests carrying the same authorization are serialised (one asyncio lock
  per authorization, dropped when unused), so a duplicate never reaches the handler while the
  first runs, whatever facilitator is used.
- Genuine retry: the same signed authorization (same payer, nonce and signature), the same retry
  id (the x402 ``payment-identifier`` extension's ``id``, else an ``Idempotency-Key`` header)
  and the same method, path, query and body (a sha256 fingerprint). The response of each settled
  request is stored (``RetainedResponses``, SQLite: durable when given a path, shared by seller
  processes using the same file) before it is returned, kept ``window_s`` seconds, at most
  ``max_entries`` rows of at most ``max_body`` bytes; a retry that arrives while the first is
  still being served waits for it, then gets the stored response.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request, Response
from x402 import x402ResourceServer
from x402.http.constants import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
)
from x402.http.facilitator_client_base import FacilitatorClient
from x402.http.middleware.fastapi import payment_middleware
from x402.http.types import RouteConfig
from x402.http.utils import decode_payment_required_header
from x402.mechanisms.evm import constants as c
from x402.mechanisms.evm.constants import PERMIT2_ADDRESS
from x402.mechanisms.evm.exact import register_exact_evm_server
from x402.schemas import (
    PaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402.schemas.hooks import VerifiedPaymentCanceledContext

from agentbazaar.observe import event
from agentbazaar.payments.errors import FacilitatorError
from agentbazaar.payments.reasons import (
    ERR_FACILITATOR_UNAUTHORIZED,
    ERR_FACILITATOR_UNAVAILABLE,
    explain,
)
from agentbazaar.sqlite import MEMORY, Database

log = logging.getLogger(__name__)
T = TypeVar("T")

Middleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]
AuthKey = tuple[str, str, str, str]  # network, asset, payer, nonce (lower case)
# more schemes and route options on the SDK server (``metered.metered_routes``)
Extension = Callable[[x402ResourceServer, dict[str, RouteConfig]], None]

# The SDK's ``payment-identifier`` extension (``x402.extensions.payment_identifier``), spelled
# out: importing that package imports its ``bazaar`` sibling, which needs ``jsonschema``.
PAYMENT_IDENTIFIER = "payment-identifier"
PAYMENT_IDENTIFIER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "required": {"type": "boolean"},
        "id": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[a-zA-Z0-9_-]+$"},
    },
    "required": ["required"],
}
IDEMPOTENCY_HEADER = "idempotency-key"
MAX_HEADER = 8 * 1024
# the schemes whose payment is one single-use authorization (EIP-3009 or Permit2)
SCHEMES = frozenset({c.SCHEME_EXACT, c.SCHEME_UPTO})
MAX_RETRY_ID = 200
_PAYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# how the SDK's HTTP facilitator client words a facilitator that refused our credentials
_AUTH_REFUSED = re.compile(r"Facilitator \w+ failed \((401|403)\)")


# ---- what a request pays with ---------------------------------------------------------------
@dataclass(frozen=True)
class Paid:
    """The ``exact`` authorization a request carries, and its retry id (if any)."""

    key: AuthKey
    signature: str
    retry_id: str | None


def read_payment(request: Request) -> Paid | None:
    """The authorization in ``PAYMENT-SIGNATURE`` (None when absent, unreadable or of a scheme
    this guarantee does not cover: the SDK's middleware then answers it)."""
    header = request.headers.get(PAYMENT_SIGNATURE_HEADER)
    if header is None or len(header) > MAX_HEADER:
        return None
    try:
        envelope = json.loads(base64.b64decode(header, validate=True))
    except (ValueError, binascii.Error):
        return None
    paid = paid_of(envelope)
    if paid is None or paid.retry_id is not None:
        return paid
    given = request.headers.get(IDEMPOTENCY_HEADER)
    retry_id = given if given and len(given) <= MAX_RETRY_ID else None
    return dataclasses.replace(paid, retry_id=retry_id)


def paid_of(envelope: Any) -> Paid | None:
    """The authorization of an x402 v2 payment (the JSON of a ``PaymentPayload``), whatever
    carries it (an HTTP header, an MCP ``_meta``); its retry id is the ``payment-identifier``
    extension's. None when unreadable or of a scheme this guarantee does not cover."""
    try:
        accepted, payload = envelope["accepted"], envelope["payload"]
        if accepted["scheme"] not in SCHEMES:
            return None
        key = authorization_key(str(accepted["network"]), str(accepted["asset"]), payload)
        signature = str(payload["signature"]).lower()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if key is None:
        return None
    return Paid(key, signature, _payment_identifier(envelope.get("extensions")))


def authorization_key(network: str, asset: str, payload: Any) -> AuthKey | None:
    """(network, asset, payer, nonce) of the single-use authorization in an x402 ``payload``:
    an EIP-3009 ``authorization`` (the token's nonce space), or a ``permit2Authorization``
    (``exact`` or ``upto`` through Permit2: Permit2's nonce space, shared by both schemes and
    all tokens, as the facilitator keys it). None when neither is there."""
    if not isinstance(payload, dict):
        return None
    auth = payload.get("authorization")
    if isinstance(auth, dict):
        return (network, asset.lower(), str(auth["from"]).lower(), str(auth["nonce"]).lower())
    permit = payload.get("permit2Authorization")
    if isinstance(permit, dict):
        nonce = int(str(permit["nonce"]), 0)
        payer = str(permit["from"]).lower()
        return (network, PERMIT2_ADDRESS.lower(), payer, f"0x{nonce:064x}")
    return None


def _payment_identifier(extensions: Any) -> str | None:
    """The ``payment-identifier`` extension's id, when well formed."""
    try:
        value = extensions[PAYMENT_IDENTIFIER]["info"]["id"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) and _PAYMENT_ID.match(value) else None


def payment_identifier_for(key: str) -> str:
    """A ``payment-identifier`` id derived from a client's idempotency key (same key, same
    id), in the extension's alphabet and length."""
    return "pay_" + hashlib.sha256(key.encode()).hexdigest()[:40]


async def fingerprint(request: Request) -> str:
    """sha256 of method, path, query and body: what makes a retry the *same* request."""
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode() + b"\0")
    digest.update(await request.body())
    return digest.hexdigest()


# ---- the responses kept for retries ---------------------------------------------------------
@dataclass(frozen=True)
class Retained:
    """A settled response, and what a retry must match to get it back."""

    signature: str
    retry_id: str | None
    fingerprint: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def answers(self, paid: Paid, fingerprint: str) -> bool:
        """Is a request carrying ``paid`` with ``fingerprint`` a genuine retry of this one?"""
        return (
            self.retry_id is not None
            and paid.retry_id == self.retry_id
            and paid.signature == self.signature
            and fingerprint == self.fingerprint
        )

    def response(self) -> Response:
        response = Response(content=self.body, status_code=self.status)
        response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        return response


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    network TEXT NOT NULL, asset TEXT NOT NULL, payer TEXT NOT NULL, nonce TEXT NOT NULL,
    signature TEXT NOT NULL, retry_id TEXT, fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (network, asset, payer, nonce)
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
"""


class RetainedResponses:
    """Settled responses by authorization, for ``window_s`` seconds, size-capped; SQLite (WAL)
    at ``path`` (shared by the processes that open it), in memory when ``path`` is None."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        window_s: float = 600.0,
        max_entries: int = 10_000,
        max_body: int = 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s, self.max_entries, self.max_body = window_s, max_entries, max_body
        self._clock = clock
        target = str(path) if path is not None else MEMORY
        try:
            self._db = Database(target, [_SCHEMA])
        except sqlite3.Error as exc:
            raise FacilitatorError(f"cannot open the response store {target}: {exc}") from exc
        self._puts = 0

    def _exec(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise FacilitatorError(f"response store failed: {exc}") from exc

    def get(self, key: AuthKey) -> Retained | None:
        with self._db.locked():
            row = self._exec(
                "SELECT signature, retry_id, fingerprint, status, headers, body FROM responses "
                "WHERE network=? AND asset=? AND payer=? AND nonce=? AND created>?",
                (*key, self._clock() - self.window_s),
            ).fetchone()
        if row is None:
            return None
        signature, retry_id, fp, status, headers, body = row
        pairs = [(str(k), str(v)) for k, v in json.loads(headers)]
        return Retained(str(signature), retry_id, str(fp), int(status), pairs, bytes(body))

    def put(self, key: AuthKey, kept: Retained) -> bool:
        """Keep ``kept`` for ``key``; False when its body is over ``max_body`` (not kept)."""
        if len(kept.body) > self.max_body:
            log.warning("x402: a %d-byte paid response is too large to keep for retries",
                        len(kept.body))  # fmt: skip
            return False
        with self._db.locked():
            self._exec(
                "INSERT OR REPLACE INTO responses (network, asset, payer, nonce, signature, "
                "retry_id, fingerprint, status, headers, body, created) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (*key, kept.signature, kept.retry_id, kept.fingerprint, kept.status,
                 json.dumps(kept.headers), kept.body, self._clock()),
            )  # fmt: skip
            self._puts += 1
            if self._puts % 64 == 0:
                self._prune_locked()
        return True

    def _prune_locked(self) -> None:
        self._exec("DELETE FROM responses WHERE created<=?", (self._clock() - self.window_s,))
        self._exec(
            "DELETE FROM responses WHERE rowid IN (SELECT rowid FROM responses "
            "ORDER BY created DESC LIMIT -1 OFFSET ?)",
            (self.max_entries,),
        )

    def __len__(self) -> int:
        with self._db.locked():
            return int(self._exec("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()


# ---- the facilitator client with leases -----------------------------------------------------
def _auth_key(payload: PaymentPayload) -> AuthKey | None:
    try:
        return authorization_key(payload.accepted.network, payload.accepted.asset, payload.payload)
    except (ValueError, KeyError, TypeError):
        return None


def _outage(exc: Exception) -> tuple[str, str]:
    """(reason, message) for a facilitator call that raised instead of answering."""
    if _AUTH_REFUSED.match(str(exc)):
        log.warning("x402: the facilitator refused this service's credentials: %s", str(exc)[:200])
        return ERR_FACILITATOR_UNAUTHORIZED, explain(ERR_FACILITATOR_UNAUTHORIZED)
    log.warning("x402: the facilitator is unavailable: %s", exc)
    return ERR_FACILITATOR_UNAVAILABLE, explain(ERR_FACILITATOR_UNAVAILABLE)


class ReservingClient:
    """A facilitator client for the SDK's ``x402ResourceServer`` that keeps the lease token of
    each verify and gives the lease back when the handler failed (``on_canceled``); an outage is
    a refusal with a reason code, never an exception or raw error text."""

    def __init__(self, inner: FacilitatorClient, *, max_leases: int = 10_000) -> None:
        self.inner = inner
        self.max_leases = max_leases
        self._leases: OrderedDict[AuthKey, str] = OrderedDict()
        self.released = 0

    def get_supported(self) -> SupportedResponse:
        return self.inner.get_supported()

    async def verify(self, payload: Any, requirements: Any) -> VerifyResponse:
        try:
            result = await self.inner.verify(payload, requirements)
        except Exception as exc:
            reason, message = _outage(exc)
            return VerifyResponse(is_valid=False, invalid_reason=reason, invalid_message=message)
        token = (result.extra or {}).get("reservation") if result.is_valid else None
        key = _auth_key(payload) if isinstance(payload, PaymentPayload) else None
        if isinstance(token, str) and key is not None:
            self._leases[key] = token
            while len(self._leases) > self.max_leases:
                self._leases.popitem(last=False)
        return result

    async def settle(self, payload: Any, requirements: Any) -> SettleResponse:
        if isinstance(payload, PaymentPayload) and (key := _auth_key(payload)) is not None:
            self._leases.pop(key, None)
        failure: Exception | None = None
        for _ in range(2):  # settle is idempotent per authorization: one retry on an outage
            try:
                return await self.inner.settle(payload, requirements)
            except Exception as exc:
                failure = exc
        assert failure is not None
        reason, message = _outage(failure)
        return SettleResponse(
            success=False,
            error_reason=reason,
            error_message=message,
            transaction="",
            network=str(getattr(requirements, "network", "") or "unknown"),
        )

    async def release(self, payload: PaymentPayload, requirements: PaymentRequirements) -> bool:
        """Give back the lease of ``payload`` (its handler failed); False when none is held or
        the facilitator cannot take it back (the lease then runs out at ``validBefore``)."""
        key = _auth_key(payload)
        token = self._leases.pop(key, None) if key is not None else None
        release = getattr(self.inner, "release", None)
        if token is None or not callable(release):
            return False
        try:
            released = bool(await release(payload, requirements, token))
        except Exception as exc:
            log.warning("x402: could not release a reservation: %s", exc)
            return False
        self.released += int(released)
        return released

    async def on_canceled(self, ctx: VerifiedPaymentCanceledContext) -> None:
        """The SDK's hook: the verified request's handler failed, nothing was served."""
        payload, requirements = ctx.payment_payload, ctx.requirements
        if isinstance(payload, PaymentPayload) and isinstance(requirements, PaymentRequirements):
            await self.release(payload, requirements)


# ---- per-authorization serialisation and replay ---------------------------------------------
class _KeyedLocks:
    """One asyncio lock per key while someone holds or waits for it (bounded by the requests
    in flight)."""

    def __init__(self) -> None:
        self._locks: dict[AuthKey, list[Any]] = {}  # key -> [lock, users]

    @contextlib.asynccontextmanager
    async def hold(self, key: AuthKey) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


def _settled(response: Response) -> bool:
    """Did the SDK deliver this response with a successful settlement?"""
    encoded = response.headers.get(PAYMENT_RESPONSE_HEADER)
    if response.status_code >= 400 or not encoded:
        return False
    try:
        return json.loads(base64.b64decode(encoded)).get("success") is True
    except (ValueError, binascii.Error, AttributeError):
        return False


def _log_paid(request: Request, paid: Paid, response: Response) -> None:
    """One line per paid request: route, payer, what was settled (or why not), transaction."""
    if not log.isEnabledFor(logging.INFO):  # no header decoding on the hot path when unlogged
        return
    settlement: dict[str, Any] = {}
    encoded = response.headers.get(PAYMENT_RESPONSE_HEADER)
    if encoded:
        try:
            decoded = json.loads(base64.b64decode(encoded))
            settlement = decoded if isinstance(decoded, dict) else {}
        except (ValueError, binascii.Error):
            settlement = {}
    network, asset, payer, _nonce = paid.key
    event(
        log,
        "x402.paid_request",
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        network=network,
        asset=asset,
        payer=payer,
        amount=str(settlement.get("amount") or ""),
        result="served" if _settled(response) else "refused",
        reason=str(settlement.get("errorReason") or _required_error(response) or ""),
        tx=str(settlement.get("transaction") or ""),
    )


def _required_error(response: Response) -> str | None:
    """The reason a 402 gives in its PAYMENT-REQUIRED header, if any."""
    encoded = response.headers.get(PAYMENT_REQUIRED_HEADER)
    if response.status_code != 402 or not encoded:
        return None
    try:
        return decode_payment_required_header(encoded).error
    except Exception:  # an unreadable header is no reason to fail the request
        return None


class ExactlyOnce:
    """Wraps the SDK's middleware: serialise per authorization, replay genuine retries, keep
    each settled response for them."""

    def __init__(self, responses: RetainedResponses | None = None) -> None:
        self.responses = responses if responses is not None else RetainedResponses()
        self._locks = _KeyedLocks()
        self.replayed = 0

    def wrap(self, sdk: Middleware) -> Middleware:
        async def once(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            paid = read_payment(request)
            if paid is None:
                return await sdk(request, call_next)
            print_ = await fingerprint(request)
            # its own task: a client that goes away does not stop the settlement and the
            # keeping of the response its retry will get
            task = asyncio.ensure_future(self._serve(sdk, request, call_next, paid, print_))
            response = await asyncio.shield(task)
            _log_paid(request, paid, response)
            return response

        return once

    async def _serve(
        self,
        sdk: Middleware,
        request: Request,
        call_next: Callable[[Request], Awaitable[Response]],
        paid: Paid,
        print_: str,
    ) -> Response:
        def keep(response: Response) -> tuple[int, list[tuple[str, str]], bytes] | None:
            body = getattr(response, "body", None)
            if not _settled(response) or not isinstance(body, bytes):
                return None
            headers = [(k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in response.raw_headers]  # fmt: skip
            return response.status_code, headers, body

        return await self.once(
            paid, print_, lambda: sdk(request, call_next), keep, Retained.response
        )

    async def once(
        self,
        paid: Paid,
        print_: str,
        serve: Callable[[], Awaitable[T]],
        keep: Callable[[T], tuple[int, list[tuple[str, str]], bytes] | None],
        replay: Callable[[Retained], T],
    ) -> T:
        """Serve one request paid with ``paid`` (``print_``: its fingerprint), whatever the
        transport: requests with the same authorization one at a time, a genuine retry answered
        with ``replay`` of the kept answer, else ``serve`` and keep what ``keep`` says (status,
        headers, body; None: not settled, nothing kept)."""
        async with self._locks.hold(paid.key):
            kept = self.responses.get(paid.key)
            if kept is not None and kept.answers(paid, print_):
                self.replayed += 1
                return replay(kept)
            answer = await serve()
            stored = keep(answer)
            if stored is not None:
                status, headers, body = stored
                retained = Retained(paid.signature, paid.retry_id, print_, status, headers, body)
                self.responses.put(paid.key, retained)
            return answer


def declare_retry_id(config: RouteConfig) -> RouteConfig:
    """``config`` advertising the ``payment-identifier`` extension (optional for clients)."""
    extensions = dict(config.extensions or {})
    extensions.setdefault(
        PAYMENT_IDENTIFIER, {"info": {"required": False}, "schema": PAYMENT_IDENTIFIER_SCHEMA}
    )
    return dataclasses.replace(config, extensions=extensions)


def exact_middleware(
    routes: dict[str, RouteConfig],
    facilitator: FacilitatorClient,
    network: str,
    *,
    responses: RetainedResponses | None = None,
    extend: Extension | None = None,
) -> tuple[Middleware, x402ResourceServer]:
    """The SDK's middleware for ``routes`` (``exact``, and what ``extend`` adds: ``upto``) with
    this module's guarantee around it: leases released on handler failure, outages as reason
    codes, one response per authorization. Returns the middleware and the SDK resource
    server."""
    server = reserving_server(facilitator, network)
    if extend is not None:
        extend(server, routes)
    sdk = payment_middleware({r: declare_retry_id(c) for r, c in routes.items()}, server)
    return ExactlyOnce(responses).wrap(sdk), server


def reserving_server(facilitator: FacilitatorClient, network: str) -> x402ResourceServer:
    """The SDK's resource server for ``exact`` on ``network`` over ``facilitator`` through a
    ``ReservingClient``: leases given back when a handler fails, outages as reason codes."""
    client = ReservingClient(facilitator)
    server = x402ResourceServer(client)
    register_exact_evm_server(server, network)
    server.on_verified_payment_canceled(client.on_canceled)
    return server
