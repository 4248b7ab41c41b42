"""Local HTTP on 127.0.0.1: a free port, and an ASGI app served by uvicorn in a thread.

One implementation for every place that serves in-process: agents (``Agent.start``), tests and
benchmarks (``serve_in_thread``, re-exported by ``agentbazaar.testing``). A foundation module:
it imports nothing of agentbazaar but the error tree, so every layer may use it.

    with serve_in_thread(app) as url:          # context manager: always stopped and joined
        httpx.get(url + "/healthz")

    server = ThreadedServer(app, name="agent-alice")
    url = server.start()                       # start / stop for objects that own a server
    server.stop()
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

from agentbazaar.errors import ServiceError

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ThreadedServer:
    """``app`` served by uvicorn on ``http://127.0.0.1:<port>`` in a daemon thread.

    ``start`` returns once uvicorn accepts connections (or raises ``ServiceError`` when it
    cannot listen within ``timeout``); ``stop`` asks it to exit and joins the thread. ``loop``
    is uvicorn's (``"auto"`` picks uvloop when installed, as ``bazaar`` runs its services).
    """

    def __init__(
        self,
        app: Any,
        *,
        port: int | None = None,
        name: str | None = None,
        timeout: float = 20.0,
        loop: str = "asyncio",
        lifespan: Literal["auto", "on", "off"] = "on",
        log_level: str = "warning",
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.timeout = timeout
        config = uvicorn.Config(
            app, host=HOST, port=self.port, log_level=log_level, lifespan=lifespan, loop=loop
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=name or f"uvicorn-{self.port}", daemon=True
        )

    def start(self) -> str:
        """Start serving; returns the base url once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"the server on port {self.port} did not start", port=self.port)
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """Ask uvicorn to exit (open requests finish) and wait for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout)


@contextmanager
def serve_in_thread(
    app: Any, *, port: int | None = None, timeout: float = 20.0, loop: str = "asyncio"
) -> Iterator[str]:
    """Serve ``app`` on ``http://127.0.0.1:<port>`` (a free port unless given) for the block;
    stopped and joined on exit, also when the block raises."""
    server = ThreadedServer(app, port=port, timeout=timeout, loop=loop)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
