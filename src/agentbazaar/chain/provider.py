"""The JSON-RPC transport to a node: web3's ``HTTPProvider``, with kept-alive standard-library
connections for a node on this machine.

``requests`` costs about 2.3 ms of Python per call to a node on loopback, ``http.client`` on a
kept-alive connection about 0.35 ms (1,000 ``eth_blockNumber`` against anvil). A paid call makes
three or four node calls, so for a local node (anvil, the demo, the tests) the transport is a
large share of the work. Everything above the socket stays web3's: request encoding, caching,
retries of read calls, batches. Remote nodes keep ``requests`` (proxies, TLS, pooled sessions).

One connection per thread (and per process: a forked child opens its own). A connection the node
has closed while idle is noticed before it is reused (the socket reads as ready), so a request is
never sent twice: a transaction cannot be broadcast again by the transport. The connections are
closed when the provider is (``close``) or when it is garbage-collected, never left to leak.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import select
import threading
import weakref
from typing import Any
from urllib.parse import urlsplit

import requests
from web3 import HTTPProvider

_HEADERS = {"Content-Type": "application/json", "Connection": "keep-alive"}


def is_loopback_http(url: str) -> bool:
    """True for an ``http://`` URL whose host is this machine (localhost, 127.0.0.0/8, ::1)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class _Held:
    """A thread's connection: closed when the thread's locals go (the thread ended), when the
    poster is closed or collected; never left for the garbage collector to find open."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn, self.pid = conn, os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():  # a forked child's copy is its parent's to close
            self.conn.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit os may be gone: nothing left to close
            pass


class _KeptAlivePoster:
    """What ``HTTPProvider`` asks of its session manager (``make_post_request``), over one
    ``http.client`` connection per thread."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        assert parts.hostname is not None
        self._host = parts.hostname
        self._port = parts.port or 80
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._local = threading.local()
        self._open: weakref.WeakSet[_Held] = weakref.WeakSet()  # every thread's, for close()
        weakref.finalize(self, _close_all, self._open)

    def _connection(self) -> http.client.HTTPConnection:
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and held.pid == os.getpid() and not _closed_by_peer(held.conn):
            return held.conn
        if held is not None:
            held.close()
        fresh = _Held(http.client.HTTPConnection(self._host, self._port, timeout=self._timeout))
        self._local.held = fresh
        self._open.add(fresh)
        return fresh.conn

    def _drop(self) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.close()

    def close(self) -> None:
        """Close every connection to the node (each thread reconnects on its next call)."""
        _close_all(self._open)

    def make_post_request(self, endpoint_uri: Any, data: bytes | str, **_: Any) -> bytes:
        body = data.encode() if isinstance(data, str) else data
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=_HEADERS)
            response = conn.getresponse()
            raw = response.read()
        except TimeoutError as exc:
            self._drop()
            raise requests.Timeout(f"{endpoint_uri}: no answer in {self._timeout} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise ConnectionError(f"{endpoint_uri}: {type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self._drop()
        if response.status >= 400:
            raise requests.HTTPError(f"{response.status} {response.reason} for url {endpoint_uri}")
        return raw


def _close_all(open_: weakref.WeakSet[_Held]) -> None:
    for held in list(open_):
        held.close()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive socket that reads as ready has been closed (or is out of step)."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: ``request`` connects
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def http_provider(url: str, timeout: float) -> HTTPProvider:
    """web3's provider for ``url``; a node on loopback gets kept-alive standard connections."""
    provider = HTTPProvider(url, request_kwargs={"timeout": timeout})
    if is_loopback_http(url):
        provider._request_session_manager = _KeptAlivePoster(url, timeout)  # type: ignore[assignment]
    return provider
