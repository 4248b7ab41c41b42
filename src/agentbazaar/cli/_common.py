"""What every command shares: the run context (config, output mode), output helpers, errors."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
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
    sys.stdout.write(json_text(data) + "\n")


def json_text(data: Any) -> str:
    """``data`` as the CLI's JSON: stable keys; bytes as 0x hex, sets as sorted lists, enums
    as their values, any other object as its text (a path, a decimal), never a Python repr."""
    return json.dumps(data, indent=2, sort_keys=True, default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, Enum):
        return value.value
    return str(value)


_HASH = re.compile(r"0x[0-9a-fA-F]{41,}")  # longer than an address: a hash, a receipt id, ...
_WHOLE = re.compile(  # never cut in a table: addresses, shortened hashes, URLs
    r"0x[0-9a-fA-F]{40}|0x[0-9a-fA-F]{8}…[0-9a-fA-F]{8}|https?://\S+"
)
_FOLDED_MIN = 8  # narrowest a foldable column gets before a table is shown as records


def short_hash(value: str) -> str:
    """A hash as tables show it: ``0x1234abcd…9f8e7d6c`` (the first and last 8 hex digits); any
    other value (an address, a name, an amount) unchanged. ``--json`` keeps the whole hash."""
    if _HASH.fullmatch(value):
        return f"{value[:10]}…{value[-8:]}"
    return value


def emit_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    out: Console | None = None,
) -> None:
    """A table on ``out`` (stdout by default): hashes shortened (``short_hash``); addresses,
    shortened hashes and URLs never cut; other long cells folded onto more lines. A table too wide for
    the terminal even so is shown as records (one ``field  value`` line per cell)."""
    out = out or console
    cells = [[short_hash(str(c)) for c in row] for row in rows]
    whole = [
        max((len(row[i]) for row in cells if _WHOLE.fullmatch(row[i])), default=0)
        for i in range(len(columns))
    ]
    if _narrowest(columns, cells, whole) > out.width:
        out.print(_records(title, columns, cells))
        return
    table = Table(title=title, title_justify="left")
    for col, width in zip(columns, whole, strict=True):
        if width:
            table.add_column(col, no_wrap=True, min_width=width)
        else:
            table.add_column(col, overflow="fold")
    for row in cells:
        table.add_row(*row)
    out.print(table)


def _narrowest(columns: Sequence[str], cells: list[list[str]], whole: list[int]) -> int:
    """The width a table needs with its whole cells whole and the other columns folded."""
    widths = []
    for i, col in enumerate(columns):
        longest = max([len(col), *(len(row[i]) for row in cells)])
        widths.append(max(whole[i], min(longest, _FOLDED_MIN)))
    return sum(widths) + 3 * len(columns) + 1  # one space each side, one border between


def _records(title: str, columns: Sequence[str], cells: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for row in cells:
        for i, (col, value) in enumerate(zip(columns, row, strict=True)):
            table.add_row(col, value, end_section=i == len(columns) - 1)
    return table


@contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner on stderr while waiting for the chain (silent when stderr is not a terminal)."""
    if err_console.is_terminal:
        with err_console.status(message):
            yield
    else:
        yield
