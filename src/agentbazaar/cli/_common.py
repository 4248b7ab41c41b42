"""What every command shares: the run context (config, output mode), output helpers, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from agentbazaar.config import BazaarConfig, load_config

console = Console()
err_console = Console(stderr=True)


@dataclass
class RunContext:
    """Options given before the command (`bazaar --home H --chain local ...`)."""

    home: Path | None = None
    backend: str | None = None
    rpc_url: str | None = None
    _config: BazaarConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> BazaarConfig:
        if self._config is None:
            self._config = load_config(self.home, backend=self.backend, rpc_url=self.rpc_url)
        return self._config


def run_context(ctx: typer.Context) -> RunContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, RunContext):
        obj = RunContext()
        ctx.find_root().obj = obj
    return obj


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
