"""Imports run one way: a lower layer never imports a higher one (docs/ARCHITECTURE.md).

Every module of ``src/agentbazaar`` is parsed with ``ast`` (runtime and ``TYPE_CHECKING``
imports alike: a type-only import is still a dependency of the design) and mapped to its layer:

    0 foundations  errors, units, primitives, config, loopback, web, observe, sqlite (the package
                   root)
    1 chain        chain, tokens (token registry over deployment manifests), suite (the
                   deployed suite read at run time)
    2 wallet
    3 identity, payments, channels, dex, models, data, jobs
    4 agents, intents, authoring, deployment (the suite's list of the contracts of layer 3)
    5 cli, testing, tools (the product as one catalog of tools: MCP and framework faces),
      dashboard (the web page over the data directory and the chain)

A module may import its own layer or lower ones. ``KNOWN_BACKWARD`` lists every arrow that runs
up today, each with the reason it is still there: the test fails on a new one, and also on a
listed one that is gone (delete its line), so the list only shrinks. The same holds for
``KNOWN_PRIVATE``: a module reaching into another package's private (``_name``) module.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "agentbazaar"

LAYERS: dict[str, int] = {
    "": 0,  # agentbazaar/__init__.py
    "errors": 0,
    "units": 0,
    "primitives": 0,
    "config": 0,
    "loopback": 0,
    "web": 0,
    "observe": 0,
    "sqlite": 0,
    "chain": 1,
    "tokens": 1,
    "suite": 1,
    "wallet": 2,
    "identity": 3,
    "payments": 3,
    "channels": 3,
    "dex": 3,
    "models": 3,
    "data": 3,
    "jobs": 3,
    "agents": 4,
    "authoring": 4,
    "intents": 4,
    "deployment": 4,
    "cli": 5,
    "testing": 5,
    "tools": 5,
    "dashboard": 5,
}

# (importer, imported) -> why it is still there. Shrinks to nothing.
KNOWN_BACKWARD: dict[tuple[str, str], str] = {}

# (importer, private module of another package) -> why. Shrinks to nothing.
KNOWN_PRIVATE: dict[tuple[str, str], str] = {
    ("agentbazaar.testing.signers", "agentbazaar.channels._crypto"): (
        "the kit signs vouchers as a raw key holder, which the library only does inside "
        "Wallet.spend, so the digests stay private to channels"
    ),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """The agentbazaar modules that module ``name`` (its ``source``) imports; ``from pkg import
    sub`` counts ``pkg.sub`` when ``sub`` is a module."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            for alias in node.names:
                if _is_module(f"{base}.{alias.name}"):
                    found.add(f"{base}.{alias.name}")
    return {m for m in found if m == "agentbazaar" or m.startswith("agentbazaar.")}


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    assert top in LAYERS, f"{module}: put agentbazaar.{top} in a layer (LAYERS, ARCHITECTURE.md)"
    return LAYERS[top]


def _package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def all_imports() -> list[tuple[str, str]]:
    arrows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        imported = imports_of(path.read_text(), importer, is_package=path.name == "__init__.py")
        arrows.extend((importer, target) for target in sorted(imported))
    return arrows


def backward_arrows() -> set[tuple[str, str]]:
    return {(a, b) for a, b in all_imports() if layer_of(b) > layer_of(a)}


def private_reaches() -> set[tuple[str, str]]:
    return {
        (a, b)
        for a, b in all_imports()
        if any(part.startswith("_") for part in b.split(".")[2:])
        and _package_of(a) != _package_of(b)
    }


def test_every_module_is_in_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_lower_layers_never_import_higher_ones() -> None:
    found = backward_arrows()
    new = sorted(found - KNOWN_BACKWARD.keys())
    gone = sorted(KNOWN_BACKWARD.keys() - found)
    assert not new, f"imports that run up the layers: {new}"
    assert not gone, f"fixed, delete from KNOWN_BACKWARD: {gone}"


def test_no_module_reaches_into_another_packages_private_modules() -> None:
    found = private_reaches()
    new = sorted(found - KNOWN_PRIVATE.keys())
    gone = sorted(KNOWN_PRIVATE.keys() - found)
    assert not new, f"private modules used from another package (make the piece public): {new}"
    assert not gone, f"fixed, delete from KNOWN_PRIVATE: {gone}"


def test_the_checker_sees_relative_type_only_and_submodule_imports() -> None:
    """The checker itself: an upward arrow hidden in each import form is found."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..wallet import Wallet\n"
        "from agentbazaar import cli\n"
        "if TYPE_CHECKING:\n"
        "    import agentbazaar.agents.runtime\n"
    )
    upward = {"agentbazaar.wallet", "agentbazaar.cli", "agentbazaar.agents.runtime"}
    assert upward <= imports_of(source, "agentbazaar.chain.probe")
    assert all(layer_of(m) > layer_of("agentbazaar.chain.probe") for m in upward)


def _without_type_checking(tree: ast.Module) -> ast.Module:
    """``tree`` without its ``if TYPE_CHECKING:`` blocks (type-only imports run nothing)."""

    class Strip(ast.NodeTransformer):
        def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt] | None:
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                return node.orelse or None
            self.generic_visit(node)
            return node

    return ast.fix_missing_locations(Strip().visit(tree))


def run_time_graph() -> dict[str, set[str]]:
    """module -> the modules it imports when it runs (at import or inside a function), not
    counting type-only imports nor a package's ``__init__`` (which re-exports its modules)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        tree = _without_type_checking(ast.parse(path.read_text(), name))
        imported = imports_of(ast.unparse(tree), name, is_package=path.name == "__init__.py")
        graph[name] = {m for m in imported if m != name and not _is_package(m)}
    return graph


def _is_package(dotted: str) -> bool:
    return (SRC.joinpath(*dotted.split(".")) / "__init__.py").is_file()


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in graph), None)
            if child is not None and child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child is not None:
                if child in stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = stack[stack.index(node) :]
                    del stack[stack.index(node) :]
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_modules_do_not_import_each_other_in_a_circle() -> None:
    """A circle (runtime -> hiring -> runtime) hides a piece both sides need: make it public in
    a module of its own (as ``agents.protocol``)."""
    assert cycles(run_time_graph()) == []


def test_the_cycle_finder_finds_a_circle_through_function_level_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from agentbazaar.agents.runtime import Agent\n"
    tree = _without_type_checking(ast.parse(source))
    assert imports_of(ast.unparse(tree), "agentbazaar.agents.hiring") == {
        "agentbazaar.agents.runtime"
    }
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import agentbazaar.wallet\n"
    assert imports_of(ast.unparse(_without_type_checking(ast.parse(typed))), "x.y") == set()
