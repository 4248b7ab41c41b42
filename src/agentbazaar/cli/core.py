"""`bazaar init`, `bazaar deploy`, `bazaar faucet`, and the `wallet` group."""

from __future__ import annotations

import typer

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.cli._common import console, emit_json, emit_table, run_context, waiting
from agentbazaar.config import BazaarConfig, write_default_config
from agentbazaar.errors import ChainError, InputError
from agentbazaar.suite import Suite, deploy_suite
from agentbazaar.tokens import Token

DEMO_WALLETS = ("alice", "bob")
DEMO_FUNDING = (("ETH", "10"), ("USDC", "1000"))


def connect(cfg: BazaarConfig) -> Chain:
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


def resolve_target(cfg: BazaarConfig, target: str) -> str:
    """A wallet name or an address -> checksummed address."""
    if target.startswith("0x"):
        return to_address(target)
    from agentbazaar.wallet.keystore import KeyStore

    return to_address(KeyStore(cfg.keystore_dir).address_of(target))


def fund(chain: Chain, suite: Suite, address: str, token: Token, units: int) -> str | None:
    """Faucet: native via the dev chain, tokens minted (or wrapped) by the dev minter."""
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
    amount: str = typer.Argument(..., help='amount, e.g. 100 or "100 USDC"'),
    token: str | None = typer.Argument(None, help="ETH (default) or a suite token"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Fund a wallet or address on a local chain.

    Example: bazaar faucet alice 100 USDC
    """
    cfg = run_context(ctx).config
    address = resolve_target(cfg, target)
    chain = connect(cfg)
    suite = Suite(chain, cfg)
    tok, units = suite.tokens.parse_amount(amount, default_token=token or "ETH")
    if token and " " in amount.strip():
        raise InputError("give the token once: either '100 USDC' or '100' USDC")
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
    """Create the data directory and config, start the local chain, deploy, fund demo wallets.

    Example: BAZAAR_PASSPHRASE=secret bazaar init
    """
    rc = run_context(ctx)
    home = rc.config.home
    write_default_config(home)
    rc._config = None  # re-read with the file just written
    cfg = rc.config
    if cfg.chain.backend == "local":
        with waiting("starting the local chain..."):
            AnvilNode(cfg).start()
    chain = connect(cfg)
    with waiting("deploying the suite..."):
        sctx = deploy_suite(chain, cfg)
    suite = Suite.from_context(sctx)
    from agentbazaar.wallet.keystore import KeyStore, passphrase_from_env_or_prompt

    store = KeyStore(cfg.keystore_dir)
    rows = []
    names = [n.strip() for n in wallets.split(",") if n.strip()]
    passphrase = None
    for name in names:
        if not store.exists(name):
            passphrase = passphrase or passphrase_from_env_or_prompt(_prompt)
            store.create(name, passphrase)
        address = store.address_of(name)
        for symbol, human in DEMO_FUNDING:
            tok = suite.tokens.get(symbol)
            fund(chain, suite, address, tok, tok.parse(human))
        rows.append([name, address])
    if json_out:
        emit_json(
            {
                "home": str(home),
                "chain_id": chain.chain_id,
                "contracts": {k: d.address for k, d in sctx.manifest.contracts.items()},
                "wallets": {r[0]: r[1] for r in rows},
            }
        )
        return
    console.print(f"data directory: {home}  chain: {chain.network} ({cfg.chain.backend})")
    emit_table("wallets (funded with 10 ETH and 1000 USDC each)", ["name", "address"], rows)


def _prompt(text: str) -> str:
    return str(typer.prompt(text, hide_input=True, confirmation_prompt=True))


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("deploy")(deploy)
    app.command("faucet")(faucet)
