"""A local anvil node that bazaar starts, stops and reports on.

State is persisted under ``<home>/chain/state.json`` (anvil ``--state``: loaded at start, dumped
periodically and at shutdown) so balances and contracts survive a restart. The node's pid, port and
url live in ``<home>/chain/node.json``; a stale file (dead pid) is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from agentbazaar.config import LOCAL_CHAIN_ID, BazaarConfig
from agentbazaar.errors import ChainError, ChainUnavailable

# free_port lives in agentbazaar.loopback; the name stays importable from here for callers
# that pick a port for their node (``AnvilNode(cfg.with_chain(anvil_port=free_port()))``).
from agentbazaar.loopback import free_port as free_port

_NPM_BIN = Path(".tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
STATE_INTERVAL_SECONDS = 2
# Nodes this process started, kept so they can be reaped (and are not reported as leaked).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def find_anvil() -> Path:
    """Locate the anvil binary: $BAZAAR_ANVIL when set (and only it: an explicit choice is not
    silently replaced by another binary), else the venv's bin, the project's .tools, or PATH."""
    explicit = os.environ.get("BAZAAR_ANVIL")
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ChainUnavailable(
            f"BAZAAR_ANVIL is {explicit!r}, which is not an executable file: point it at the "
            "anvil binary, or unset it to use the one `make setup` installs"
        )
    candidates: list[Path] = []
    candidates.append(Path(sys.executable).parent / "anvil")
    for parent in Path(__file__).resolve().parents:
        candidates.append(parent / _NPM_BIN)
    found = shutil.which("anvil")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ChainUnavailable(
        "anvil is not installed: run `make setup` (installs the npm package "
        "@foundry-rs/anvil-linux-amd64 into .tools/) or set BAZAAR_ANVIL to the binary"
    )


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"anvil" in cmdline


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    try:
        resp = requests.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
        )
        return int(resp.json()["result"], 16)
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    chain_id: int | None = None
    block: int | None = None
    state_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AnvilNode:
    """The local chain of one data directory."""

    def __init__(
        self, cfg: BazaarConfig, *, port: int | None = None, persist_state: bool = True
    ) -> None:
        """``persist_state=False``: no ``--state`` dump (a throw-away node, e.g. a benchmark
        whose state is too large to dump every few seconds)."""
        self.cfg = cfg
        self.persist_state = persist_state
        self.dir = cfg.chain_dir
        self.port = port or cfg.chain.anvil_port
        self.info_file = self.dir / "node.json"
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "anvil.log"

    def _read_info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return None
        pid = info.get("pid")
        return info if isinstance(pid, int) and _pid_alive(pid) else None

    def status(self) -> NodeStatus:
        info = self._read_info()
        if info is None:
            return NodeStatus(running=False, state_file=str(self.state_file))
        url = str(info["url"])
        chain_id = rpc_chain_id(url)
        block = None
        if chain_id is not None:
            try:
                r = requests.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                    timeout=1.0,
                )
                block = int(r.json()["result"], 16)
            except (requests.RequestException, ValueError, KeyError):
                block = None
        return NodeStatus(
            running=chain_id is not None,
            pid=int(info["pid"]),
            port=int(info["port"]),
            url=url,
            chain_id=chain_id,
            block=block,
            state_file=str(self.state_file),
        )

    def running_url(self) -> str:
        st = self.status()
        if not st.running or st.url is None:
            raise ChainUnavailable(
                "the local chain is not running: start it with `bazaar chain up` "
                "(or choose another backend with --chain embedded / --rpc URL)"
            )
        return st.url

    def start(
        self, *, timeout: float = 30.0, on_wait: Callable[[], None] | None = None
    ) -> NodeStatus:
        """Start anvil (idempotent: returns the running node's status if already up)."""
        current = self.status()
        if current.running:
            return current
        if _port_in_use(self.port):
            raise ChainError(
                f"port {self.port} is already in use by another program: set [chain] anvil_port "
                "in bazaar.toml or stop that program",
                port=self.port,
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(find_anvil()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(LOCAL_CHAIN_ID),
        ]
        if self.persist_state:
            cmd += [
                "--state",
                str(self.state_file),
                "--state-interval",
                str(STATE_INTERVAL_SECONDS),
            ]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN[proc.pid] = proc
        url = f"http://127.0.0.1:{self.port}"
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"pid": proc.pid, "port": self.port, "url": url, "started_at": int(time.time())}
            )
        )
        tmp.replace(self.info_file)
        self._wait_ready(proc, url, timeout, on_wait)
        return self.status()

    def _wait_ready(
        self,
        proc: subprocess.Popen[bytes],
        url: str,
        timeout: float,
        on_wait: Callable[[], None] | None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.info_file.unlink(missing_ok=True)
                raise ChainError(
                    f"anvil exited at start (code {proc.returncode}): {self._log_tail()}"
                )
            if rpc_chain_id(url, timeout=0.5) is not None:
                return
            if on_wait:
                on_wait()
            time.sleep(0.05)
        self.stop()
        raise ChainUnavailable(f"anvil did not answer within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def stop(self, *, timeout: float = 15.0) -> bool:
        """Stop the node (state is dumped by anvil on SIGTERM). Returns False if none was running."""
        info = self._read_info()
        if info is None:
            self.info_file.unlink(missing_ok=True)
            return False
        pid = int(info["pid"])
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            _reap(pid)
            time.sleep(0.05)
        if _pid_alive(pid):
            _signal(pid, signal.SIGKILL)
        child = _CHILDREN.pop(pid, None)
        if child is not None:  # collect the exit status so no zombie or warning is left behind
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _CHILDREN[pid] = child
        else:
            _reap(pid)
        self.info_file.unlink(missing_ok=True)
        return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
