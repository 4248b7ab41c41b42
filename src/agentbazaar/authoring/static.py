"""Static check of a build: the compiler's own warnings plus a small rule set over its annotated
AST (the Vyper compiler's Python API, every imported module included).

Rules:
- ``raw_call``, ``raw_call(..., is_delegate_call=True)`` (delegatecall) and ``selfdestruct``
  appear only where the allowlist names them (module, function, what), e.g. snekmate's
  timelock executing a scheduled call;
- no loop over caller input (a function argument, or ``range`` of one) whose bound is more than
  ``MAX_LOOP`` iterations: Vyper bounds every loop, and this keeps the bound small enough that
  no caller can make a call run out of gas.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentbazaar.chain.sources import SourceBundle, materialize

MAX_LOOP = 256
FORBIDDEN = ("raw_call", "delegatecall", "selfdestruct")
# (module path, function, what) that may use a forbidden builtin, and why
ALLOWLIST: dict[tuple[str, str, str], str] = {
    ("snekmate/governance/timelock_controller.vy", "_execute", "raw_call"): (
        "a timelock's purpose is to make the call its proposers scheduled, after the delay"
    ),
}


@dataclass(frozen=True)
class Finding:
    rule: str
    where: str  # module:function:line
    message: str
    allowed: str | None = None  # why it is accepted, when allowlisted

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "where": self.where, "message": self.message,
                "allowed": self.allowed}  # fmt: skip


@dataclass
class StaticReport:
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.allowed is not None for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "compiler_warnings": list(self.warnings),
        }


def analyze(bundle: SourceBundle, compiler_warnings: tuple[str, ...] = ()) -> StaticReport:
    """Run the rule set over every module of ``bundle``."""
    report = StaticReport(warnings=list(compiler_warnings))
    for module_path, module in _modules(bundle):
        for fn in _functions(module):
            report.findings.extend(_check_function(module_path, fn))
    return report


def _modules(bundle: SourceBundle) -> Iterator[tuple[str, Any]]:
    from vyper.compiler.input_bundle import FileInput, FilesystemInputBundle
    from vyper.compiler.phases import CompilerData
    from vyper.compiler.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bazaar-static-") as tmp:
        root = Path(tmp)
        target = materialize(bundle, root)
        file_input = FileInput(
            contents=target.read_text(),
            source_id=-1,
            path=Path(bundle.target),
            resolved_path=target,
        )
        data = CompilerData(
            file_input,
            FilesystemInputBundle([root]),
            Settings(evm_version=bundle.settings["evm_version"]),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            top = data.annotated_vyper_module
        seen: set[int] = set()
        todo = [(bundle.target, top)]
        while todo:
            path, module = todo.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield path, module
            for info in module._metadata["type"].imported_modules.values():
                sub = info.module_t._module
                todo.append((_rel(Path(sub.resolved_path), root), sub))


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _functions(module: Any) -> Iterator[Any]:
    from vyper import ast as vy_ast

    yield from module.get_children(vy_ast.FunctionDef)


def _check_function(module_path: str, fn: Any) -> list[Finding]:
    from vyper import ast as vy_ast

    out: list[Finding] = []
    args = {a.arg for a in fn.args.args}
    for call in fn.get_descendants(vy_ast.Call):
        what = _forbidden(call)
        if what:
            where = f"{module_path}:{fn.name}:{call.lineno}"
            allowed = ALLOWLIST.get((module_path, fn.name, what))
            out.append(Finding("forbidden-builtin", where, f"uses {what}", allowed))
    for loop in fn.get_descendants(vy_ast.For):
        bound = _caller_loop_bound(loop, args)
        if bound is not None and bound > MAX_LOOP:
            where = f"{module_path}:{fn.name}:{loop.lineno}"
            out.append(
                Finding("unbounded-loop", where, f"loops up to {bound} times over caller input")
            )
    return out


def _forbidden(call: Any) -> str | None:
    from vyper import ast as vy_ast

    if not isinstance(call.func, vy_ast.Name):
        return None
    name = call.func.id
    if name == "selfdestruct":
        return "selfdestruct"
    if name != "raw_call":
        return None
    for kw in call.keywords:
        if kw.arg == "is_delegate_call" and getattr(kw.value, "value", False) is True:
            return "delegatecall"
    return "raw_call"


def _caller_loop_bound(loop: Any, args: set[str]) -> int | None:
    """The bound of a loop over a function argument (or range of one), else None."""
    from vyper import ast as vy_ast

    it = loop.iter
    names = {n.id for n in it.get_descendants(vy_ast.Name, include_self=True)}
    if not names & args:
        return None
    if isinstance(it, vy_ast.Call) and getattr(it.func, "id", None) == "range":
        for kw in it.keywords:
            if kw.arg == "bound":
                return int(kw.value.get_folded_value().value)
        return None  # range over constants only
    typ = it._metadata.get("type")
    length = getattr(typ, "length", None) or getattr(typ, "count", None)
    return int(length) if length is not None else None
