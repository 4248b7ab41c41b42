"""The checks a contract passes before anything is deployed, as a library (the CLI and tests call
the same functions): compile, static analysis, the template's properties, each with pass/fail.

Properties run under hypothesis against the compiled bytecode deployed with the filled
parameters in a sandbox forked from the current chain (``Sandbox``): each example starts from the
same deployed, funded contract (an anchor undoes it afterwards). Runs are derandomized, so the same
contract and parameters give the same report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentbazaar.authoring.sandbox import Sandbox
from agentbazaar.authoring.static import analyze
from agentbazaar.authoring.template import Property, Run, Template
from agentbazaar.chain import Chain
from agentbazaar.chain.sources import Build, SourceBundle

DEFAULT_EXAMPLES = 25


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "result": "pass" if self.ok else "fail",
            "detail": self.detail,
        }
        if self.data:
            out["data"] = self.data
        out["seconds"] = round(self.seconds, 3)
        return out


def compile_check(build: Build) -> CheckResult:
    size = len(build.runtime)
    ok = 0 < size <= 24_576  # EIP-170
    return CheckResult(
        "compile",
        ok,
        f"vyper {build.bundle_digest[:0]}built: {size} bytes of runtime code"
        + ("" if ok else " (over the 24,576-byte limit)"),
        data={"runtime_bytes": size, "integrity": build.integrity},
    )


def static_check(bundle: SourceBundle, build: Build) -> CheckResult:
    started = time.monotonic()
    report = analyze(bundle, build.warnings)
    bad = [f for f in report.findings if f.allowed is None]
    allowed = [f for f in report.findings if f.allowed is not None]
    if bad:
        detail = "; ".join(f"{f.where}: {f.message}" for f in bad)
    else:
        detail = (
            f"rules passed ({len(allowed)} allowlisted use(s)), "
            f"{len(report.warnings)} compiler warning(s)"
        )
    return CheckResult(
        "static", report.ok, detail, time.monotonic() - started, data=report.to_dict()
    )


def property_checks(
    template: Template,
    build: Build,
    params: Mapping[str, Any],
    *,
    deployer: str,
    chain: Chain | None = None,
    examples: int = DEFAULT_EXAMPLES,
    fmt: Callable[[str, int], str] | None = None,
    name: Callable[[str], str] | None = None,
) -> list[CheckResult]:
    """Every property of ``template`` on the contract built with ``params``, deployed by
    ``deployer`` on a fork of ``chain`` (an empty chain when None) and funded as the template
    says (balances set directly, so the deployer's own balance does not matter here)."""
    box = Sandbox(chain)
    box.fund_native(deployer, 10**20)
    handle = box.deploy(build, template.constructor(params), sender=deployer)
    funding = template.extra.get("sandbox_funding", template.funding)
    for token, amount in funding(params):  # funded once; each example starts here
        box.deal(token, handle.address, box.balance(token, handle.address) + amount)
    run = Run(box, handle, dict(params), deployer)
    if fmt:
        run.fmt = fmt
    if name:
        run.name = name
    return [_run_property(prop, run, examples) for prop in template.properties]


def _run_property(prop: Property, run: Run, examples: int) -> CheckResult:
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def check(data: Any) -> None:
        with run.box.anchor():
            prop.check(run, data.draw)

    started = time.monotonic()
    try:
        check()
    except Exception as exc:  # a failed property: report it with the drawn example
        notes = " ".join(getattr(exc, "__notes__", []))
        detail = f"{prop.statement}: FAILED: {type(exc).__name__}: {exc} {notes}".strip()
        return CheckResult(f"property:{prop.name}", False, detail, time.monotonic() - started)
    return CheckResult(
        f"property:{prop.name}",
        True,
        f"{prop.statement} ({examples} examples)",
        time.monotonic() - started,
    )
