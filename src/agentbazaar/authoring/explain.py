"""What a verified contract does, in plain words: facts from its template, its recorded
parameters and its state on chain now. ``prose.in_words`` may have a language model rephrase
those facts (checked: it adds none); otherwise the template's own sentences are the prose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from agentbazaar.authoring.params import from_jsonable
from agentbazaar.authoring.pipeline import Namer
from agentbazaar.authoring.prose import parameters_in_words
from agentbazaar.authoring.records import RecordStore
from agentbazaar.authoring.sandbox import ERC20_ABI, Handle
from agentbazaar.authoring.template import Run
from agentbazaar.authoring.templates import TEMPLATES
from agentbazaar.authoring.verify import verify_address
from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.sources import SourceBundle, build
from agentbazaar.errors import NotVerified
from agentbazaar.units import format_units


def explain(chain: Chain, store: RecordStore, address: str, namer: Namer) -> dict[str, Any]:
    """Verify ``address`` against its record, then describe it; refuses what does not verify."""
    addr = to_address(address)
    verification = verify_address(chain, store, addr)
    if not verification.verified:
        raise NotVerified(
            f"{addr} does not match its record ({'; '.join(verification.reasons)}): not explained"
        )
    record = store.get(verification.source_id)
    template = TEMPLATES.get(str(record["template"]))
    if template is None:
        raise NotVerified(f"record names an unknown template {record['template']!r}")
    params = from_jsonable(template.params, record["params"])
    abi = build(SourceBundle.from_json(record["bundle"])).abi
    state = read_state(chain, addr, abi, template.state, params)
    deployment = store.deployment(chain.chain_id, addr)
    namer.names.setdefault(addr.lower(), "the contract")
    run = Run(cast(Any, None), Handle(addr, abi), dict(params), str(deployment["deployer"]),
              fmt=namer.fmt, name=namer.name)  # fmt: skip
    return {
        "address": addr,
        "template": template.name,
        "title": template.title,
        "summary": template.summary,
        "params": record["params"],
        "parameters_in_words": parameters_in_words(
            template.params, params, namer.name, _amounts(template.name, params, namer)
        ),
        "state": {k: str(v) for k, v in state.items()},
        "facts": template.describe(params, state, run),
        "invariants": template.invariants,
        "verification": verification.to_dict(),
    }


def _amounts(template: str, params: dict[str, Any], namer: Namer) -> Callable[[int], str]:
    """How this contract's amounts read: in its token, or (a capped token) in its own units."""
    if params.get("token"):
        return lambda units: namer.fmt(str(params["token"]), units)
    decimals, symbol = int(params.get("decimals") or 0), str(params.get("symbol") or "units")
    return lambda units: f"{format_units(units, decimals)} {symbol}"


def read_state(
    chain: Chain,
    address: str,
    abi: list[dict[str, Any]],
    views: tuple[str, ...],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The template's state views (arguments taken from the parameters by name), and what the
    contract holds of its token."""
    contract = chain.contract(address, abi)
    state: dict[str, Any] = {}
    for name in views:
        entry = next(e for e in abi if e.get("type") == "function" and e.get("name") == name)
        args = [params[i["name"]] for i in entry["inputs"]]
        state[name] = chain.call(contract.functions[name](*args))
    if params.get("token"):
        token = chain.contract(str(params["token"]), ERC20_ABI)
        state["held"] = chain.call(token.functions.balanceOf(address))
    return state
