"""`bazaar wallet new|import|list|balance|send|policy|ledger`: thin shells over ``agentbazaar.wallet``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    err_console,
    open_wallet,
    resolve_target,
    run_context,
    waiting,
)
from agentbazaar.cli.core import connect, known_tokens, parse_amount
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import (
    InputError,
    LedgerError,
    UnknownTokenError,
    WalletError,
    WalletExists,
)
from agentbazaar.units import format_units, parse_units

if TYPE_CHECKING:
    from agentbazaar.chain import Chain
    from agentbazaar.tokens import Token, TokenRegistry
    from agentbazaar.wallet import Ledger, SpendingPolicy, SpendRecord

app = typer.Typer(
    help="Agent wallets: keys, balances, payments under a spending policy, the ledger.",
    no_args_is_help=True,
)
PRIVATE_KEY_ENV = "BAZAAR_PRIVATE_KEY"
IMPORT_PASSPHRASE_ENV = "BAZAAR_IMPORT_PASSPHRASE"


def _new_passphrase(text: str) -> str:
    return str(typer.prompt(text, hide_input=True, confirmation_prompt=True))


def _passphrase(text: str) -> str:
    return str(typer.prompt(text, hide_input=True))


def _no_terminal(env: str) -> Callable[[str], str]:
    """In place of a prompt when stdin is no terminal: say which variable to set."""

    def refuse(text: str) -> str:
        raise InputError(f"no terminal to ask for the {text}: set {env}")

    return refuse


def _tokens(cfg: BazaarConfig) -> tuple[Chain, TokenRegistry]:
    from agentbazaar.suite import Suite

    chain = connect(cfg)
    return chain, Suite(chain, cfg).tokens


def _created(cfg: BazaarConfig, name: str, address: str, verb: str, json_out: bool) -> None:
    """Give the new wallet the default policy and say what it got."""
    from agentbazaar.wallet import write_default_policy

    policy = write_default_policy(cfg, name, known_tokens(cfg))
    if json_out:
        emit_json({"name": name, "address": address, "policy": policy.to_dict()})
        return
    console.print(f"{verb} {name}: {address}")
    limits = ", ".join(
        f"{lim.symbol} {format_units(lim.max_per_payment, lim.decimals)} a payment"
        for lim in policy.tokens.values()
        if lim.max_per_payment is not None
    )
    others = "refused" if policy.unlisted_tokens == "deny" else "without limits"
    console.print(
        f"spending policy: {limits or 'no token'}, other tokens {others} "
        f"(see or change it with `bazaar wallet policy {name}`)"
    )


@app.command()
def new(
    ctx: typer.Context,
    name: str,
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Create a wallet with a new random key (passphrase: BAZAAR_PASSPHRASE or a prompt).

    Example: bazaar wallet new carol
    """
    from agentbazaar.wallet import KeyStore, passphrase_from_env_or_prompt
    from agentbazaar.wallet.keystore import validate_name

    cfg = run_context(ctx).config
    store = KeyStore(cfg.keystore_dir)
    validate_name(name)
    if store.exists(name):
        raise WalletExists(f"a wallet named {name!r} already exists", name=name)
    address = store.create(name, passphrase_from_env_or_prompt(_new_passphrase))
    _created(cfg, name, address, "wallet", json_out)


@app.command("import")
def import_(
    ctx: typer.Context,
    name: str,
    keystore: Path | None = typer.Option(None, "--keystore", help="a keystore v3 JSON file"),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Import a private key (from stdin or BAZAAR_PRIVATE_KEY, never an argument) or a keystore.

    Without a terminal nothing is prompted: the new wallet's passphrase comes from
    BAZAAR_PASSPHRASE and a keystore file's from BAZAAR_IMPORT_PASSPHRASE.

    Example: echo "$KEY" | bazaar wallet import carol
    """
    from agentbazaar.wallet import KeyStore, passphrase_from_env_or_prompt
    from agentbazaar.wallet.keystore import PASSPHRASE_ENV, validate_name

    cfg = run_context(ctx).config
    store = KeyStore(cfg.keystore_dir)
    validate_name(name)
    if store.exists(name):
        raise WalletExists(f"a wallet named {name!r} already exists", name=name)
    # without a terminal nothing is prompted: the passphrases come from their variables
    new_pass = _new_passphrase if sys.stdin.isatty() else _no_terminal(PASSPHRASE_ENV)
    if keystore is not None:
        if not keystore.is_file():
            raise InputError(f"no keystore file at {keystore}")
        file_pass = os.environ.get(IMPORT_PASSPHRASE_ENV) or (
            _passphrase if sys.stdin.isatty() else _no_terminal(IMPORT_PASSPHRASE_ENV)
        )("keystore passphrase")
        address = store.import_keystore(
            name, keystore, file_pass, passphrase_from_env_or_prompt(new_pass)
        )
    else:
        key = os.environ.get(PRIVATE_KEY_ENV)
        if not key:
            key = sys.stdin.readline() if not sys.stdin.isatty() else _passphrase("private key")
        address = store.import_key(name, key, passphrase_from_env_or_prompt(new_pass))
    _created(cfg, name, address, "imported wallet", json_out)


@app.command("list")
def list_(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List the wallets of this data directory, each address authenticated through the address
    book sealed with the passphrase (BAZAAR_PASSPHRASE or a prompt); a wallet whose file was
    altered or damaged is listed with the reason, and the command exits 1.

    Example: bazaar wallet list --json
    """
    from agentbazaar.wallet import KeyStore

    rc = run_context(ctx)
    store = KeyStore(rc.config.keystore_dir)
    listed = store.listing(rc.passphrase()) if store.names() else []
    if json_out:
        emit_json(
            [
                {"name": w.name, "address": w.address}
                | ({"error": w.problem.to_dict()} if w.problem else {})
                for w in listed
            ]
        )
    else:
        rows = [[w.name, w.address or "-", f"REFUSED: {w.problem}" if w.problem else "ok"]
                for w in listed]  # fmt: skip
        emit_table("wallets", ["name", "address", "check"], rows)
    refused = [w.problem for w in listed if w.problem is not None]
    if refused:
        raise (
            refused[0]
            if len(refused) == 1
            else WalletError(f"{len(refused)} wallets refused (see above); first: {refused[0]}")
        )


@app.command()
def balance(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="wallet name or 0x address"),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Native and token balances of a wallet or any address.

    Example: bazaar wallet balance alice
    """
    from agentbazaar.wallet import balances

    cfg = run_context(ctx).config
    address = resolve_target(ctx, target)
    chain, tokens = _tokens(cfg)
    with waiting("reading balances..."):
        found = balances(chain, address, tokens)
    if json_out:
        emit_json({"address": address, "chain_id": chain.chain_id, "balances": _dicts(found)})
    else:
        rows = [
            [b.token.symbol, b.token.format(b.units), b.token.address or "native"] for b in found
        ]
        emit_table(f"balances of {address}", ["token", "amount", "address"], rows)


def _dicts(items: list[Any]) -> list[dict[str, Any]]:
    return [i.to_dict() for i in items]


@app.command(context_settings={"ignore_unknown_options": True})
def send(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="paying wallet"),
    to: str = typer.Argument(..., help="wallet name or 0x address"),
    amount: str = typer.Argument(..., help='with its token: "12.5 USDC" or "0.1 ETH"'),
    token: str | None = typer.Argument(None, help="the token, when not in AMOUNT"),
    approve: bool = typer.Option(
        False, "--approve", help="approve a spend above the threshold (else asked at a terminal)"
    ),
    idempotency_key: str | None = typer.Option(
        None, "--idempotency-key", help="retry-safe key: the same key never pays twice"
    ),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Pay from a wallet, under its spending policy, exactly once.

    Example: bazaar wallet send alice bob "12.5 USDC" --idempotency-key invoice-7
    """
    from agentbazaar.wallet import KeyStore, PolicyStore

    cfg = run_context(ctx).config
    KeyStore(cfg.keystore_dir).require(name)  # UnknownWallet before anything else
    chain, tokens = _tokens(cfg)
    tok, units = parse_amount(tokens, amount, token)
    wallet = open_wallet(ctx, name)
    recipient = wallet.resolve(to)
    if not PolicyStore(cfg.policy_dir).exists(name):
        err_console.print(
            f"warning: wallet {name} has no spending policy file: it is UNLIMITED "
            f"(set limits with `bazaar wallet policy {name}`)",
            highlight=False,
            markup=False,
        )
    approved = approve or _ask_approval(wallet.policy, tok, units, recipient)
    with waiting(f"sending {tok.format(units)}..."):
        result = wallet.send(
            chain,
            recipient,
            units,
            None if tok.is_native else tok,
            idempotency_key=idempotency_key,
            approve=approved,
        )
    if json_out:
        emit_json(result.to_dict())
        return
    again = " (already paid under this key: nothing sent again)" if result.replayed else ""
    console.print(
        f"sent {tok.format(units)} from {name} to {recipient}: tx {result.tx_hash} "
        f"in block {result.block_number}{again}"
    )


def _ask_approval(pol: SpendingPolicy, tok: Token, units: int, to: str) -> bool:
    """Above the threshold without --approve: ask at a terminal; elsewhere the policy refuses."""
    limits = pol.limits_for(tok.address or "native")
    if limits is None or limits.approve_above is None or units <= limits.approve_above:
        return False
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    return bool(
        typer.confirm(f"approve paying {tok.format(units)} to {to}?", default=False, err=True)
    )


@app.command()
def policy(
    ctx: typer.Context,
    name: str,
    max_per_payment: list[str] = typer.Option([], "--max-per-payment", help='e.g. "5 USDC"'),
    daily: list[str] = typer.Option(
        [], "--daily", "--daily-budget", help='rolling 24 h budget, e.g. "50 USDC"'
    ),
    approve_above: list[str] = typer.Option(
        [], "--approve-above", help='spends above this need --approve, e.g. "2 USDC"'
    ),
    max_escrow: list[str] = typer.Option(
        [], "--max-escrow", help='most held in payment-channel deposits at once, e.g. "20 USDC"'
    ),
    allow: list[str] = typer.Option([], "--allow", help="only pay these (wallet or address)"),
    deny: list[str] = typer.Option([], "--deny", help="never pay these (wallet or address)"),
    clear: list[str] = typer.Option([], "--clear", help="remove every limit of a token"),
    unlisted: str | None = typer.Option(None, "--unlisted-tokens", help="allow | deny"),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Show or change a wallet's spending policy (amounts are human; stored as base units).

    Example: bazaar wallet policy alice --max-per-payment "5 USDC" --daily "50 USDC"
    """
    from agentbazaar.wallet import KeyStore, PolicyStore

    cfg = run_context(ctx).config
    KeyStore(cfg.keystore_dir).require(name)  # UnknownWallet
    store = PolicyStore(cfg.policy_dir)
    current = store.load(name)
    updated = current.with_counterparties(
        allow=tuple(resolve_target(ctx, a) for a in allow),
        deny=tuple(resolve_target(ctx, d) for d in deny),
    )
    if unlisted is not None:
        if unlisted not in ("allow", "deny"):
            raise InputError("--unlisted-tokens is 'allow' or 'deny'")
        updated = replace(updated, unlisted_tokens="allow" if unlisted == "allow" else "deny")
    if max_per_payment or daily or approve_above or max_escrow or clear:
        _, tokens = _tokens(cfg)
        for tok_name in clear:
            tok = tokens.get(tok_name)
            rest = {k: v for k, v in updated.tokens.items() if k != _key(tok)}
            updated = replace(updated, tokens=rest)
        for field_name, values in (
            ("max_per_payment", max_per_payment),
            ("daily", daily),
            ("approve_above", approve_above),
            ("max_escrow", max_escrow),
        ):
            for text in values:
                tok, units = _limit(tokens, text)
                updated = updated.with_limits(
                    tok.address or "native", tok.symbol, tok.decimals, **{field_name: units}
                )
    if updated != current:
        store.save(name, updated)
    _show_policy(name, updated, json_out, unlimited=not store.exists(name))


def _key(tok: Token) -> str:
    return (tok.address or "native").lower()


def _limit(tokens: TokenRegistry, text: str) -> tuple[Token, int]:
    parts = text.split()
    if len(parts) != 2:
        raise InputError(f"write a limit with its token, like '5 USDC', not {text!r}")
    tok = tokens.get(parts[1])
    return tok, parse_units(parts[0], tok.decimals, allow_zero=True)


def _show_policy(name: str, pol: SpendingPolicy, json_out: bool, *, unlimited: bool) -> None:
    if json_out:
        emit_json({"wallet": name, "unlimited": unlimited, **pol.to_dict()})
        return
    if unlimited:
        console.print(
            f"wallet {name} has no spending policy file: it is UNLIMITED (any amount of any "
            f"token). Set limits, e.g. `bazaar wallet policy {name} --max-per-payment "
            '"100 USDC" --daily "250 USDC" --unlisted-tokens deny`',
            highlight=False,
            markup=False,
        )
        return
    rows = []
    for key, lim in sorted(pol.tokens.items(), key=lambda kv: kv[1].symbol):

        def fmt(v: int | None, d: int = lim.decimals, s: str = lim.symbol) -> str:
            return "-" if v is None else f"{format_units(v, d)} {s}"

        rows.append(
            [
                lim.symbol,
                fmt(lim.max_per_payment),
                fmt(lim.daily),
                fmt(lim.approve_above),
                fmt(lim.max_escrow),
                key,
            ]
        )
    emit_table(
        f"spending policy of {name}",
        ["token", "max per payment", "per 24 h", "approve above", "max escrow", "address"],
        rows,
    )
    console.print(
        f"allow: {', '.join(sorted(pol.allow)) or 'anyone'}   deny: "
        f"{', '.join(sorted(pol.deny)) or 'nobody'}   unlisted tokens: {pol.unlisted_tokens}"
    )


@app.command()
def ledger(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="only this wallet"),
    do_reconcile: bool = typer.Option(False, "--reconcile", help="compare with the chain"),
    rebroadcast: bool = typer.Option(
        False, "--rebroadcast", help="with --reconcile: re-send signed but unsent transactions"
    ),
    escrow: bool = typer.Option(
        False, "--escrow", help="only what each wallet holds in channel escrow, per token"
    ),
    json_out: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """The spend ledger and the escrow held in payment channels (deposits - refunds - charges);
    with --reconcile, each signed/settled entry checked on chain.

    Examples: bazaar wallet ledger alice --reconcile;
    bazaar wallet ledger alice --escrow --json   ({"escrowed": [{wallet, symbol, units, ...}]})
    """
    from agentbazaar.wallet import KeyStore, Ledger, reconcile

    cfg = run_context(ctx).config
    if name is not None:
        KeyStore(cfg.keystore_dir).require(name)
    book = Ledger(cfg.ledger_path)
    if not do_reconcile:
        records = book.records(name)
        held = _escrowed(cfg, book, records) if escrow or not json_out else []
        if json_out:
            if escrow:
                emit_json({"escrowed": held})
            else:
                emit_json([r.to_dict() for r in records])
            return
        if not escrow:
            _ledger_table(records)
        if held or escrow:
            held_rows = [
                [h["wallet"], h["symbol"] or "unknown token", _held(h), h["token"]] for h in held
            ]
            emit_table("escrowed", ["wallet", "token", "escrowed", "address"], held_rows)
        return
    chain = connect(cfg)
    with waiting("reconciling with the chain..."):
        findings = reconcile(book, chain, wallet=name, rebroadcast=rebroadcast)
    bad = [f for f in findings if f.outcome in ("mismatch", "missing")]
    if json_out:
        emit_json(
            {"chain_id": chain.chain_id, "findings": _dicts(findings), "differences": len(bad)}
        )
    else:
        rows = [
            [f.id, f.wallet, f.idempotency_key, f.before, f.after, f.outcome, f.detail]
            for f in findings
        ]
        emit_table(
            f"ledger vs chain {chain.chain_id}",
            ["id", "wallet", "key", "was", "now", "outcome", "detail"],
            rows,
        )
    if bad:
        raise LedgerError(f"{len(bad)} ledger entries differ from the chain (see above)")


def _escrowed(
    cfg: BazaarConfig, book: Ledger, records: list[SpendRecord]
) -> list[dict[str, str | int | None]]:
    """Per wallet and token that ever escrowed: what is held now (exact units and formatted).
    A token the ledger entry does not name is looked up among the known tokens; one unknown
    there too has ``symbol`` and ``decimals`` null (its amount then in units)."""
    from agentbazaar.wallet.policy import ESCROW_KINDS

    seen: dict[tuple[str, str], SpendRecord] = {}
    for r in records:
        if r.kind in ESCROW_KINDS:
            seen.setdefault((r.wallet, r.token), r)
    tokens = known_tokens(cfg) if any(r.decimals is None for r in seen.values()) else None
    out: list[dict[str, str | int | None]] = []
    by_wallet: dict[str, dict[str, int]] = {}
    for (wallet, token), r in sorted(seen.items()):
        units = by_wallet.setdefault(wallet, book.escrowed(wallet))[token]
        symbol, decimals = r.symbol, r.decimals
        if decimals is None and tokens is not None:
            symbol, decimals = _token_facts(tokens, token)
        amount = format_units(units, decimals) if decimals is not None else str(units)
        out.append(
            {
                "wallet": wallet,
                "token": token,
                "symbol": symbol,
                "decimals": decimals,
                "units": str(units),
                "amount": amount,
            }
        )
    return out


def _held(row: dict[str, str | int | None]) -> str:
    return str(row["amount"]) if row["decimals"] is not None else f"{row['units']} units"


def _token_facts(tokens: TokenRegistry, address: str) -> tuple[str | None, int | None]:
    """The symbol and decimals of the token at ``address``, or (None, None) when unknown."""
    try:
        token = tokens.get(address)
    except UnknownTokenError:
        return None, None
    return token.symbol, token.decimals


def _ledger_table(records: list[SpendRecord]) -> None:
    rows = []
    for r in records:
        amount = (
            f"{format_units(r.amount, r.decimals)} {r.symbol}"
            if r.decimals is not None
            else f"{r.amount} units of {r.token}"
        )
        rows.append(
            [
                r.id,
                r.wallet,
                r.idempotency_key,
                r.kind,
                amount,
                r.counterparty,
                r.status,
                r.tx_hash or "-",
            ]
        )
    emit_table("ledger", ["id", "wallet", "key", "kind", "amount", "to", "status", "tx"], rows)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="wallet")
