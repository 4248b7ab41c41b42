"""Contract, dataset and job tools: templates, a contract from a sentence, the dataset registry,
escrowed jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentbazaar.errors import DataError

if TYPE_CHECKING:
    from agentbazaar.data.registry import DatasetRegistry
    from agentbazaar.jobs import JobInfo, JobMarket
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


class JobCreateArgs(NoArgs):
    provider: str = Field(description="who does the work: a wallet name or a 0x address")
    evaluator: str = Field(description="who accepts or rejects it: a wallet name or address")
    budget: str = Field(description="what the job pays, e.g. '5 USDC' (escrowed when funded)")
    expires: str = Field(description="from now: 90s, 15m, 2h, 3d")
    description: str = Field("", max_length=2000, description="what the job is")
    partial: bool = Field(False, description="the evaluator may pay in proportion")


class JobListArgs(NoArgs):
    involving: str | None = Field(
        None, description="only jobs with this wallet name or address as a party"
    )


class JobShowArgs(NoArgs):
    job_id: int = Field(ge=1, description="the job's id")


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


def _market(box: Toolbox) -> JobMarket:
    from agentbazaar.jobs import JobMarket

    return JobMarket.from_suite(box.suite)


def _job(box: Toolbox, market: JobMarket, job: JobInfo) -> dict[str, Any]:
    from agentbazaar.tools._money import money

    token = box.suite.tokens.get(market.terms.token)
    return {**job.to_dict(), "budget": money(token, job.budget), "held": money(token, job.held)}


def job_create(box: Toolbox, args: JobCreateArgs) -> dict[str, Any]:
    """An open job with the paying wallet as client (nothing is escrowed until it is funded)."""
    from agentbazaar.jobs.model import parse_duration
    from agentbazaar.tools._money import money, resolve_address

    market = _market(box)
    units = market.budget(box.suite.tokens, args.budget)
    token = box.suite.tokens.get(market.terms.token)
    provider = resolve_address(box, args.provider)
    evaluator = resolve_address(box, args.evaluator)
    expires_in = parse_duration(args.expires)
    job_id, result = market.create(
        box.wallet(), provider=provider, evaluator=evaluator, budget=units,
        expires_in=expires_in, description=args.description, partial=args.partial,
    )  # fmt: skip
    return {"id": job_id, "budget": money(token, units), **result.to_dict()}


def job_list(box: Toolbox, args: JobListArgs) -> dict[str, Any]:
    from agentbazaar.tools._money import resolve_address

    market = _market(box)
    who = resolve_address(box, args.involving) if args.involving else None
    return {"jobs": [_job(box, market, j) for j in market.jobs(involving=who)]}


def job_show(box: Toolbox, args: JobShowArgs) -> dict[str, Any]:
    market = _market(box)
    return {
        "job": _job(box, market, market.job(args.job_id)),
        "description": market.description(args.job_id),
    }
