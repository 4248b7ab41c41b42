"""Contract and dataset tools: templates, a contract from a sentence, the dataset registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentbazaar.errors import DataError

if TYPE_CHECKING:
    from agentbazaar.data.registry import DatasetRegistry
    from agentbazaar.tools._toolbox import Toolbox


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContractNewArgs(NoArgs):
    sentence: str = Field(
        min_length=1,
        max_length=2000,
        description="what the contract does, e.g. 'vest 1,000 USDC to bob over 12 months'",
    )
    deploy: bool = Field(False, description="deploy and fund it (else a checked dry run)")
    examples: int = Field(10, ge=1, le=200, description="hypothesis examples per property")


class DataShowArgs(NoArgs):
    cid: str = Field(description="the dataset's CID (bafy... or bafk...)")


def contract_templates(box: Toolbox, args: NoArgs) -> dict[str, Any]:
    from agentbazaar.authoring import TEMPLATES

    return {"templates": [t.summary_dict() for t in TEMPLATES.values()]}


def contract_new(box: Toolbox, args: ContractNewArgs) -> dict[str, Any]:
    from agentbazaar.authoring import Namer, RecordStore, ResolveContext, deploy, draft
    from agentbazaar.authoring.pipeline import Authored
    from agentbazaar.wallet import KeyStore

    chain, wallet, tokens = box.chain, box.wallet(), box.suite.tokens
    keys = KeyStore(box.cfg.keystore_dir)
    names = {address.lower(): name for name, address in keys.wallets(box.passphrase())}
    store = RecordStore(box.cfg.home)
    ctx = ResolveContext(names=wallet.resolve, tokens=tokens, now=chain.timestamp(),
                         me=wallet.address)  # fmt: skip
    d = draft(args.sentence, chain=chain, wallet=wallet, ctx=ctx, store=store,
              namer=Namer(tokens, names), examples=args.examples)  # fmt: skip
    result = Authored(d)
    if d.ok and args.deploy:
        result = deploy(d, chain=chain, wallet=wallet, store=store, tokens=tokens)
    return {**result.to_dict(), "deployed": bool(d.ok and args.deploy), "ok": d.ok}


def data_licences(box: Toolbox, args: NoArgs) -> dict[str, Any]:
    from agentbazaar.data.licences import TEMPLATES

    return {
        "licences": [
            {"id": i, **t.terms(), "termsHash": "0x" + t.terms_hash.hex()}
            for i, t in enumerate(TEMPLATES, 1)
        ]
    }


def _registry(box: Toolbox) -> DatasetRegistry:
    from agentbazaar.data.registry import REGISTRY_KEY, DatasetRegistry

    if not box.suite.has(REGISTRY_KEY):
        raise DataError("the dataset registry is not deployed on this chain (bazaar deploy)")
    return DatasetRegistry.from_suite(box.suite)


def data_list(box: Toolbox, args: NoArgs) -> dict[str, Any]:
    registry = _registry(box)
    return {"datasets": [registry.dataset(i).to_dict() for i in range(1, registry.count() + 1)]}


def data_show(box: Toolbox, args: DataShowArgs) -> dict[str, Any]:
    from agentbazaar.data.cid import Cid
    from agentbazaar.data.lineage import walk

    registry = _registry(box)
    entry = registry.by_cid(Cid.parse(args.cid))
    described = walk(args.cid, registry, box.suite.token_contract(entry.token))["datasets"]
    return {"dataset": next(d for d in described if d["id"] == entry.id)}
