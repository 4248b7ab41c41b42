"""Sentence -> verified contract on chain, every step shown:

    fill (template + exact parameters) -> balance and policy pre-check -> source -> compile
    -> checks (static, properties) -> simulation of the sentence's own scenario on a copy of
    the chain -> [deploy and fund, each a spend through ``Wallet.spend``] -> verify

``draft`` does everything up to the deployment and signs nothing; ``deploy`` signs only a draft
whose checks and simulation all passed. Refusals (no template, missing or contradictory values,
names that are no wallet, amounts beyond the balance or the policy) raise before anything is
built or signed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3

from agentbazaar.authoring.checks import (
    DEFAULT_EXAMPLES,
    CheckResult,
    compile_check,
    property_checks,
    static_check,
)
from agentbazaar.authoring.extract import Filled, Filler, fill
from agentbazaar.authoring.params import ResolveContext, to_jsonable
from agentbazaar.authoring.records import RecordStore, record_id
from agentbazaar.authoring.sandbox import Sandbox
from agentbazaar.authoring.template import Run, Step
from agentbazaar.authoring.verify import Verification, initcode, verify_record
from agentbazaar.chain import Chain
from agentbazaar.chain.sources import Build, SourceBundle, build, gather
from agentbazaar.errors import BadParameters, BazaarError, CheckFailed, TransactionReverted
from agentbazaar.tokens import TokenRegistry
from agentbazaar.units import format_units
from agentbazaar.wallet import Wallet


@dataclass
class Draft:
    """Everything known before deployment; nothing signed."""

    sentence: str
    filled: Filled
    bundle: SourceBundle
    build: Build
    source_id: str
    record: dict[str, Any]
    checks: list[CheckResult]
    simulation: list[Step]
    spends: list[dict[str, Any]]
    deployer: str
    chain_id: int
    timings: dict[str, float] = field(default_factory=dict)
    model: list[dict[str, Any]] = field(default_factory=list)  # the model's answers, if asked

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and all(s.ok for s in self.simulation)

    def failures(self) -> list[str]:
        bad = [f"check {c.name}: {c.detail}" for c in self.checks if not c.ok]
        return bad + [f"simulation: {s.action}: {s.result}" for s in self.simulation if not s.ok]


@dataclass
class Authored:
    draft: Draft
    address: str | None = None
    tx: str | None = None
    funding: list[dict[str, Any]] = field(default_factory=list)
    verification: Verification | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.draft
        t = d.filled.template
        return {
            "sentence": d.sentence,
            "template": t.name,
            "contract": t.contract,
            "params": to_jsonable(t.params, d.filled.params),
            "param_sources": d.filled.sources,
            "chosen_by": d.filled.chosen_by,
            "model": d.model,
            "source_id": d.source_id,
            "checks": [c.to_dict() for c in d.checks],
            "invariants": t.invariants,
            "simulation": [s.to_dict() for s in d.simulation],
            "spends": d.spends,
            "chain_id": d.chain_id,
            "deployer": d.deployer,
            "address": self.address,
            "tx": self.tx,
            "funding": self.funding,
            "verified": None if self.verification is None else self.verification.verified,
            "verification": None if self.verification is None else self.verification.to_dict(),
            "timings": {k: round(v, 3) for k, v in d.timings.items()},
        }


@dataclass
class Namer:
    """Addresses and amounts in words: wallet names, token symbols."""

    tokens: TokenRegistry
    names: dict[str, str]

    def name(self, address: str) -> str:
        return self.names.get(address.lower(), address)

    def fmt(self, token: str, units: int) -> str:
        try:
            t = self.tokens.get(token)
        except BazaarError:
            return f"{units} base units"
        return f"{format_units(int(units), t.decimals)} {t.symbol}"


# ---- draft -----------------------------------------------------------------------------------
def draft(
    sentence: str,
    *,
    chain: Chain,
    wallet: Wallet,
    ctx: ResolveContext,
    store: RecordStore,
    namer: Namer,
    filler: Filler | None = None,
    examples: int = DEFAULT_EXAMPLES,
    approve: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Draft:
    """Fill, pre-check, build, check and simulate ``sentence`` for ``wallet``; sign nothing."""
    say = progress or (lambda step: None)
    say("template and parameters")
    clock = time.monotonic()
    filled = fill(sentence, ctx, filler=filler)
    filling = time.monotonic() - clock

    def spends(built: Build, args: list[Any]) -> list[dict[str, Any]]:
        funding = filled.template.funding(filled.params)
        return precheck(chain, wallet, funding, built, args, approve)

    d = assess(sentence, filled, chain=chain, deployer=wallet.address, namer=namer, store=store,
               examples=examples, progress=say, precheck=spends)  # fmt: skip
    d.timings["fill_and_build"] += filling
    report = getattr(filler, "report", None)
    d.model = list(report(filled.sentence)) if report is not None else []
    return d


def assess(
    sentence: str,
    filled: Filled,
    *,
    chain: Chain,
    deployer: str,
    namer: Namer,
    store: RecordStore | None = None,
    examples: int = DEFAULT_EXAMPLES,
    progress: Callable[[str], None] | None = None,
    precheck: Callable[[Build, list[Any]], list[dict[str, Any]]] | None = None,
) -> Draft:
    """Source, record, compile, [``precheck`` the spends], checks and the scenario of an
    already filled contract deployed by ``deployer``; signs nothing. Without a ``store`` the
    record is not written (its id is still its content address)."""
    say = progress or (lambda step: None)
    timings: dict[str, float] = {}
    clock = time.monotonic()
    template, params = filled.template, filled.params
    say("source")
    bundle = gather(template.contract)
    args = list(template.constructor(params))
    record = {
        "template": template.name,
        "contract": template.contract,
        "bundle": bundle.to_json(),
        "params": to_jsonable(template.params, params),
        "constructor_args": args,
    }
    source_id = store.put(record) if store is not None else record_id(record)
    say("compile")
    built = build(bundle)
    timings["fill_and_build"] = time.monotonic() - clock
    spends = precheck(built, args) if precheck is not None else []
    say("checks")
    clock = time.monotonic()
    checks = [compile_check(built), static_check(bundle, built)]
    checks += property_checks(
        template, built, params, deployer=deployer, chain=chain, examples=examples,
        fmt=namer.fmt, name=namer.name,
    )  # fmt: skip
    timings["checks"] = time.monotonic() - clock
    say("simulation")
    clock = time.monotonic()
    steps = simulate(chain, filled, built, deployer, namer)
    timings["simulation"] = time.monotonic() - clock
    return Draft(sentence, filled, bundle, built, source_id, record, checks, steps, spends,
                 deployer, chain.chain_id, timings)  # fmt: skip


def simulate(chain: Chain, filled: Filled, built: Build, deployer: str, namer: Namer) -> list[Step]:
    """The sentence's own scenario on a copy of the chain's current state: deployed by the
    deployer, funded from its real balance, time moved, calls made, balances checked."""
    template = filled.template
    box = Sandbox(chain)
    try:
        handle = box.deploy(built, template.constructor(filled.params), sender=deployer)
    except BazaarError as exc:
        return [Step("deploy in the sandbox", "the constructor succeeds", str(exc), False)]
    run = Run(box, handle, dict(filled.params), deployer, fmt=namer.fmt, name=namer.name)
    namer.names.setdefault(handle.address.lower(), "the contract")
    steps = [Step(f"{namer.name(deployer)} deploys {template.title.lower()}",
                  "deployed", f"at {handle.address} (in the sandbox)", True)]  # fmt: skip
    try:
        steps += template.scenario(run)
    except (BazaarError, AssertionError) as exc:
        steps.append(Step("scenario", "runs to the end", f"stopped: {exc}", False))
    return steps


def precheck(
    chain: Chain,
    wallet: Wallet,
    funding: list[tuple[str, int]],
    built: Build,
    args: list[Any],
    approve: bool,
) -> list[dict[str, Any]]:
    """Balance and policy of every spend the deployment needs, before anything is built on:
    the deployment (gas, native) and each funding transfer. Raises on the first refusal."""
    from agentbazaar.authoring.sandbox import ERC20_ABI

    sender = wallet.address
    nonce = int(chain.w3.eth.get_transaction_count(sender, "pending"))
    predicted = _create_address(sender, nonce)
    data = initcode(built, args)
    gas = chain.estimate_gas(
        cast(Any, {"from": sender, "data": data, "value": 0}), action="simulate the deployment"
    )
    fee = chain.fee_params()["maxFeePerGas"]
    spends = [{"kind": "deploy", "token": "native", "amount": str(gas * fee), "to": predicted,
               "gas": gas}]  # fmt: skip
    wallet.check(kind="deploy", token=None, amount=gas * fee, counterparty=predicted,
                 approve=approve, chain_id=chain.chain_id)  # fmt: skip
    native = chain.native_balance(sender)
    if native < gas * fee:
        raise BadParameters(
            f"{wallet.name} has {format_units(native, 18)} ETH; the deployment may cost up to "
            f"{format_units(gas * fee, 18)} ETH in gas"
        )
    for token, amount in funding:
        balance = int(chain.call(chain.contract(token, ERC20_ABI).functions.balanceOf(sender)))
        if balance < amount:
            raise BadParameters(
                f"{wallet.name} holds {balance} base units of {token}; funding the contract "
                f"needs {amount}: nothing was signed"
            )
        wallet.check(kind="transfer", token=token, amount=amount, counterparty=predicted,
                     approve=approve, chain_id=chain.chain_id)  # fmt: skip
        spends.append({"kind": "transfer", "token": token, "amount": str(amount), "to": predicted})
    return spends


def _create_address(sender: str, nonce: int) -> str:
    import rlp

    raw = rlp.encode([bytes(HexBytes(sender)), nonce])
    return to_checksum_address(Web3.keccak(raw)[12:])


# ---- deploy ------------------------------------------------------------------------------------
def deploy(
    d: Draft,
    *,
    chain: Chain,
    wallet: Wallet,
    store: RecordStore,
    tokens: TokenRegistry,
    approve: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Authored:
    """Deploy and fund a draft that passed every check, then verify it. Each transaction is a
    ``Wallet.spend`` (policy, ledger, then key)."""
    if not d.ok:
        raise CheckFailed("not deployed: " + "; ".join(d.failures()), source_id=d.source_id)
    if wallet.address != d.deployer or chain.chain_id != d.chain_id:
        raise BadParameters("the draft was made for another wallet or chain: draft it again")
    say = progress or (lambda step: None)
    say("deploy")
    args = list(d.record["constructor_args"])
    address, tx, receipt = _send_deployment(chain, wallet, initcode(d.build, args), d, approve)
    block = chain.w3.eth.get_block(receipt["blockNumber"])
    store.link(chain.chain_id, address, {
        "source_id": d.source_id, "tx": tx, "deployer": wallet.address,
        "block": int(receipt["blockNumber"]), "timestamp": int(block["timestamp"]),
        "template": d.filled.template.name,
    })  # fmt: skip
    authored = Authored(d, address=address, tx=tx)
    for i, (token, amount) in enumerate(d.filled.template.funding(d.filled.params)):
        say("fund")
        sent = wallet.send(chain, address, amount, tokens.get(token),
                           idempotency_key=f"contract:{d.source_id}:{address}:fund:{i}",
                           approve=approve)  # fmt: skip
        authored.funding.append({"token": token, "amount": str(amount), "tx": sent.tx_hash})
    say("verify")
    authored.verification = verify_record(
        chain, address, d.record, store.deployment(chain.chain_id, address), d.source_id
    )
    return authored


def _send_deployment(
    chain: Chain, wallet: Wallet, init: bytes, d: Draft, approve: bool
) -> tuple[str, str, Any]:
    sender = wallet.address
    fees = chain.fee_params()
    nonce = int(chain.w3.eth.get_transaction_count(sender, "pending"))
    tx: dict[str, Any] = {"data": init, "value": 0, **fees}
    tx["gas"] = chain.estimate_gas(
        cast(Any, {**tx, "from": sender}), action="simulate the deployment"
    )
    # the address the contract gets at the next nonce (the chain's nonce manager signs it; a
    # send racing ours would move it, and the receipt says where it really is)
    predicted = _create_address(sender, nonce)
    with wallet.spend(
        kind="deploy",
        token=None,
        amount=tx["gas"] * fees["maxFeePerGas"],
        counterparty=predicted,
        idempotency_key=f"contract:{d.source_id}:deploy",
        approve=approve,
        memo={"template": d.filled.template.name, "source_id": d.source_id},
        chain_id=chain.chain_id,
    ) as spend:
        if spend.replayed and spend.record.tx_hash:
            tx_hash = HexBytes(spend.record.tx_hash)
            if chain.receipt(tx_hash) is None and spend.record.raw_tx:
                chain.broadcast_raw(bytes(HexBytes(spend.record.raw_tx)))
        else:
            tx_hash = chain.send_nowait(
                wallet.account_for_deploy(), cast(Any, tx), action="deploy the contract",
                on_signed=spend.record_transaction,
            )  # fmt: skip
        try:
            receipt = chain.wait_for_receipt(tx_hash, action="deploy the contract")
        except TransactionReverted as exc:
            spend.fail(f"reverted on chain: {exc.fields.get('reason') or exc}")
            raise
        if spend.record.status != "settled":
            spend.settle(tx_hash=HexBytes(tx_hash).to_0x_hex(), block_number=receipt["blockNumber"])
    address = receipt["contractAddress"]
    if address is None:
        raise BadParameters("the deployment produced no contract address")
    return to_checksum_address(address), HexBytes(tx_hash).to_0x_hex(), receipt
