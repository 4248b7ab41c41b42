"""``bazaar pay``, ``bazaar facilitator``, ``bazaar serve-example``: x402 from the shell.

``bazaar pay`` says ``paid`` only for a payment that settled; a refused one is one ``error:``
line with the reason code, what to do, and what became of the signed authorization (settled
after all, expired, cancelled on chain, or live until when), and exit code 1 (``--json``:
``"paid": false`` with ``error``, ``message`` and ``ledger``).

The services bind their port before they say they are ready (a port in use is one ``error:``
line), and ``serve-example --facilitator URL`` refuses to start while that facilitator cannot be
reached or refuses the key (a seller that cannot settle must not take requests).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import emit_json, err_console, run_context, server_logging
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ConfigError, InputError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from agentbazaar.chain import Chain
    from agentbazaar.payments.client import PaidResponse
    from agentbazaar.payments.facilitator import Facilitator
    from agentbazaar.tokens import Token
    from agentbazaar.wallet import Wallet

DEV_FACILITATOR_INDEX = 9  # the local facilitator's gas account (its own nonce sequence)
DEV_CHANNEL_SELLER_INDEX = 8  # the example service's channel authorizer (sends its claims)
DEV_GAS_WEI = 10**20


def _usdc(chain: Chain, cfg: BazaarConfig) -> Token:
    from agentbazaar.suite import Suite

    token = Suite(chain, cfg).tokens.get("USDC")
    if token.address is None:
        raise ConfigError("no USDC deployment on this chain: run `bazaar deploy` first")
    return token


def _gas_account(chain: Chain, cfg: BazaarConfig, wallet: str | None) -> LocalAccount:
    if wallet is not None:
        from agentbazaar.wallet import open_wallet

        return open_wallet(cfg, wallet).account_for_deploy()
    if not chain.is_dev:
        raise ConfigError("on a public chain the facilitator needs a funded gas wallet: --wallet W")
    from agentbazaar.chain.devkeys import dev_account

    account = dev_account(DEV_FACILITATOR_INDEX)
    if chain.native_balance(account.address) < DEV_GAS_WEI // 10:
        chain.fund_native(account.address, DEV_GAS_WEI)
    return account


def _channels_deployed(chain: Chain) -> bool:
    """Are the batch-settlement contracts (a suite step) at their canonical address here?"""
    from agentbazaar.channels.wire import BATCH_SETTLEMENT_ADDRESS

    return len(chain.w3.eth.get_code(BATCH_SETTLEMENT_ADDRESS)) > 0


def with_channels(fac: Facilitator, chain: Chain, gas: LocalAccount) -> Facilitator:
    """Add batch-settlement to ``fac`` where its contracts are deployed; ``gas`` relays deposits
    and claims and is the receiver authorizer advertised in ``/supported``."""
    if _channels_deployed(chain):
        from agentbazaar.channels.facilitator import BatchSettlementHandler

        fac.register(BatchSettlementHandler(chain, gas, gas))
    return fac


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is refused before anything is announced."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "is another service using it? choose another with --port"
        ) from exc
    return sock


def _serve(ctx: typer.Context, app: Any, sock: socket.socket) -> None:
    import uvicorn

    server_logging(ctx)
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def _check_facilitator(url: str, key: str | None) -> None:
    """Refuse to serve on a facilitator that cannot be reached or refuses our key."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        supported = httpx.get(f"{url.rstrip('/')}/supported", headers=headers, timeout=10)
        guarded = httpx.get(f"{url.rstrip('/')}/metrics", headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"the facilitator at {url} cannot be reached ({type(exc).__name__}): start it "
            "(`bazaar facilitator`) or leave out --facilitator to settle in-process"
        ) from exc
    if supported.status_code != 200:
        raise ConfigError(f"{url} answered /supported with {supported.status_code}: "
                          "is it an x402 facilitator?")  # fmt: skip
    if guarded.status_code in (401, 403):
        raise ConfigError(
            f"the facilitator at {url} refuses "
            + ("the --facilitator-key given" if key else "requests without an API key")
            + ": pass its key with --facilitator-key or BAZAAR_FACILITATOR_API_KEY"
        )


def _store_path(cfg: BazaarConfig, chain: Chain, gas: LocalAccount) -> Path:
    """One settlement store per chain and gas account (the account's nonces are its own)."""
    return cfg.home / "payments" / f"settlements-{chain.chain_id}-{gas.address.lower()}.db"


def facilitator(
    ctx: typer.Context,
    port: int = typer.Option(4020, "--port", help="port on 127.0.0.1"),
    host: str = typer.Option("127.0.0.1", "--host"),
    wallet: str | None = typer.Option(None, "--wallet", help="gas wallet that sends settlements"),
    batch: bool = typer.Option(False, "--batch", help="settle in batches via ExactBatchSettler"),
    api_key: list[str] | None = typer.Option(
        None,
        "--api-key",
        help="require this bearer key on /verify, /settle, /metrics (repeatable; "
        "also BAZAAR_FACILITATOR_API_KEYS=K1,K2)",
    ),
    api_key_file: Path | None = typer.Option(
        None, "--api-key-file", help="file with one accepted key a line (# comments)"
    ),
    factory: list[str] | None = typer.Option(
        None,
        "--erc6492-factory",
        help="a wallet factory whose ERC-6492 deployments this facilitator pays for (repeatable)",
    ),
) -> None:
    """Run our x402 facilitator: exact (EOAs, ERC-1271 wallets, ERC-6492 wallets of allowed
    factories; Permit2 for tokens without EIP-3009), upto where Permit2 is deployed, and
    batch-settlement where its contracts are deployed.

    With API keys (--api-key, --api-key-file or BAZAAR_FACILITATOR_API_KEYS) /verify, /settle
    and /metrics need `Authorization: Bearer <key>`; /supported and /healthz stay open.

    Example: BAZAAR_FACILITATOR_API_KEYS=$KEY bazaar facilitator --host 0.0.0.0 --port 4020
    """
    from agentbazaar.chain import Chain, to_address
    from agentbazaar.payments.auth import KEYS_ENV, ApiKeys, open_bind_warning
    from agentbazaar.payments.evm import extend_facilitator, extension_store_path
    from agentbazaar.payments.facilitator import create_app, exact_facilitator

    keys = ApiKeys.from_sources(
        api_key or (), env_value=os.environ.get(KEYS_ENV), file=api_key_file
    )
    cfg = run_context(ctx).config
    chain = Chain.from_config(cfg)
    gas = _gas_account(chain, cfg, wallet)
    store = _store_path(cfg, chain, gas)
    if batch:
        from agentbazaar.payments.batch import batching_facilitator
        from agentbazaar.suite import Suite

        suite = Suite(chain, cfg)
        if not suite.has("ExactBatchSettler"):
            raise ConfigError("no ExactBatchSettler on this chain: run `bazaar deploy` first")
        settler = str(suite.contract("ExactBatchSettler").address)
        fac = batching_facilitator(chain, gas, settler=settler, store_path=store)
    else:
        fac = exact_facilitator(chain, gas, store_path=store)
    extend_facilitator(
        fac,
        chain,
        gas,
        store_path=extension_store_path(store),
        allowed_factories=[to_address(f) for f in factory or ()],
    )
    schemes = ", ".join(sorted({h.scheme for h in with_channels(fac, chain, gas).handlers}))
    warning = open_bind_warning(host, keys)
    if warning is not None:
        err_console.print(warning, soft_wrap=True, markup=False, highlight=False)
    sock = _bind(host, port)
    auth = f"{len(keys)} API key(s) required" if keys else "no API key"
    err_console.print(
        f"facilitator ({schemes}) for {chain.network} on http://{host}:{port} ({auth})",
        soft_wrap=True,
    )
    _serve(ctx, create_app(fac, api_keys=keys), sock)


def serve_example(
    ctx: typer.Context,
    port: int = typer.Option(4021, "--port"),
    pay_to: str = typer.Option(..., "--pay-to", help="address that receives the payments"),
    facilitator_url: str | None = typer.Option(
        None,
        "--facilitator",
        help="facilitator URL (default: [facilitator] url in bazaar.toml or "
        "BAZAAR_FACILITATOR_URL, else an in-process one)",
    ),
    wallet: str | None = typer.Option(
        None, "--wallet", help="wallet that authorizes and sends channel claims (public chains)"
    ),
    facilitator_key: str | None = typer.Option(
        None,
        "--facilitator-key",
        envvar="BAZAAR_FACILITATOR_API_KEY",
        show_envvar=True,
        help="API key of the --facilitator URL (sent as a bearer token)",
    ),
) -> None:
    """Serve GET /quote (0.001 USDC) and POST /echo (0.002 USDC), paid with x402: exact;
    upto on POST /echo (0.000001 USDC a byte, at most 0.002) where the facilitator settles it;
    batch-settlement where its contracts are deployed.

    Example: bazaar serve-example --port 4021 --pay-to 0x90F7...b906

    Example: bazaar serve-example --pay-to 0x90F7...b906 --facilitator URL --facilitator-key K
    """
    from agentbazaar.chain import Chain
    from agentbazaar.channels.service import ChannelSeller
    from agentbazaar.payments.auth import check_key, key_sent_in_clear
    from agentbazaar.payments.evm import extend_facilitator, extension_store_path
    from agentbazaar.payments.example import create_example_app, example_channel_seller
    from agentbazaar.payments.facilitator import exact_facilitator
    from agentbazaar.payments.metered import facilitator_offers
    from agentbazaar.payments.server import PaymentTerms

    cfg = run_context(ctx).config
    facilitator_url = facilitator_url or cfg.facilitator_url
    chain = Chain.from_config(cfg)
    token = _usdc(chain, cfg)
    terms = PaymentTerms(network=chain.network, token=token, pay_to=pay_to)
    target: str | Facilitator
    if facilitator_url is not None:
        target = facilitator_url
        if facilitator_key is not None:
            check_key(facilitator_key, where="--facilitator-key")
            if key_sent_in_clear(facilitator_url):
                err_console.print(
                    "warning: the facilitator key goes to a remote host over plain http; "
                    "use an https facilitator URL",
                    soft_wrap=True,
                    markup=False,
                )
        _check_facilitator(facilitator_url, facilitator_key)
    else:
        facilitator_key = None  # the in-process facilitator takes no key
        gas = _gas_account(chain, cfg, None)
        store = _store_path(cfg, chain, gas)
        assets = [str(token.address)]
        target = exact_facilitator(chain, gas, store_path=store, assets=assets)
        extend_facilitator(
            target, chain, gas, store_path=extension_store_path(store), assets=assets
        )
        target.recover()
    channels: ChannelSeller | None = None
    if _channels_deployed(chain) and (wallet is not None or chain.is_dev):
        authorizer = _channel_authorizer(chain, cfg, wallet)
        store = (
            cfg.home
            / "channels"
            / f"example-{chain.chain_id}-{terms.pay_to.lower()}-{authorizer.address.lower()}.db"
        )
        channels = example_channel_seller(chain, terms, authorizer, store)
    upto = facilitator_offers(target, chain.network, api_key=facilitator_key)
    schemes = ", ".join(
        ["exact", *(["upto"] if upto else []), *(["batch-settlement"] if channels else [])]
    )
    kept = cfg.home / "payments" / f"responses-{chain.chain_id}-{terms.pay_to.lower()}.db"
    app = create_example_app(
        terms, target, channels, facilitator_key=facilitator_key, responses_path=kept, upto=upto
    )
    sock = _bind("127.0.0.1", port)
    err_console.print(
        f"example paid service ({schemes}) on http://127.0.0.1:{port} ({chain.network})"
    )
    _serve(ctx, app, sock)


def _channel_authorizer(chain: Chain, cfg: BazaarConfig, wallet: str | None) -> LocalAccount:
    if wallet is not None:
        from agentbazaar.wallet import open_wallet

        return open_wallet(cfg, wallet).account_for_deploy()
    from agentbazaar.chain.devkeys import dev_account

    account = dev_account(DEV_CHANNEL_SELLER_INDEX)
    if chain.native_balance(account.address) < DEV_GAS_WEI // 10:
        chain.fund_native(account.address, DEV_GAS_WEI)
    return account


def wallet_payer(
    ctx: typer.Context, url: str, wallet: str | None, max_price: str, *, approve: bool
) -> tuple[Chain, Token, int, Any]:
    """What a paying command needs: the chain, its USDC, ``--max`` in base units and the
    wallet's payer (``Wallet.spend``: policy, ledger, key); ``url`` must be http(s)."""
    from agentbazaar.chain import Chain
    from agentbazaar.cli._common import open_wallet
    from agentbazaar.payments.payers import WalletPayer

    if not url.startswith(("http://", "https://")):
        raise InputError(f"not an http(s) URL: {url!r}")
    cfg = run_context(ctx).config
    chain = Chain.from_config(cfg)
    token = _usdc(chain, cfg)
    limit = token.parse(max_price)
    payer = WalletPayer(
        open_wallet(ctx, wallet), approve=approve, tokens={str(token.address): token}, chain=chain
    )
    return chain, token, limit, payer


def pay(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="URL of the paid resource"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="wallet that pays (default: BAZAAR_WALLET, default_wallet)"
    ),
    max_price: str = typer.Option(
        "0.05", "--max", help="most to pay for this call, e.g. 0.05 or '0.05 USDC'"
    ),
    method: str = typer.Option("GET", "-X", "--request"),
    data: str | None = typer.Option(None, "-d", "--data"),
    key: str | None = typer.Option(None, "--idempotency-key", help="reuse to retry safely"),
    approve: bool = typer.Option(False, "--approve", help="approve a spend above the threshold"),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="print the payment made"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """curl for x402: pay (within your wallet's policy) and print the body.

    Example: bazaar pay http://127.0.0.1:4021/quote --wallet alice --max 0.01 -v
    """
    from agentbazaar.payments.client import AcceptedToken, PayingClient

    chain, token, limit, payer = wallet_payer(ctx, url, wallet, max_price, approve=approve)
    client = PayingClient(
        payer, [AcceptedToken(chain.network, str(token.address))], max_amount=limit
    )

    async def go() -> Any:
        async with client:
            return await client.request(
                method.upper(),
                url,
                content=data.encode() if data is not None else None,
                headers={"content-type": "application/json"} if data is not None else None,
                idempotency_key=key,
            )

    paid = asyncio.run(go())
    if paid.response.status_code < 400 and (paid.payment is None or paid.payment.success):
        _print_paid(paid, token, json_out=json_out, verbose=verbose)
        return
    _refused(paid, payer.wallet, chain, url, json_out=json_out)


def _print_paid(paid: PaidResponse, token: Token, *, json_out: bool, verbose: bool) -> None:
    made = paid.payment.to_dict() if paid.payment else None
    if json_out:
        emit_json(
            {
                "status": paid.response.status_code,
                "body": paid.response.text,
                "payment": made,
                "paid": made is not None,
            }
        )
        return
    sys.stdout.write(paid.response.text + "\n")
    if verbose and made is not None:
        err_console.print(
            f"paid {token.format(int(made['amount']))} to {made['pay_to']} "
            f"tx {made['transaction'] or '-'} key {made['idempotency_key']}",
            markup=False,
            highlight=False,
        )


def _refused(paid: PaidResponse, wallet: Wallet, chain: Chain, url: str, *, json_out: bool) -> None:
    """A failed call: say so with the reason and what to do, settle the fate of what was
    signed (settled after all, expired, cancelled, or live until when), exit 1."""
    from agentbazaar.payments import PaymentRefused
    from agentbazaar.payments.reasons import explain
    from agentbazaar.wallet.reconcile import resolve_refused

    status, made = paid.response.status_code, paid.payment
    if made is None:  # not a payment problem: the service answered an error before any payment
        reason, message = f"http_{status}", paid.response.text[:300] or "no body"
        if json_out:
            emit_json({"status": status, "body": paid.response.text, "payment": None,
                       "paid": False, "error": reason, "message": message})  # fmt: skip
        raise PaymentRefused(f"{url} answered {status}: {message}", status=status)
    reason = made.error or f"http_{status}"
    message = made.message or explain(reason)
    finding = resolve_refused(wallet, chain, made.intent.idempotency_key)
    fate = f"; the payment: {finding.detail}" if finding is not None else ""
    if json_out:
        emit_json(
            {
                "status": status,
                "body": paid.response.text,
                "payment": made.to_dict(),
                "paid": False,
                "error": reason,
                "message": message,
                "ledger": finding.to_dict() if finding is not None else None,
            }
        )
    raise PaymentRefused(f"payment failed ({reason}): {message}{fate}", reason=reason)


def register(app: typer.Typer) -> None:
    app.command("facilitator")(facilitator)
    app.command("serve-example")(serve_example)
    app.command("pay")(pay)
