"""What a contract template is: fixed Vyper source, a parameter schema, invariants written down as
properties, the sentence's own scenario, and the facts ``explain`` reads back.

The source of a template never changes with the user's input: parameters are constructor
arguments only. A filler chooses a template and fills its schema; it never writes code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentbazaar.authoring.params import Param, json_schema
from agentbazaar.authoring.sandbox import Handle, Sandbox

Draw = Callable[[Any], Any]  # hypothesis ``data.draw``


@dataclass
class Run:
    """One deployed copy of a template in a sandbox, with what its checks need."""

    box: Sandbox
    contract: Handle
    params: dict[str, Any]
    deployer: str
    fmt: Callable[[str, int], str] = lambda token, units: f"{units} units"
    name: Callable[[str], str] = lambda address: address

    def amount(self, units: int) -> str:
        return self.fmt(str(self.params.get("token") or ""), units)


@dataclass(frozen=True)
class Property:
    """An invariant, stated in words and checked by ``check(run, draw)`` for drawn inputs."""

    name: str
    statement: str
    check: Callable[[Run, Draw], None]


@dataclass(frozen=True)
class Step:
    """One step of a simulated scenario: what was done, what was expected, what happened."""

    action: str
    expect: str
    result: str
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "expect": self.expect, "result": self.result, "ok": self.ok}


@dataclass(frozen=True)
class Template:
    name: str
    contract: str  # e.g. "templates/LinearVesting"
    title: str
    summary: str
    params: tuple[Param, ...]
    keywords: tuple[str, ...]
    examples: tuple[str, ...]
    constructor: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    properties: tuple[Property, ...]
    scenario: Callable[[Run], list[Step]]
    parse: Callable[[str], dict[str, Any] | None]
    describe: Callable[[Mapping[str, Any], Mapping[str, Any], Run | None], list[str]]
    validate: Callable[[Mapping[str, Any], int], None] = lambda params, now: None
    funding: Callable[[Mapping[str, Any]], list[tuple[str, int]]] = lambda params: []
    state: tuple[str, ...] = ()  # views read for ``explain``
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def invariants(self) -> list[str]:
        return [p.statement for p in self.properties]

    def schema(self) -> dict[str, Any]:
        """The JSON schema a filler answers in (values as written; see ``params``)."""
        return json_schema(self.params)

    def summary_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "contract": self.contract,
            "title": self.title,
            "summary": self.summary,
            "params": [
                {"name": p.name, "kind": p.kind.value, "description": p.description,
                 "required": p.required and p.default is None}
                for p in self.params
            ],
            "invariants": self.invariants,
            "examples": list(self.examples),
            "schema": self.schema(),
        }  # fmt: skip


def expect(cond: bool, message: str) -> None:
    """A property's assertion (a failed one is reported with the drawn example)."""
    if not cond:
        raise AssertionError(message)
