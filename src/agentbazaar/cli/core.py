"""`bazaar init`, `bazaar deploy`, `bazaar faucet`, and the `wallet` group."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import (
    RunContext,
    console,
    emit_json,
    emit_table,
    err_console,
    resolve_target,
    run_context,
    waiting,
)
from agentbazaar.config import BazaarConfig, set_default_wallet, write_default_config
from agentbazaar.errors import AmountError, ChainError, ConfigError, InputError

if TYPE_CHECKING:
    from agentbazaar.chain import Chain
    from agentbazaar.suite import Suite
    from agentbazaar.tokens import Token, TokenRegistry

DEMO_WALLETS = ("alice", "bob")
DEMO_FUNDING = (("ETH", "10"), ("USDC", "1000"))
INIT_MARKER = "init.json"  # which demo wallets init funded, per chain and USDC deployment


def connect(cfg: BazaarConfig) -> Chain:
    from agentbazaar.chain import Chain

    with waiting("connecting to the chain..."):
        return Chain.from_config(cfg)


def deploy(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="redeploy even unchanged contracts"),
    wallet: str | None = typer.Option(None, "--wallet", help="deployer wallet (public chains)"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Compile and deploy the contract suite; reuse what is deployed and unchanged.

    Example: bazaar deploy --json
    """
    from agentbazaar.deployment import deploy_suite

    cfg = run_context(ctx).config
    chain = connect(cfg)
    deployer = None
    if wallet:
        from agentbazaar.wallet.wallet import open_wallet

        deployer = open_wallet(cfg, wallet).account_for_deploy()
    with waiting("deploying the suite..."):
        sctx = deploy_suite(chain, cfg, deployer=deployer, force=force)
    rows = [[k, sctx.manifest.contracts[k].address, s] for k, s in sctx.statuses.items()]
    if json_out:
        emit_json(
            {
                "chain_id": chain.chain_id,
                "contracts": {r[0]: {"address": r[1], "status": r[2]} for r in rows},
            }
        )
    else:
        emit_table(f"suite on chain {chain.chain_id}", ["contract", "address", "status"], rows)


def known_tokens(cfg: BazaarConfig) -> TokenRegistry:
    """The tokens known here: the suite's on the configured chain, else bazaar.toml's only."""
    from agentbazaar.chain import Chain
    from agentbazaar.suite import Suite
    from agentbazaar.tokens import registry_for

    try:
        chain = Chain.from_config(cfg)
    except ChainError:
        return registry_for(cfg, None)
    return Suite(chain, cfg).tokens


def parse_amount(tokens: TokenRegistry, amount: str, token: str | None) -> tuple[Token, int]:
    """An amount with its token ("12.5 USDC", or "12.5" and TOKEN): never a silent default."""
    if token and len(amount.split()) > 1:
        raise InputError("give the token once: either '12.5 USDC' or '12.5' USDC")
    if not token and len(amount.split()) == 1 and not any(c.isalpha() for c in amount):
        raise AmountError(
            f"an amount needs its token: write '{amount.strip()} USDC' or '{amount.strip()} ETH'"
        )
    return tokens.parse_amount(amount, default_token=token)


def fund(chain: Chain, suite: Suite, address: str, token: Token, units: int) -> str | None:
    """Faucet: native via the dev chain, tokens minted (or wrapped) by the dev minter."""
    from agentbazaar.chain.devkeys import dev_account

    if not chain.is_dev:
        raise ChainError("the faucet works only on local chains (embedded or anvil)")
    if token.is_native:
        chain.fund_native(address, units)
        return None
    minter = dev_account(0)
    contract = suite.token_contract(token.symbol)
    if token.symbol == "WETH":
        chain.fund_native(minter.address, units)
        chain.transact(minter, contract.functions.deposit(), value=units)
        receipt = chain.transact(minter, contract.functions.transfer(address, units))
    else:
        receipt = chain.transact(minter, contract.functions.mint(address, units))
    return str(receipt["transactionHash"].to_0x_hex())


def faucet(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="wallet name or 0x address"),
    amount: str = typer.Argument(..., help='with its token: "100 USDC" or "1 ETH"'),
    token: str | None = typer.Argument(None, help="the token, when not in AMOUNT"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Fund a wallet or address on a local chain.

    Example: bazaar faucet alice 100 USDC
    """
    from agentbazaar.suite import Suite

    cfg = run_context(ctx).config
    address = resolve_target(ctx, target)
    chain = connect(cfg)
    suite = Suite(chain, cfg)
    tok, units = parse_amount(suite.tokens, amount, token)
    with waiting(f"funding {address}..."):
        tx = fund(chain, suite, address, tok, units)
    if json_out:
        emit_json({"address": address, "token": tok.symbol, "amount": str(units), "tx_hash": tx})
    else:
        console.print(f"funded {address} with {tok.format(units)}" + (f" (tx {tx})" if tx else ""))


def init(
    ctx: typer.Context,
    wallets: str = typer.Option(",".join(DEMO_WALLETS), help="demo wallets to create and fund"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create the data directory and config, start the local chain, deploy, create and fund demo
    wallets (with the default spending policy; the first is the default wallet). Running it
    again changes nothing that is already there, mints nothing twice, and says so.

    Example: BAZAAR_PASSPHRASE=secret bazaar init
    """
    from agentbazaar.chain.anvil import AnvilNode
    from agentbazaar.deployment import deploy_suite
    from agentbazaar.suite import Suite
    from agentbazaar.wallet import write_default_policy
    from agentbazaar.wallet.keystore import validate_name

    rc = run_context(ctx)
    home = rc.config.home
    names = [validate_name(n.strip()) for n in wallets.split(",") if n.strip()]
    changes: list[str] = []
    if not (home / "bazaar.toml").exists():
        write_default_config(home)
        changes.append("config written")
    if names and set_default_wallet(home, names[0]):
        changes.append(f"default wallet {names[0]}")
    rc._config = None  # re-read with the file just written
    cfg = rc.config
    if cfg.chain.backend == "local" and not AnvilNode(cfg).status().running:
        with _init_step("starting the local chain...", json_out):
            AnvilNode(cfg).start()
        changes.append("chain started")
    chain = connect(cfg)
    with _init_step("deploying the suite...", json_out):
        sctx = deploy_suite(chain, cfg)
    changes += [f"{k} {s}" for k, s in sctx.statuses.items() if s != "reused"]
    suite = Suite.from_context(sctx)
    with _init_step("opening the demo wallets...", json_out):
        addresses, created = _demo_wallets(rc, names)
        for name in created:
            write_default_policy(cfg, name, suite.tokens)
    changes += [f"wallet {n} created" for n in created]
    with _init_step("funding the demo wallets...", json_out):
        funded = _fund_demo(cfg, chain, suite, addresses)
    changes += [f"wallet {n} funded" for n in funded]
    _init_report(cfg, chain, sctx.manifest.contracts, addresses, changes, json_out)


@contextlib.contextmanager
def _init_step(message: str, json_out: bool) -> Iterator[None]:
    """A spinner on a terminal; elsewhere (a pipe, a log) one plain line per step on stdout,
    so a long init is never silent (none with ``--json``, whose stdout is one document)."""
    if not json_out and not err_console.is_terminal:
        console.print(message, highlight=False)
    with waiting(message):
        yield


def _demo_wallets(rc: RunContext, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Each demo wallet's authenticated address, creating the missing ones."""
    from agentbazaar.wallet import KeyStore

    store = KeyStore(rc.config.keystore_dir)
    created = [n for n in names if not store.exists(n)]
    for name in created:
        store.create(name, rc.passphrase(new=True))
    return {n: store.address_of(n, rc.passphrase()) for n in names}, created


def _fund_demo(
    cfg: BazaarConfig, chain: Chain, suite: Suite, addresses: dict[str, str]
) -> list[str]:
    """Fund each demo wallet once per deployment of the suite's USDC (recorded in
    ``init.json``; a fresh chain redeploys it, and its wallets are funded again)."""
    marker = cfg.home / INIT_MARKER
    usdc = suite.manifest.contracts["USDC"]
    record = _read_marker(marker) if chain.backend != "embedded" else {}
    mine = record.get(str(chain.chain_id), {})
    done = set(mine.get("funded", [])) if mine.get("usdc_tx") == usdc.tx_hash else set()
    funded = []
    for name, address in addresses.items():
        if name in done:
            continue
        for symbol, human in DEMO_FUNDING:
            tok = suite.tokens.get(symbol)
            fund(chain, suite, address, tok, tok.parse(human))
        done.add(name)
        funded.append(name)
        record[str(chain.chain_id)] = {"usdc_tx": usdc.tx_hash, "funded": sorted(done)}
        _write_marker(marker, record)
    return funded


def _read_marker(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; delete it to fund the demo wallets") from exc
    return raw if isinstance(raw, dict) else {}


def _write_marker(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    tmp.replace(path)


def _init_report(
    cfg: BazaarConfig,
    chain: Chain,
    contracts: dict[str, Any],
    addresses: dict[str, str],
    changes: list[str],
    json_out: bool,
) -> None:
    if json_out:
        emit_json(
            {
                "home": str(cfg.home),
                "chain_id": chain.chain_id,
                "contracts": {k: d.address for k, d in contracts.items()},
                "wallets": addresses,
                "default_wallet": cfg.default_wallet,
                "changed": changes,
            }
        )
        return
    console.print(f"data directory: {cfg.home}  chain: {chain.network} ({cfg.chain.backend})")
    emit_table("wallets", ["name", "address"], list(addresses.items()))
    if changes:
        console.print("done: " + ", ".join(changes), highlight=False)
    else:
        console.print(
            "already initialised: nothing changed (config, chain, contracts and wallets are as "
            "they were; nothing was minted)",
            highlight=False,
        )
    console.print(f"default wallet: {cfg.default_wallet}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("deploy")(deploy)
    app.command("faucet")(faucet)
