"""``Toolbox``: what every tool call needs (config, chain, suite, the wallet), opened once.

A toolbox is bound to one wallet (``wallet=``): every spend a tool makes is that wallet's
``Wallet.spend``, so its policy is in force. Spends above the policy's approval threshold ask
the approver of the current call (``Toolbox.asking``), which an MCP server makes a question to
the person (elicitation) and a framework adapter takes from its caller; with no approver such a
spend is refused (``ApprovalRequired``) before anything is signed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from agentbazaar.config import BazaarConfig
from agentbazaar.errors import InputError
from agentbazaar.tools.errors import ToolArgumentError
from agentbazaar.wallet.policy import SpendRequest
from agentbazaar.wallet.wallet import Approver

if TYPE_CHECKING:
    from agentbazaar.chain import Chain
    from agentbazaar.suite import Suite
    from agentbazaar.tools.catalog import Tool
    from agentbazaar.wallet import Wallet

_APPROVER: ContextVar[Approver | None] = ContextVar("agentbazaar_tool_approver", default=None)


def ask_current_approver(request: SpendRequest) -> bool:
    """The wallet's approver inside a toolbox: whoever ``Toolbox.asking`` put in charge."""
    approver = _APPROVER.get()
    return bool(approver(request)) if approver is not None else False


class Toolbox:
    """The context of tool calls: one data directory, one chain, one paying wallet."""

    def __init__(
        self,
        cfg: BazaarConfig,
        *,
        wallet: str | None = None,
        chain: Chain | None = None,
        suite: Suite | None = None,
        wallets: dict[str, Wallet] | None = None,
    ) -> None:
        self.cfg = cfg
        self.wallet_name = wallet
        self._chain = chain
        self._suite = suite
        self._wallets: dict[str, Wallet] = dict(wallets or {})
        for opened in self._wallets.values():
            opened.approver = ask_current_approver
        self._lock = threading.Lock()
        self.cache: dict[str, Any] = {}  # per-toolbox state of tools (e.g. a hiring agent)

    @property
    def chain(self) -> Chain:
        with self._lock:
            if self._chain is None:
                from agentbazaar.chain import Chain

                self._chain = Chain.from_config(self.cfg)
            return self._chain

    @property
    def suite(self) -> Suite:
        chain = self.chain
        with self._lock:
            if self._suite is None:
                from agentbazaar.suite import Suite

                self._suite = Suite(chain, self.cfg)
            return self._suite

    def wallet(self) -> Wallet:
        """The paying wallet, unlocked once (passphrase from BAZAAR_PASSPHRASE, never asked)."""
        if self.wallet_name is None:
            raise InputError("no paying wallet: start the tools with a wallet (--wallet NAME)")
        with self._lock:
            if self.wallet_name not in self._wallets:
                from agentbazaar.wallet import open_wallet

                self._wallets[self.wallet_name] = open_wallet(
                    self.cfg, self.wallet_name, self.passphrase(), approver=ask_current_approver
                )
            return self._wallets[self.wallet_name]

    def passphrase(self) -> str:
        """BAZAAR_PASSPHRASE: tools never prompt (their stdin may be a protocol)."""
        from agentbazaar.wallet import passphrase_from_env_or_prompt

        return passphrase_from_env_or_prompt(_no_prompt)

    @contextmanager
    def asking(self, approver: Approver | None) -> Iterator[None]:
        """Spends above the approval threshold inside this block ask ``approver``."""
        token = _APPROVER.set(approver)
        try:
            yield
        finally:
            _APPROVER.reset(token)

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run tool ``name`` with JSON ``arguments``; returns its JSON result.

        Raises ``ToolArgumentError`` for arguments the schema refuses and the tool's own
        ``BazaarError`` (policy refusals included) otherwise; nothing is signed before the
        checks pass."""
        tool = find_tool(name)
        return tool.run(self, parse_arguments(tool, arguments or {}))


def find_tool(name: str) -> Tool:
    from agentbazaar.tools.catalog import TOOLS

    for tool in TOOLS:
        if tool.name == name:
            return tool
    raise InputError(f"no tool {name!r}; the tools are {', '.join(t.name for t in TOOLS)}")


def parse_arguments(tool: Tool, arguments: Any) -> BaseModel:
    """Validate ``arguments`` against the tool's schema; a refusal names every bad field."""
    if not isinstance(arguments, dict):
        raise ToolArgumentError(f"{tool.name}: arguments are a JSON object")
    try:
        return tool.args.model_validate(arguments)
    except ValidationError as exc:
        raise argument_error(tool, exc) from None


def argument_error(tool: Tool, exc: ValidationError) -> ToolArgumentError:
    """One message naming every refused field and the tool's arguments."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        problems.append(f"{where}: {err['msg']}")
    fields = ", ".join(tool.args.model_fields)
    return ToolArgumentError(
        f"bad arguments for {tool.name}: {'; '.join(problems)} (its arguments: {fields})",
        tool=tool.name,
    )


def _no_prompt(_text: str) -> str:
    raise InputError(
        "the wallet's passphrase is needed: set BAZAAR_PASSPHRASE for the tools (nothing prompts)"
    )
