"""The HTTP edge every FastAPI service shares: an error of the tree becomes one JSON answer.

    app = FastAPI()
    install_error_handler(app)       # BazaarError -> exc.http_status, exc.to_dict()

The status is the error's own ``http_status`` (``agentbazaar.errors``: 400 for bad input, 404
for what is not known, 402 for a payment, 409 for a conflict, 503 when the chain or a store is
down), the body ``{"error": <class name>, "message": ..., <fields>}``: never a 500 for an error
raised on purpose. A foundation module (it imports nothing of agentbazaar but the error tree),
so every layer's service uses it; middleware, which runs outside FastAPI's exception handlers,
answers with ``error_response``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from agentbazaar.errors import BazaarError

ErrorPage = Callable[[Request, BazaarError], Response | None]


def error_response(exc: BazaarError) -> JSONResponse:
    """The JSON answer to ``exc``: its ``to_dict()`` with its ``http_status``."""
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


def install_error_handler(app: FastAPI, *, page: ErrorPage | None = None) -> None:
    """Answer every ``BazaarError`` a route of ``app`` raises with ``error_response``;
    ``page(request, exc)`` may answer instead (an HTML page for a browser), None to go on."""

    async def answer(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BazaarError)  # registered for BazaarError only
        if page is not None and (shown := page(request, exc)) is not None:
            return shown
        return error_response(exc)

    app.add_exception_handler(BazaarError, answer)
