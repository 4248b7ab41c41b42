"""The discovery index over HTTP: a small FastAPI app.

    GET /healthz                      {"ok": true, "last_block": N, "agents": N}
    GET /agents?skill=&max_price=&asset=&min_rep=&active=&untrusted=&limit=
    GET /agents/{agent_id}            the agent, its skills and its feedback (proven or why not)

``max_price`` is in base units of ``asset`` (a token address, or a symbol the server knows).
Errors answer through ``agentbazaar.web.install_error_handler`` with ``{"error", "message"}``:
bad input 400, an unknown agent 404, a chain the follower cannot reach 503. When built with a
``Follower``, the index catches up with the chain before answering (at most once per
``sync_interval`` seconds).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI

from agentbazaar.errors import InputError, NotFound, UnknownTokenError
from agentbazaar.identity.discovery import DiscoveryIndex, Follower, Query
from agentbazaar.tokens import TokenRegistry
from agentbazaar.web import install_error_handler


class _Sync:
    def __init__(self, follower: Follower | None, interval: float) -> None:
        self.follower, self.interval = follower, interval
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self.follower is None:
            return
        with self._lock:
            if time.monotonic() - self._last >= self.interval:
                self.follower.sync()
                self._last = time.monotonic()


def create_app(
    index: DiscoveryIndex,
    *,
    follower: Follower | None = None,
    tokens: TokenRegistry | None = None,
    sync_interval: float = 1.0,
) -> FastAPI:
    app = FastAPI(title="agentbazaar discovery", version="1")
    sync = _Sync(follower, sync_interval)

    install_error_handler(app)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "last_block": index.last_block(), "agents": index.count()}

    @app.get("/agents")
    def agents(
        skill: str | None = None,
        max_price: str | None = None,
        asset: str | None = None,
        min_rep: str | None = None,
        active: bool | None = True,
        untrusted: bool = False,
        limit: int = 20,
    ) -> dict[str, Any]:
        sync()
        q = Query(
            skill=skill or None,
            asset=_asset(asset, tokens),
            max_price=_units(max_price),
            min_rep=_decimal("min_rep", min_rep),
            active=active,
            trusted_only=not untrusted,
            limit=limit,
        )
        return {
            "last_block": index.last_block(),
            "agents": [r.to_dict() for r in index.query(q)],
        }

    @app.get("/agents/{agent_id}")
    def agent(agent_id: int) -> dict[str, Any]:
        sync()
        record = index.agent(agent_id)
        if record is None:
            raise NotFound(f"agent {agent_id} is not in the index", agent_id=agent_id)
        return dict(record.to_dict(), feedback=index.feedback(agent_id))

    return app


def _units(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise InputError(f"max_price must be base units (digits only), not {text!r}")
    return int(text)


def _decimal(name: str, text: str | None) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InputError(f"{name} must be a number, not {text!r}") from exc
    if not value.is_finite():
        raise InputError(f"{name} must be finite")
    return value


def _asset(text: str | None, tokens: TokenRegistry | None) -> str | None:
    if not text:
        return None
    if text.startswith("0x"):
        from agentbazaar.chain import to_address

        return to_address(text)
    if tokens is None:
        raise UnknownTokenError(f"give the asset as a token address, not {text!r}")
    token = tokens.get(text)
    if token.address is None:
        raise UnknownTokenError(f"{token.symbol} is not a token agents price in")
    return token.address
