"""The template catalog: each module defines one ``TEMPLATE`` (source, schema, properties,
scenario, parser, facts). Order is the order templates are listed and tried."""

from __future__ import annotations

from agentbazaar.authoring.template import Template
from agentbazaar.authoring.templates import (
    escrow,
    splitter,
    stream,
    timelock,
    token,
    vault,
    vesting,
)

TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        vesting.TEMPLATE,
        splitter.TEMPLATE,
        escrow.TEMPLATE,
        stream.TEMPLATE,
        vault.TEMPLATE,
        token.TEMPLATE,
        timelock.TEMPLATE,
    )
}

__all__ = ["TEMPLATES"]
