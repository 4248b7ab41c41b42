"""``bazaar dashboard``: a live web page over a data directory and its chain.

Pages (``/``, ``/agents``, ``/agents/ID``, ``/payments``, ``/tx/HASH``, ``/receipts``,
``/wallets``, ``/contracts``, ``/datasets``) are one HTML shell and a small script of our own
(``static/``, no CDN) that draws from the JSON API beside them (``/api/...``); ``/api/events``
is a server-sent event stream that says when something changed, so open pages redraw. An unknown
agent or transaction is a 404 (page or JSON), never a 500.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from agentbazaar.dashboard.data import DashboardData
from agentbazaar.errors import BazaarError, NotFound
from agentbazaar.web import install_error_handler

T = TypeVar("T")
STATIC = files("agentbazaar.dashboard") / "static"
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}
PAGES = ("", "agents", "payments", "receipts", "wallets", "contracts", "datasets")
EVENT_POLL = 1.0


def _shell(status: int = 200) -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(), status_code=status)


def create_app(data: DashboardData) -> FastAPI:
    """The dashboard over ``data`` (its reads are serialised: one chain connection)."""
    app = FastAPI(title="agentbazaar dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    lock = threading.Lock()

    def read(fn: Callable[[], T]) -> T:
        with lock:
            return fn()

    def page(request: Request, exc: BazaarError) -> Response | None:
        """The page shell with the error's status, for a browser (the API answers JSON)."""
        return None if request.url.path.startswith("/api/") else _shell(exc.http_status)

    install_error_handler(app, page=page)

    @app.exception_handler(404)
    async def _missing(request: Request, exc: Any) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "NotFound", "message": f"no {request.url.path}"}, 404)
        return _shell(404)

    _api(app, data, read)
    _pages(app, data, read)
    return app


def _api(app: FastAPI, data: DashboardData, read: Callable[[Callable[[], Any]], Any]) -> None:
    @app.get("/api/overview")
    def overview() -> Any:
        return read(data.overview)

    @app.get("/api/agents")
    def agents(limit: int = 200) -> Any:
        return read(lambda: data.agents(limit))

    @app.get("/api/agents/{agent_id}")
    def agent(agent_id: str) -> Any:
        if not agent_id.isdigit():
            raise NotFound(f"no agent {agent_id!r}: agent ids are numbers")
        return read(lambda: data.agent(int(agent_id)))

    @app.get("/api/payments")
    def payments(limit: int = 100, before: int | None = None, wallet: str | None = None) -> Any:
        return read(lambda: data.payments(limit, before, wallet))

    @app.get("/api/tx/{tx_hash}")
    def tx(tx_hash: str) -> Any:
        return read(lambda: data.transaction(tx_hash))

    @app.get("/api/receipts")
    def receipts(limit: int = 100) -> Any:
        return read(lambda: data.receipts(min(max(limit, 1), 1000)))

    @app.get("/api/wallets")
    def wallets() -> Any:
        return read(data.wallets)

    @app.get("/api/chart")
    def chart(bucket: int = 3600) -> Any:
        return read(lambda: data.chart(min(max(bucket, 1), 86400 * 7)))

    @app.get("/api/contracts")
    def contracts() -> Any:
        return read(data.contracts)

    @app.get("/api/datasets")
    def datasets() -> Any:
        return read(data.datasets)

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            last = None
            while not await request.is_disconnected():
                now = await asyncio.to_thread(read, data.fingerprint)
                if now != last:
                    yield f"event: change\ndata: {now}\n\n"
                    last = now
                else:
                    yield ": still here\n\n"
                await asyncio.sleep(EVENT_POLL)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip


def _pages(app: FastAPI, data: DashboardData, read: Callable[[Callable[[], Any]], Any]) -> None:
    @app.get("/static/{name}")
    def static(name: str) -> Response:
        path = STATIC / name
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if "/" in name or suffix not in _TYPES or not path.is_file():
            raise NotFound(f"no asset {name!r}")
        return Response(path.read_bytes(), media_type=_TYPES[suffix])

    for page in PAGES:
        app.add_api_route(f"/{page}", lambda: _shell(), methods=["GET"],
                          response_class=HTMLResponse)  # fmt: skip

    @app.get("/agents/{agent_id}", response_class=HTMLResponse)
    def agent_page(agent_id: str) -> HTMLResponse:
        if not agent_id.isdigit():
            raise NotFound(f"no agent {agent_id!r}")
        read(lambda: data.agent(int(agent_id)))  # 404 for an unknown agent
        return _shell()

    @app.get("/tx/{tx_hash}", response_class=HTMLResponse)
    def tx_page(tx_hash: str) -> HTMLResponse:
        read(lambda: data.transaction(tx_hash))
        return _shell()


def serve(data: DashboardData, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_app(data), host=host, port=port, log_level="warning")
