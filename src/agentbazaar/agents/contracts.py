"""The contract-author skill: an agent sells a contract written from a sentence.

A buyer posts ``{"sentence": "...", "deployer": "0x...", "names": {"bob": "0x...", ...}}``
(``names``: the wallet names the sentence uses, as the buyer's address book resolves them;
``deployer``: who will deploy, so amounts and "me" resolve to the buyer, not to the seller).
The seller runs the same pipeline as ``bazaar contract new`` up to, not including, deployment
(``authoring.fill`` then ``authoring.assess``: template and exact parameters, source, compile,
the static and property checks, the sentence's own scenario simulated on a copy of the
seller's chain) and delivers, for a fixed price per contract:

- ``record``: what ``bazaar contract verify`` rebuilds from (template, every source, the
  compiler settings, parameters, constructor arguments); ``source_id`` its content address;
- ``build``: abi, init code and runtime code as compiled;
- ``report``: the checks and the simulation steps, each with pass/fail;
- ``params``: the exact parameters (base units, seconds, addresses) and where each came from;
- ``receipt``: a ``ContractReceipt`` signed by the seller binding all of the above
  (``delivery_hashes``), checked by the buyer with ``check_contract_delivery``.

Free-form code is never delivered: a sentence no template covers, a value missing or
ambiguous, a name the buyer did not give is refused before payment (the quote runs the
template's parser; the paid call refuses before any receipt, and the paywall settles only what
was delivered), and a failing check or simulation is delivered as such, with ``passed`` false in
the signed receipt. Deploying stays the buyer's act, a spend through its own wallet.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.protocol import CONTRACT_SKILL
from agentbazaar.agents.receipts import (
    ContractReceipt,
    SignedReceipt,
    input_hash,
    recover_signer,
    sign_receipt,
)
from agentbazaar.agents.skills import Payment
from agentbazaar.authoring import Filled, Filler, Namer, ResolveContext, assess, choose, fill
from agentbazaar.authoring.checks import DEFAULT_EXAMPLES
from agentbazaar.authoring.params import to_jsonable
from agentbazaar.errors import AddressError, InputError
from agentbazaar.identity.cards import canonical_json
from agentbazaar.identity.errors import CardError
from agentbazaar.primitives import parse_address
from agentbazaar.tokens import NATIVE, TokenRegistry

if TYPE_CHECKING:
    from agentbazaar.agents.runtime import Agent

HASHED = ("record", "sources", "build", "report", "params")  # the receipt's hashes, in order
MAX_NAMES = 16


@dataclass(frozen=True)
class ContractRequest:
    sentence: str
    deployer: str
    names: dict[str, str]  # lower-case name -> checksummed address

    @classmethod
    def parse(cls, payload: Any) -> ContractRequest:
        if not isinstance(payload, dict) or not isinstance(payload.get("sentence"), str):
            raise InputError(
                'a contract request is {"sentence": "...", "deployer": "0x...", '
                '"names": {"bob": "0x..."}}'
            )
        try:
            deployer = parse_address(payload.get("deployer"))
        except AddressError as exc:
            raise InputError("deployer: the address that will deploy the contract (0x...)") from exc
        names = payload.get("names") or {}
        if not isinstance(names, dict) or len(names) > MAX_NAMES:
            raise InputError(f"names: at most {MAX_NAMES} wallet names mapped to addresses")
        book: dict[str, str] = {}
        for name, address in names.items():
            try:
                book[str(name).lower()] = parse_address(address)
            except AddressError as exc:
                raise InputError(f"names: {name!r} must map to a 0x address") from exc
        return cls(payload["sentence"], deployer, book)

    @classmethod
    def for_sentence(
        cls, sentence: str, deployer: str, wallets: Iterable[tuple[str, str]]
    ) -> ContractRequest:
        """The request a buyer sends for ``sentence``: ``deployer`` deploys, and of its
        address book ``wallets`` (name, address) only the names the sentence uses travel."""
        words = {w.strip(".") for w in re.findall(r"[a-z0-9_.-]+", sentence.lower())}
        names = {name: address for name, address in wallets if name.lower() in words}
        return cls.parse({"sentence": sentence, "deployer": deployer, "names": names})

    def to_json(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "deployer": self.deployer, "names": self.names}

    def resolve(self, name: str) -> str:
        address = self.names.get(name.lower())
        if address is None:
            raise InputError(f"{name!r} is no wallet in the request's names: add it")
        return address


class ContractAuthorSkill:
    """Contracts from a sentence, priced per contract, with signed receipts (module doc)."""

    id = CONTRACT_SKILL
    name = "Contract author (fixed templates, checked and simulated)"
    description = (
        "A sentence becomes a Vyper contract from a fixed template: source, build, property "
        "and static checks, the sentence's scenario simulated, a signed receipt"
    )
    unit = "contract"

    def __init__(
        self, price: int, *, filler: Filler | None = None, examples: int = DEFAULT_EXAMPLES
    ) -> None:
        if price <= 0:
            raise InputError("the price per contract must be positive")
        self.unit_price = price
        self.filler = filler
        self.examples = examples
        self.tags = ["contracts", "vyper", "templates", "verifiable"]

    def quote(self, payload: Any) -> tuple[int, int, str]:
        """(price, 1 contract, request hash) of a well-formed request whose sentence a
        template's parser recognises (without a filler, the only way one is chosen). What is
        refused later (a value missing, a name not given) is refused by ``perform`` before any
        receipt, and the paywall settles nothing for a refused request."""
        request = ContractRequest.parse(payload)
        if self.filler is None:
            choose(request.sentence)  # NoTemplate: refused before any payment is asked for
        return self.unit_price, 1, request_hash(request)

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]:
        request = ContractRequest.parse(payload)
        tokens = TokenRegistry([NATIVE, agent.token])
        ctx = ResolveContext(names=request.resolve, tokens=tokens,
                             now=agent.chain.timestamp(), me=request.deployer)  # fmt: skip
        filled = fill(request.sentence, ctx, filler=self.filler)
        namer = Namer(tokens, {a.lower(): n for n, a in request.names.items()})
        d = assess(request.sentence, filled, chain=agent.chain, deployer=request.deployer,
                   namer=namer, examples=self.examples)  # fmt: skip
        delivery = {
            "template": filled.template.name,
            "source_id": d.source_id,
            "record": d.record,
            "sources": d.bundle.to_json(),
            "build": d.build.to_json(),
            "report": {"checks": [_check(c.to_dict()) for c in d.checks],
                       "simulation": [s.to_dict() for s in d.simulation]},
            "params": _params(filled),
            "passed": d.ok,
        }  # fmt: skip
        signed = sign_receipt(agent.signer, self._receipt(agent, request, delivery, payment),
                              agent.chain.chain_id)  # fmt: skip
        texts = [canonical_json(request.to_json()).decode()]
        agent.receipts.add(signed, role="issued", texts=texts, output=canonical_json(delivery))
        return {**delivery, "receipt": signed.to_json()}

    def _receipt(
        self, agent: Agent, request: ContractRequest, delivery: Mapping[str, Any], payment: Payment
    ) -> ContractReceipt:
        hashes = delivery_hashes(delivery)
        model = getattr(self.filler, "model_id", None) if self.filler is not None else None
        return ContractReceipt(
            provider_agent_id=agent.require_agent_id(),
            provider=agent.address,
            model_id=str(model) if model else "deterministic",
            weights_hash="0x" + "00" * 32,
            input_hash=request_hash(request),
            output_hash=_joined(hashes),
            asset=agent.token.address or "",
            price=payment.amount,
            payment_ref=payment.nonce,
            timestamp=int(time.time()),
            template=str(delivery["template"]),
            record_id=hashes["record"],
            source_hash=hashes["sources"],
            build_hash=hashes["build"],
            report_hash=hashes["report"],
            params_hash=hashes["params"],
            passed=bool(delivery["passed"]),
        )


def _check(doc: dict[str, Any]) -> dict[str, Any]:
    """A check as delivered: its result, without its run time (a float, and no fact)."""
    return {k: v for k, v in doc.items() if k != "seconds"}


def _params(filled: Filled) -> dict[str, Any]:
    t = filled.template
    return {"values": to_jsonable(t.params, filled.params), "sources": dict(filled.sources),
            "chosen_by": filled.chosen_by}  # fmt: skip


def request_hash(request: ContractRequest) -> str:
    """The receipt's inputHash of a contract request (texts = its canonical JSON)."""
    return input_hash([canonical_json(request.to_json()).decode()])


def _sha(doc: Any) -> str:
    return "0x" + hashlib.sha256(canonical_json(doc)).hexdigest()


def delivery_hashes(delivery: Mapping[str, Any]) -> dict[str, str]:
    """sha256 (0x-hex) of the canonical JSON of each delivered part, keyed as ``HASHED``."""
    return {part: _sha(delivery[part]) for part in HASHED}


def _joined(hashes: Mapping[str, str]) -> str:
    return _sha([hashes[p] for p in HASHED])


@dataclass(frozen=True)
class SaleTerms:
    """What a buyer knows of its purchase without the receipt (``receipts.Expected``'s terms):
    the request it posted, the provider's agent id, the asset, its maximum, what it paid and
    the payment's nonce."""

    request: Any
    provider_agent_id: int
    asset: str
    max_price: int
    price: int
    payment_ref: str


def check_contract_delivery(
    signed: SignedReceipt,
    delivery: Mapping[str, Any],
    *,
    provider: str,
    chain_id: int,
    terms: SaleTerms | None = None,
) -> ContractReceipt:
    """The buyer's check: signed by ``provider`` for ``chain_id``, every hash (and the
    template and pass/fail) matches what was delivered and, with ``terms``, the receipt is for
    this request, this provider, this payment and price; ``BadReceipt`` names the first field
    that does not."""
    r = signed.receipt
    if not isinstance(r, ContractReceipt):
        raise BadReceipt("not a contract receipt", field="kind")
    if signed.chain_id != chain_id:
        raise BadReceipt("receipt signed for another chain", field="chainId")
    if recover_signer(signed).lower() != provider.lower() or r.provider.lower() != provider.lower():
        raise BadReceipt("receipt not signed by the provider", field="signature")
    try:
        hashes = delivery_hashes(delivery)
    except KeyError as exc:
        raise BadReceipt(f"the delivery has no {exc.args[0]}", field=str(exc.args[0])) from exc
    except CardError as exc:  # not canonical JSON (e.g. a float)
        raise BadReceipt(f"the delivery is not canonical JSON: {exc}", field="delivery") from exc
    fields = {"record_id": "record", "source_hash": "sources", "build_hash": "build",
              "report_hash": "report", "params_hash": "params"}  # fmt: skip
    for key, part in fields.items():
        if getattr(r, key).lower() != hashes[part]:
            raise BadReceipt(f"receipt field {key} does not match the delivered {part}", field=key)
    if r.output_hash.lower() != _joined(hashes):
        raise BadReceipt("receipt field output_hash does not match", field="output_hash")
    if r.template != delivery.get("template") or r.passed is not delivery.get("passed"):
        raise BadReceipt("receipt template or pass/fail differs from the delivery", field="passed")
    if terms is not None:
        _check_terms(r, terms)
    return r


def _check_terms(r: ContractReceipt, terms: SaleTerms) -> None:
    checks: list[tuple[str, bool]] = [
        ("provider_agent_id", r.provider_agent_id == terms.provider_agent_id),
        ("input_hash", r.input_hash.lower() == request_hash(ContractRequest.parse(terms.request))),
        ("asset", r.asset.lower() == terms.asset.lower()),
        ("price", 0 <= r.price <= terms.max_price and r.price == terms.price),
        ("payment_ref", r.payment_ref.lower() == terms.payment_ref.lower()),
    ]
    for name, ok in checks:
        if not ok:
            raise BadReceipt(f"receipt field {name} does not match the purchase", field=name)
