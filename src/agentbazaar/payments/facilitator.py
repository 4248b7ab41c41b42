"""Our x402 facilitator: a registry of scheme handlers and the HTTP service around it.

``Facilitator`` routes each payment to the handler registered for its (scheme, network); it is also
a drop-in in-process facilitator client for the SDK's ``x402ResourceServer`` (async ``verify`` and
``settle``, sync ``get_supported``). ``create_app`` serves it over HTTP exactly as the SDK's
``HTTPFacilitatorClient`` expects: ``POST /verify``, ``POST /settle``, ``GET /supported``, plus
``/healthz`` and ``/metrics``, and ``POST /release``: the reservation protocol's hand-back (a seller
whose handler failed returns the lease ``/verify`` gave it; see ``agentbazaar.payments.exact``).

Authentication is optional: ``create_app(fac, api_keys=ApiKeys([...]))`` (the CLI:
``bazaar facilitator --api-key K`` (repeatable), ``--api-key-file F`` or
``BAZAAR_FACILITATOR_API_KEYS=K1,K2``) makes ``/verify``, ``/settle``, ``/release`` and
``/metrics`` require ``Authorization: Bearer <key>``, checked in constant time before the body is
read; a missing,
malformed or wrong key gets 401 with a JSON error and ``WWW-Authenticate: Bearer``, and nothing
is verified or settled. ``/supported`` (the SDK fetches it at start-up) and ``/healthz`` stay
open. ``/metrics`` is guarded because its counts are the operator's business volume. Sellers pass
their key with ``install_paywall(..., facilitator_key=K)`` (``bazaar serve-example
--facilitator-key K`` or ``BAZAAR_FACILITATOR_API_KEY``); see ``agentbazaar.payments.auth``.
Without keys every route is open, as before.

To add a scheme, implement ``SchemeHandler`` (``scheme``, ``networks``, ``signers()``,
``extra(network)``, async ``verify`` / ``settle``, optionally async ``release``) and
``Facilitator.register`` it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from eth_account.signers.local import LocalAccount
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from x402.schemas import (
    PaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedKind,
    SupportedResponse,
    VerifyResponse,
)
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequirementsV1

from agentbazaar.chain import Chain
from agentbazaar.observe import PROMETHEUS_CONTENT_TYPE, event, prometheus_text, wants_prometheus
from agentbazaar.payments.auth import ApiKeys
from agentbazaar.payments.eip3009 import ERR_INVALID_PAYLOAD, ERR_UNSUPPORTED_VERSION
from agentbazaar.payments.exact import ExactEvmHandler
from agentbazaar.payments.reasons import ERR_UNKNOWN_RESERVATION
from agentbazaar.payments.store import SettlementStore
from agentbazaar.web import install_error_handler

MAX_BODY_BYTES = 64 * 1024
ERR_UNSUPPORTED_SCHEME = "unsupported_scheme"
ERR_UNEXPECTED = "unexpected_facilitator_error"
ERR_UNAUTHORIZED = "unauthorized"
_REFUSAL_MESSAGES = {
    "missing": "this facilitator needs an API key: send Authorization: Bearer <key>",
    "malformed": "the Authorization header is not 'Bearer <key>'",
    "wrong_key": "the API key is not accepted",
}
log = logging.getLogger(__name__)


@runtime_checkable
class SchemeHandler(Protocol):
    """One payment scheme on one or more networks."""

    scheme: str

    @property
    def networks(self) -> frozenset[str]: ...

    def signers(self) -> list[str]: ...

    def extra(self, network: str) -> dict[str, Any] | None: ...

    async def verify(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse: ...

    async def settle(self, payload: PaymentPayload, req: PaymentRequirements) -> SettleResponse: ...


class Facilitator:
    """Scheme handlers by (scheme, network); v2 only (v1 payloads get a clear refusal)."""

    def __init__(self, handlers: list[SchemeHandler] | None = None) -> None:
        self._handlers: dict[tuple[str, str], SchemeHandler] = {}
        for handler in handlers or []:
            self.register(handler)

    def register(self, handler: SchemeHandler) -> Facilitator:
        for network in handler.networks:
            self._handlers[(handler.scheme, network)] = handler
        return self

    @property
    def handlers(self) -> list[SchemeHandler]:
        unique: dict[int, SchemeHandler] = {id(h): h for h in self._handlers.values()}
        return list(unique.values())

    def handler_for(self, scheme: str, network: str) -> SchemeHandler | None:
        return self._handlers.get((scheme, network))

    def get_supported(self) -> SupportedResponse:
        kinds = [
            SupportedKind(x402_version=2, scheme=scheme, network=network, extra=h.extra(network))
            for (scheme, network), h in sorted(self._handlers.items(), key=lambda kv: kv[0])
        ]
        signers: dict[str, list[str]] = {}
        for handler in self.handlers:
            for address in handler.signers():
                bucket = signers.setdefault("eip155:*", [])
                if address not in bucket:
                    bucket.append(address)
        return SupportedResponse(kinds=kinds, extensions=[], signers=signers)

    async def verify(
        self,
        payload: PaymentPayload | PaymentPayloadV1,
        requirements: PaymentRequirements | PaymentRequirementsV1,
    ) -> VerifyResponse:
        if not isinstance(payload, PaymentPayload) or not isinstance(
            requirements, PaymentRequirements
        ):
            return VerifyResponse(is_valid=False, invalid_reason=ERR_UNSUPPORTED_VERSION)
        handler = self.handler_for(requirements.scheme, requirements.network)
        if handler is None:
            return VerifyResponse(
                is_valid=False,
                invalid_reason=ERR_UNSUPPORTED_SCHEME,
                invalid_message=f"{requirements.scheme} on {requirements.network} is not served",
            )
        try:
            return await handler.verify(payload, requirements)
        except Exception as exc:  # a handler bug or an unreachable dependency: refuse, never 500
            log.exception("x402 verify failed unexpectedly")
            return VerifyResponse(
                is_valid=False, invalid_reason=ERR_UNEXPECTED, invalid_message=str(exc)
            )

    async def settle(
        self,
        payload: PaymentPayload | PaymentPayloadV1,
        requirements: PaymentRequirements | PaymentRequirementsV1,
    ) -> SettleResponse:
        network = str(getattr(requirements, "network", "") or "unknown")
        if not isinstance(payload, PaymentPayload) or not isinstance(
            requirements, PaymentRequirements
        ):
            return _settle_failure(ERR_UNSUPPORTED_VERSION, "only x402 v2 is served", network)
        handler = self.handler_for(requirements.scheme, requirements.network)
        if handler is None:
            return _settle_failure(ERR_UNSUPPORTED_SCHEME, "scheme not served", network)
        try:
            result = await handler.settle(payload, requirements)
        except Exception as exc:  # whatever was recorded stays recorded; a retry resolves it
            log.exception("x402 settle failed unexpectedly")
            result = _settle_failure(ERR_UNEXPECTED, str(exc), network)
        _log_settlement(requirements, result)
        return result

    async def release(
        self,
        payload: PaymentPayload | PaymentPayloadV1,
        requirements: PaymentRequirements | PaymentRequirementsV1,
        reservation: str,
    ) -> bool:
        """Give back the reservation a verify returned (``extra["reservation"]``) because the
        seller served nothing; False when that lease is not held (or not ours to release)."""
        if not isinstance(payload, PaymentPayload) or not isinstance(
            requirements, PaymentRequirements
        ):
            return False
        handler = self.handler_for(requirements.scheme, requirements.network)
        release = getattr(handler, "release", None)
        if not callable(release):
            return False
        try:
            return bool(await release(payload, requirements, reservation))
        except Exception:
            log.exception("x402 release failed unexpectedly")
            return False

    def metrics(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for handler in self.handlers:
            metrics = getattr(handler, "metrics_snapshot", None)
            if callable(metrics):
                for name, value in metrics().items():
                    out[name] = out.get(name, 0) + int(value)
        return out

    def recover(self) -> int:
        """Start-up recovery of every handler that keeps durable state."""
        done = 0
        for handler in self.handlers:
            recover = getattr(handler, "recover", None)
            if callable(recover):
                done += int(recover())
        return done


# Levels rather than counts since start: rows in a state now, payers under a throttle.
GAUGES = frozenset(
    {"reserved", "pending", "payers_with_failures", "stored_settled", "stored_failed"}
)


def _log_settlement(requirements: PaymentRequirements, result: SettleResponse) -> None:
    """One line per settlement: scheme, network, payer, amount, payee, result, transaction."""
    event(
        log,
        "x402.settle",
        scheme=requirements.scheme,
        network=requirements.network,
        asset=requirements.asset,
        payer=result.payer or "",
        pay_to=requirements.pay_to,
        amount=result.amount or requirements.amount,
        result="settled" if result.success else "failed",
        reason=result.error_reason or "",
        tx=result.transaction or "",
    )


def exact_facilitator(
    chain: Chain,
    account: LocalAccount,
    *,
    store_path: Path | None = None,
    assets: list[str] | None = None,
    workers: int = 16,
) -> Facilitator:
    """A facilitator for scheme ``exact`` on ``chain``, settling with ``account`` (its gas
    wallet); ``assets`` limits the tokens it accepts (default: any EIP-3009 token)."""
    handler = ExactEvmHandler(
        chain,
        account,
        SettlementStore(store_path),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="x402-settle"),
        assets=frozenset(a.lower() for a in assets) if assets is not None else None,
    )
    return Facilitator([handler])


def _settle_failure(reason: str, message: str, network: str) -> SettleResponse:
    return SettleResponse(
        success=False, error_reason=reason, error_message=message, transaction="", network=network
    )


def _dump(model: VerifyResponse | SettleResponse | SupportedResponse) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def _bad_request(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": ERR_INVALID_PAYLOAD, "message": message}, status_code=status)


async def _read_request(
    request: Request,
) -> tuple[PaymentPayload | PaymentPayloadV1, PaymentRequirements | PaymentRequirementsV1]:
    """Parse ``{x402Version, paymentPayload, paymentRequirements}``; ValueError when malformed."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise OverflowError(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    request.state.reservation = body.get("reservation")
    payload, requirements = body.get("paymentPayload"), body.get("paymentRequirements")
    if not isinstance(payload, dict) or not isinstance(requirements, dict):
        raise ValueError("paymentPayload and paymentRequirements must be objects")
    try:
        if payload.get("x402Version") == 1 or body.get("x402Version") == 1:
            return (
                PaymentPayloadV1.model_validate(payload),
                PaymentRequirementsV1.model_validate(requirements),
            )
        return (
            PaymentPayload.model_validate(payload),
            PaymentRequirements.model_validate(requirements),
        )
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"invalid {where or 'payload'}: {first['msg']}") from exc


def _unauthorized(reason: str) -> JSONResponse:
    challenge = 'Bearer realm="x402-facilitator"'
    if reason != "missing":
        challenge += ', error="invalid_token"'
    return JSONResponse(
        {"error": ERR_UNAUTHORIZED, "message": _REFUSAL_MESSAGES[reason]},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


def create_app(
    facilitator: Facilitator, *, recover_on_start: bool = True, api_keys: ApiKeys | None = None
) -> FastAPI:
    """The facilitator's HTTP service; with ``api_keys``, ``/verify``, ``/settle`` and
    ``/metrics`` need one of them as a bearer token."""
    keys = api_keys or ApiKeys()
    refused = {"count": 0}

    def gate(request: Request) -> JSONResponse | None:
        """401 unless the request carries an accepted key (None: go on)."""
        reason = keys.refusal(request.headers.get("authorization"))
        if reason is None:
            return None
        refused["count"] += 1
        client = request.client.host if request.client else "?"
        log.warning(
            "facilitator: %s %s refused (%s) from %s",
            request.method,
            request.url.path,
            reason,
            client,
        )
        return _unauthorized(reason)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if recover_on_start:
            facilitator.recover()
        yield

    app = FastAPI(title="agentbazaar x402 facilitator", lifespan=lifespan)
    install_error_handler(app)

    async def answer(
        request: Request, action: Callable[[Any, Any], Awaitable[Any]]
    ) -> JSONResponse:
        """The key check, then the body read (413/400 on a bad one), then ``action``."""
        if (denied := gate(request)) is not None:
            return denied
        try:
            payload, requirements = await _read_request(request)
        except OverflowError as exc:
            return _bad_request(str(exc), 413)
        except ValueError as exc:
            return _bad_request(str(exc))
        return JSONResponse(_dump(await action(payload, requirements)))

    @app.post("/verify")
    async def verify(request: Request) -> JSONResponse:
        return await answer(request, facilitator.verify)

    @app.post("/settle")
    async def settle(request: Request) -> JSONResponse:
        return await answer(request, facilitator.settle)

    @app.post("/release")
    async def release(request: Request) -> JSONResponse:
        if (denied := gate(request)) is not None:
            return denied
        try:
            payload, requirements = await _read_request(request)
            token = request.state.reservation
        except OverflowError as exc:
            return _bad_request(str(exc), 413)
        except ValueError as exc:
            return _bad_request(str(exc))
        if not isinstance(token, str) or not 0 < len(token) <= 128:
            return _bad_request("reservation must be the token /verify returned")
        if await facilitator.release(payload, requirements, token):
            return JSONResponse({"released": True})
        return JSONResponse({"released": False, "reason": ERR_UNKNOWN_RESERVATION})

    @app.get("/supported")
    async def supported() -> JSONResponse:
        return JSONResponse(_dump(facilitator.get_supported()))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        kinds = [f"{k.scheme}@{k.network}" for k in facilitator.get_supported().kinds]
        return JSONResponse({"ok": True, "kinds": kinds, "auth": bool(keys)})

    @app.get("/metrics", response_model=None)
    async def metrics(request: Request) -> Response:
        """The counters: Prometheus text for a scraper (``Accept: text/plain`` or OpenMetrics,
        or ``?format=prometheus``), JSON otherwise."""
        if (denied := gate(request)) is not None:
            return denied
        counts = {**facilitator.metrics(), "unauthorized": refused["count"]}
        if wants_prometheus(request.headers.get("accept"), request.query_params.get("format")):
            text = prometheus_text(counts, prefix="bazaar_facilitator", gauges=GAUGES)
            return Response(text, media_type=PROMETHEUS_CONTENT_TYPE)
        return JSONResponse(counts)

    return app
