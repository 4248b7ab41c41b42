"""What every command shares: the run context (config, output mode), output helpers, errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from agentbazaar.config import BazaarConfig, load_config
from agentbazaar.errors import InputError

if TYPE_CHECKING:
    from agentbazaar.wallet import Wallet

WALLET_ENV = "BAZAAR_WALLET"
LOG_FORMAT_ENV = "BAZAAR_LOG_FORMAT"

console = Console()
err_console = Console(stderr=True)


@dataclass
class RunContext:
    """Options given before the command (`bazaar --home H --chain local ...`)."""

    home: Path | None = None
    backend: str | None = None
    rpc_url: str | None = None
    log_format: str | None = None
    _config: BazaarConfig | None = field(default=None, repr=False)
    _passphrase: str | None = field(default=None, repr=False)

    @property
    def config(self) -> BazaarConfig:
        if self._config is None:
            self._config = load_config(self.home, backend=self.backend, rpc_url=self.rpc_url)
        return self._config

    def passphrase(self, *, new: bool = False) -> str:
        """The wallet passphrase: BAZAAR_PASSPHRASE or one prompt, once per command (``new``:
        the prompt asks twice, for a passphrase that encrypts a new wallet)."""
        if self._passphrase is None:
            from agentbazaar.wallet import passphrase_from_env_or_prompt

            self._passphrase = passphrase_from_env_or_prompt(
                lambda text: str(typer.prompt(text, hide_input=True, confirmation_prompt=new))
            )
        return self._passphrase


def run_context(ctx: typer.Context) -> RunContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, RunContext):
        obj = RunContext()
        ctx.find_root().obj = obj
    return obj


def server_logging(ctx: typer.Context) -> None:
    """A server's log on stderr: one line per paid request, settlement and agent event, in the
    format of ``--log-format`` (else ``BAZAAR_LOG_FORMAT``, else ``text``)."""
    from agentbazaar.observe import LOG_FORMATS, configure_logging

    fmt = run_context(ctx).log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
    if fmt not in LOG_FORMATS:
        raise InputError(
            f"unknown log format {fmt!r}: use text or json (--log-format or {LOG_FORMAT_ENV})"
        )
    configure_logging(fmt)


def wallet_name(ctx: typer.Context, given: str | None) -> str:
    """The wallet a command acts for: ``--wallet/-w``, else ``BAZAAR_WALLET``, else
    ``default_wallet`` in bazaar.toml (``bazaar init`` sets it to its first demo wallet)."""
    name = given or os.environ.get(WALLET_ENV) or run_context(ctx).config.default_wallet
    if not name:
        raise InputError(
            f"which wallet? give --wallet NAME, set {WALLET_ENV}, or set default_wallet "
            "in bazaar.toml"
        )
    return name


def open_wallet(ctx: typer.Context, given: str | None) -> Wallet:
    """Unlock the command's wallet (``wallet_name``) with the command's passphrase."""
    from agentbazaar.wallet import KeyStore
    from agentbazaar.wallet import open_wallet as unlock

    rc = run_context(ctx)
    name = wallet_name(ctx, given)
    KeyStore(rc.config.keystore_dir).require(name)  # UnknownWallet before any prompt
    return unlock(rc.config, name, rc.passphrase())


def resolve_target(ctx: typer.Context, target: str) -> str:
    """A 0x address, or a wallet name resolved through the sealed address book."""
    from agentbazaar.chain import to_address
    from agentbazaar.wallet import KeyStore

    if target.startswith("0x"):
        return to_address(target)
    rc = run_context(ctx)
    store = KeyStore(rc.config.keystore_dir)
    store.require(target)  # UnknownWallet before any prompt
    return store.address_of(target, rc.passphrase())


def emit_json(data: Any) -> None:
    """Print machine-readable output on stdout (stable keys, ints stay ints)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def emit_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)


@contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner on stderr while waiting for the chain (silent when stderr is not a terminal)."""
    if err_console.is_terminal:
        with err_console.status(message):
            yield
    else:
        yield
