"""`bazaar data ...`: content-addressed datasets: CIDs, publishing, licences, contributions,
lineage. (Buying a dataset over x402 is not here yet.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    json_text,
    open_wallet,
    resolve_target,
    run_context,
    waiting,
)
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import DataError, InputError
from agentbazaar.units import format_units

if TYPE_CHECKING:
    from agentbazaar.data.lineage import LineageStore
    from agentbazaar.data.registry import DatasetRegistry
    from agentbazaar.suite import Suite

app = typer.Typer(
    help="Datasets: CIDs, publishing, licences, contributions, lineage.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")


def _registry(cfg: BazaarConfig) -> tuple[Suite, DatasetRegistry]:
    from agentbazaar.chain import Chain
    from agentbazaar.data.registry import REGISTRY_KEY, DatasetRegistry
    from agentbazaar.suite import Suite

    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    suite = Suite(chain, cfg)
    if not suite.has(REGISTRY_KEY):
        raise DataError("the dataset registry is not deployed: run `bazaar deploy`")
    return suite, DatasetRegistry.from_suite(suite)


def _contributors(ctx: typer.Context, specs: list[str]) -> tuple[list[str], list[int]]:
    """``NAME_OR_ADDRESS=SHARE`` pairs (shares in basis points of the whole, 10000)."""
    from agentbazaar.data.errors import DatasetInputError
    from agentbazaar.data.registry import SHARE_WHOLE

    addresses, shares = [], []
    for spec in specs:
        who, sep, share = spec.rpartition("=")
        if not sep or not who or not share.isdigit():
            raise DatasetInputError(
                f"contributor {spec!r}: write NAME_OR_ADDRESS=SHARE (of {SHARE_WHOLE})"
            )
        addresses.append(str(resolve_target(ctx, who)))
        shares.append(int(share))
    return addresses, shares


@app.command("cid")
def cid_cmd(
    path: Path = typer.Argument(..., help="a file or a directory"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """The CIDv1 of a file or directory, as `ipfs add --cid-version 1 --raw-leaves` computes it.

    Example: bazaar data cid ./corpus.jsonl
    """
    from agentbazaar.data.cid import dag_of_path

    with waiting(f"hashing {path}..."):
        link = dag_of_path(path)
    if json_out:
        emit_json({"cid": str(link.cid), "size": link.size, "dag_size": link.tsize})
    else:
        console.print(str(link.cid), highlight=False)


@app.command("licences")
def licences_cmd(json_out: bool = typer.Option(False, "--json")) -> None:
    """The licence templates a dataset can be published under.

    Example: bazaar data licences --json
    """
    from agentbazaar.data.licences import TEMPLATES

    rows = [
        {"id": i, **t.terms(), "termsHash": "0x" + t.terms_hash.hex()}
        for i, t in enumerate(TEMPLATES, 1)
    ]
    if json_out:
        emit_json(rows)
        return
    emit_table(
        "licence templates", ["id", "key", "spdx", "commercial", "derivatives", "attribution"],
        [[r["id"], r["key"], r["spdx"], r["commercialUse"], r["derivatives"], r["attribution"]] for r in rows],
    )  # fmt: skip


@app.command("publish")
def publish_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="the dataset: a file or a directory"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="the publisher's wallet (the agent's wallet)"
    ),
    agent: int = typer.Option(..., "--agent", help="the publisher's ERC-8004 agent id"),
    price: str = typer.Option(..., "--price", help="price per download, e.g. 0.5 or '0.5 USDC'"),
    licence: str = typer.Option(
        ..., "--licence", help="licence template: key or id (bazaar data licences)"
    ),
    price_per_chunk: str = typer.Option("0", "--price-per-chunk"),
    royalty: int = typer.Option(0, "--royalty", help="royalty derived datasets pay, in bps"),
    parent: list[str] = typer.Option([], "--parent", help="CID of a dataset this one derives from"),
    contributor: list[str] = typer.Option(
        [], "--contributor", help="NAME_OR_ADDRESS=SHARE (of 10000)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Compute the dataset's CID and register it (with its revenue splitter).

    Example: bazaar data publish corpus.jsonl -w alice --agent 0 --price 0.5 --licence open
    """
    from agentbazaar.data.cid import Cid, dag_of_path
    from agentbazaar.data.licences import licence_id

    cfg = run_context(ctx).config
    number = licence_id(licence)
    contributors, shares = _contributors(ctx, contributor)
    suite, registry = _registry(cfg)
    token = suite.tokens.get("USDC")
    assert token.address is not None
    parents = [registry.by_cid(Cid.parse(p)).id for p in parent]
    with waiting(f"hashing {path}..."):
        cid = dag_of_path(path).cid
    account = open_wallet(ctx, wallet).account_for_deploy()  # a registry call: gas, no tokens
    with waiting("publishing..."):
        dataset_id = registry.publish(
            account, cid=cid, agent_id=agent, licence=number, token=token.address,
            price=token.parse(price), price_per_chunk=_optional_price(token, price_per_chunk),
            royalty_bps=royalty, parents=parents, contributors=contributors, shares=shares,
        )  # fmt: skip
    entry = registry.dataset(dataset_id)
    if json_out:
        emit_json(entry.to_dict())
    else:
        console.print(
            f"published dataset {dataset_id}: {cid} (splitter {entry.splitter})", highlight=False
        )


@app.command("list")
def list_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Every dataset in the registry.

    Example: bazaar data list --json
    """
    from agentbazaar.data.licences import TEMPLATES

    suite, registry = _registry(run_context(ctx).config)
    entries = [registry.dataset(i) for i in range(1, registry.count() + 1)]
    if json_out:
        emit_json([e.to_dict() for e in entries])
        return
    token = suite.tokens.get("USDC")
    emit_table(
        "datasets", ["id", "cid", "version", "licence", "price", "publisher"],
        [[e.id, e.cid, e.version, TEMPLATES[e.licence - 1].key if e.licence <= len(TEMPLATES) else e.licence,
          format_units(e.price, token.decimals), e.publisher] for e in entries],
    )  # fmt: skip


def _lineage_store(cfg: BazaarConfig) -> LineageStore:
    from agentbazaar.data.lineage import LineageStore

    return LineageStore(cfg.home / "data" / "lineage.sqlite")


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    cid: str = typer.Argument(..., help="the dataset's CID"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """A dataset: licence, publisher, parents, contributors and shares, payments.

    Example: bazaar data show bafkrei...
    """
    from agentbazaar.data.cid import Cid
    from agentbazaar.data.lineage import walk

    suite, registry = _registry(run_context(ctx).config)
    entry = registry.by_cid(Cid.parse(cid))
    described = next(
        d
        for d in walk(cid, registry, suite.token_contract(entry.token))["datasets"]
        if d["id"] == entry.id
    )
    _print(described, json_out)


@app.command("lineage")
def lineage_cmd(
    ctx: typer.Context,
    start: str = typer.Argument(..., help="a receipt id (0x...) or a dataset CID"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """From a receipt or a CID to the datasets, licences, contributors and payments behind it.

    Example: bazaar data lineage 0x5f3c... --json
    """
    from agentbazaar.data.lineage import walk

    cfg = run_context(ctx).config
    suite, registry = _registry(cfg)
    token = suite.token_contract("USDC")
    _print(walk(start, registry, token, _lineage_store(cfg)), json_out)


@app.command("contribute")
def contribute_cmd(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="the dataset's CID"),
    rows: Path = typer.Argument(..., help="the contribution: JSON Lines, one row per line"),
    schema: Path = typer.Option(..., "--schema", help="row schema (JSON: fields, text)"),
    contributor: str = typer.Option(
        ..., "--contributor", help="NAME_OR_ADDRESS earning the shares"
    ),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="the publisher's wallet (awards shares)"
    ),
    existing: Path | None = typer.Option(
        None, "--existing", help="the dataset's rows (JSON Lines)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Score a contribution (schema, quality, duplicates) and award its shares on chain.

    Example: bazaar data contribute bafy... rows.jsonl --schema schema.json --contributor carol -w alice
    """
    from agentbazaar.data.cid import Cid
    from agentbazaar.data.contributions import (
        ContributionStore,
        ContributionValidator,
        RowSchema,
        award,
        dataset_embedder,
        parse_rows,
    )

    cfg = run_context(ctx).config
    row_schema = RowSchema.from_json(_read_json(schema))
    who = str(resolve_target(ctx, contributor))
    _, registry = _registry(cfg)
    entry = registry.by_cid(Cid.parse(dataset))
    validator = ContributionValidator(row_schema, dataset_embedder())
    if existing is not None:
        texts = [
            r[row_schema.text_field]
            for r in parse_rows(_read(existing))
            if isinstance(r, dict) and row_schema.text_field in r
        ]
        validator.add_existing([str(t) for t in texts])
    with waiting("scoring the contribution..."):
        report = validator.score(who, parse_rows(_read(rows)))
    store = ContributionStore(cfg.home / "data" / "contributions.sqlite")
    contribution_id = store.record(entry.id, report)
    account = open_wallet(ctx, wallet).account_for_deploy()
    tx_hash = award(
        registry, account, entry.id, report, store=store, contribution_id=contribution_id
    )
    out = {
        **report.to_dict(),
        "dataset": entry.id,
        "contribution": contribution_id,
        "tx_hash": tx_hash,
    }
    if json_out:
        emit_json(out)
    else:
        console.print(
            f"{report.accepted} rows accepted, {len(report.rejected)} rejected, "
            f"{report.shares} shares awarded ({tx_hash or 'nothing sent'})",
            highlight=False,
        )
        for row in report.rejected:
            console.print(f"  row {row.index}: {row.reason}", highlight=False, markup=False)


def _optional_price(token: Any, text: str) -> int:
    """A price that may be zero (the token parser refuses zero payments)."""
    return 0 if text.strip() in {"0", "0.0", ""} else int(token.parse(text))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read(path))
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc


def _print(data: Any, json_out: bool) -> None:
    if json_out:
        emit_json(data)
    else:
        console.print_json(json_text(data))
