"""What benchmark scripts share (``benchmarks/``): one JSON line per figure, a fresh anvil with
(part of) the contract suite, and a client run in a forked process.

Worlds, servers and signers are the test kit's, so a benchmark measures the set-up the tests
check.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentbazaar.chain import Chain
from agentbazaar.testing import LocalWorld, local_anvil


def emit(**fields: Any) -> None:
    """One figure: name, value, unit, and the reference measured beside it."""
    print(json.dumps(fields), flush=True)


@contextmanager
def anvil_world(
    tmp: Path, *, only: Collection[str] = ("USDC", "batch-settlement"), dev_accounts: int = 10
) -> Iterator[LocalWorld]:
    """A fresh anvil (stopped on exit) with the suite entries ``only`` and funded dev accounts."""
    with local_anvil(tmp) as node:
        chain = Chain.rpc(node.running_url(), backend="local")
        yield LocalWorld.deploy(chain, only=only, fund_dev_accounts=dev_accounts)


def in_fork(fn: Callable[..., Any], *args: Any, timeout: float = 900) -> Any:
    """``fn(*args)`` in a forked process (its CPU does not share our GIL); returns its result."""
    ctx = multiprocessing.get_context("fork")
    out: Any = ctx.Queue()
    proc = ctx.Process(target=lambda: out.put(fn(*args)))
    proc.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return out.get(timeout=1)
            except queue.Empty:
                if not proc.is_alive() and out.empty():
                    raise RuntimeError(f"the client process died (exit {proc.exitcode})") from None
        raise RuntimeError(f"the client process did not finish in {timeout:.0f} s")
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
