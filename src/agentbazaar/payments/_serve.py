"""Run an ASGI app with uvicorn on 127.0.0.1 in a background thread (tests, benchmarks, CLI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from agentbazaar.chain.anvil import free_port
from agentbazaar.payments._errors import FacilitatorError


@contextmanager
def serve_in_thread(
    app: Any, *, port: int | None = None, timeout: float = 20.0, loop: str = "asyncio"
) -> Iterator[str]:
    """Serve ``app`` on ``http://127.0.0.1:<port>``; stopped (and joined) on exit. ``loop`` is
    uvicorn's (``"auto"`` picks uvloop when installed)."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop=loop
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise FacilitatorError(f"the server on port {port} did not start", port=port)
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
