"""Per-sender nonce management.

Invariant: for each sender, nonces handed out by one ``NonceManager`` form one gap-free increasing
sequence, whatever the number of threads sending at once. A nonce is taken under the sender's
lock, held while the transaction is signed and broadcast; if the broadcast fails before the node
accepted it, the nonce is given back (the next send reuses it) or re-read from the chain.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class NonceManager:
    def __init__(self, fetch_pending: Callable[[str], int]) -> None:
        self._fetch = fetch_pending
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._next: dict[str, int] = {}

    def _lock_for(self, sender: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sender.lower(), threading.Lock())

    @contextlib.contextmanager
    def reserve(self, sender: str) -> Iterator[int]:
        """Yield the next nonce for ``sender``; it is consumed only if the block exits cleanly."""
        key = sender.lower()
        with self._lock_for(sender):
            nonce = self._next.get(key)
            if nonce is None:
                nonce = self._fetch(sender)
            try:
                yield nonce
            except BaseException:
                self._next.pop(key, None)  # unknown whether the node saw it: re-read next time
                raise
            self._next[key] = nonce + 1

    def resync(self, sender: str) -> None:
        with self._lock_for(sender):
            self._next.pop(sender.lower(), None)
