"""Spending policy: pure rules over plain data, checked before anything is signed.

A policy per wallet (``cfg.policy_dir/<name>.toml``)::

    window_seconds = 86400          # the rolling budget window (24 h)
    unlisted_tokens = "allow"       # tokens without a [tokens.X] table: "allow" or "deny"
    allow = ["0xabc..."]            # if non-empty, only these counterparties
    deny = ["0xdef..."]             # never these counterparties (wins over allow)

    [tokens.USDC]
    address = "0x5FbD..."           # "native" for the chain's own currency
    decimals = 6
    max_per_payment = 5000000       # integer base units (5 USDC)
    daily = 50000000                # rolling-window budget (50 USDC)
    approve_above = 2000000         # above 2 USDC a spend needs explicit approval
    max_escrow = 20000000           # at most 20 USDC held in payment-channel escrow (optional)

Rules, in the order they are checked: deny list, allow list, unlisted token, max per payment,
approval threshold (outside the ledger transaction, so an approval prompt never holds a lock),
then the rolling budget (inside the ledger's ``BEGIN IMMEDIATE`` transaction, see ``ledger``).
Tokens are told apart by address, never by symbol: a look-alike token with a known symbol is an
unlisted token (the TOML table of a symbol held by two addresses is keyed ``SYMBOL@address``).

A new wallet gets ``default_policy`` (``DEFAULT_LIMITS``: ETH at most 0.5 a payment and 1 per
24 h; USDC at most 100 a payment, 250 per 24 h and 50 in channel escrow; every other token
refused until it is given limits). A wallet without a policy file (made before defaults existed,
or by the library) has no limits: the CLI says so.

Escrow (channel deposits, kind ``"deposit"``) is a transfer of custody, not a payment: a deposit
is checked against the deny/allow lists (for the channel's receiver), the unlisted-token rule and
``max_escrow`` (what would then be escrowed, inside the ledger transaction), but NOT against
``max_per_payment``, ``approve_above`` or the rolling budget. Each charge out of the escrow (kind
``"voucher"``, its amount the increase of the channel's cumulative amount) is a payment and meets
every payment rule. See the package docstring for the invariant.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import tomli_w
from eth_typing import ChecksumAddress

from agentbazaar.errors import ApprovalRequired, ConfigError, PolicyViolation
from agentbazaar.units import format_units, parse_units

NATIVE_KEY = "native"
DAY_SECONDS = 86_400
SpendKind = Literal[
    "transfer", "x402", "deposit", "voucher", "swap", "authorization", "allowance", "deploy"
]  # fmt: skip
# "deploy": a contract deployment, a spend of the native currency (at most gas x max fee) to the
# address the contract will have; checked and counted like any payment of the native currency
SPEND_KINDS: tuple[str, ...] = (
    "transfer", "x402", "deposit", "voucher", "swap", "authorization", "allowance", "deploy"
)  # fmt: skip
ESCROW_KINDS: tuple[str, ...] = ("deposit",)  # custody moves into escrow: not a payment
RELEASE_KINDS: tuple[str, ...] = ("refund",)  # escrow returned to the payer (ledger rows only)
CHARGE_KINDS: tuple[str, ...] = ("voucher",)  # payments out of escrow
# an ERC-20 approve for the spend that follows (a swap): checked like a payment of its amount,
# but not counted in the budget, where the spend that uses it counts
ALLOWANCE_KINDS: tuple[str, ...] = ("allowance",)
LIMIT_NAMES: tuple[str, ...] = ("max_per_payment", "daily", "approve_above", "max_escrow")
# the policy of a new wallet, per token symbol, in human units of that token
DEFAULT_LIMITS: dict[str, dict[str, str]] = {
    "ETH": {"max_per_payment": "0.5", "daily": "1"},
    "USDC": {"max_per_payment": "100", "daily": "250", "max_escrow": "50"},
}


@dataclass(frozen=True)
class SpendRequest:
    """One spend as the policy sees it. ``token`` is ``"native"`` or a checksummed address."""

    wallet: str
    payer: ChecksumAddress
    kind: str
    token: str
    amount: int
    counterparty: ChecksumAddress
    idempotency_key: str
    symbol: str | None = None
    decimals: int | None = None
    chain_id: int | None = None
    memo: Mapping[str, Any] = field(default_factory=dict)

    def human(self, units: int | None = None) -> str:
        value = self.amount if units is None else units
        if self.decimals is None:
            return f"{value} base units of {self.symbol or self.token}"
        return f"{format_units(value, self.decimals)} {self.symbol or self.token}"


@dataclass(frozen=True)
class TokenLimits:
    symbol: str
    decimals: int
    max_per_payment: int | None = None
    daily: int | None = None
    approve_above: int | None = None
    max_escrow: int | None = None  # cap on what may be held in channel escrow at once


@dataclass(frozen=True)
class SpendingPolicy:
    tokens: Mapping[str, TokenLimits] = field(default_factory=dict)  # by token key
    allow: frozenset[str] = frozenset()  # lower-case addresses
    deny: frozenset[str] = frozenset()
    unlisted_tokens: Literal["allow", "deny"] = "allow"
    window_seconds: int = DAY_SECONDS

    # ---- rules (pure) ------------------------------------------------------------------------
    def limits_for(self, token: str) -> TokenLimits | None:
        return self.tokens.get(token_key(token))

    def check_static(self, req: SpendRequest) -> None:
        """Counterparty lists, unlisted tokens and the per-payment maximum."""
        who = req.counterparty.lower()
        if who in self.deny:
            raise PolicyViolation(
                f"policy of {req.wallet!r} denies paying {req.counterparty}",
                rule="deny",
                counterparty=req.counterparty,
            )
        if self.allow and who not in self.allow:
            raise PolicyViolation(
                f"policy of {req.wallet!r} allows only listed counterparties; "
                f"{req.counterparty} is not one (add it with --allow)",
                rule="allow",
                counterparty=req.counterparty,
            )
        limits = self.limits_for(req.token)
        if limits is None:
            if self.unlisted_tokens == "deny":
                raise PolicyViolation(
                    f"policy of {req.wallet!r} has no limits for {req.symbol or req.token} "
                    f"({req.token}) and refuses unlisted tokens: give it limits with "
                    f"`bazaar wallet policy {req.wallet} --max-per-payment ...`",
                    rule="unlisted_token",
                    token=req.token,
                )
            return
        if req.kind in ESCROW_KINDS:
            return  # custody, not a payment: bounded by max_escrow (check_escrow) instead
        if limits.max_per_payment is not None and req.amount > limits.max_per_payment:
            raise PolicyViolation(
                f"{req.human()} is over the per-payment maximum of "
                f"{req.human(limits.max_per_payment)} in the policy of {req.wallet!r}",
                rule="max_per_payment",
                amount=req.amount,
                limit=limits.max_per_payment,
            )

    def needs_approval(self, req: SpendRequest) -> bool:
        if req.kind in ESCROW_KINDS:
            return False  # each charge out of the escrow meets the approval threshold
        limits = self.limits_for(req.token)
        return bool(
            limits and limits.approve_above is not None and req.amount > limits.approve_above
        )

    def approval_error(self, req: SpendRequest) -> ApprovalRequired:
        limits = self.limits_for(req.token)
        threshold = limits.approve_above if limits and limits.approve_above is not None else 0
        return ApprovalRequired(
            f"{req.human()} is above the approval threshold of {req.human(threshold)} "
            f"of {req.wallet!r}: approve it explicitly (--approve)",
            rule="approve_above",
            amount=req.amount,
            limit=threshold,
        )

    def check_budget(self, req: SpendRequest, spent_in_window: int) -> None:
        """The rolling budget, given what already counts against it in the window."""
        limits = self.limits_for(req.token)
        if limits is None or limits.daily is None:
            return
        if spent_in_window + req.amount > limits.daily:
            left = max(limits.daily - spent_in_window, 0)
            raise PolicyViolation(
                f"{req.human()} would exceed the rolling budget of {req.human(limits.daily)} "
                f"per {self.window_seconds // 3600} h of {req.wallet!r} "
                f"({req.human(left)} left)",
                rule="daily",
                amount=req.amount,
                limit=limits.daily,
                spent=spent_in_window,
            )

    def check_escrow(self, req: SpendRequest, escrowed: int) -> None:
        """The escrow cap of a deposit, given what is escrowed now (deposits - refunds - charges)."""
        limits = self.limits_for(req.token)
        if limits is None or limits.max_escrow is None:
            return
        if escrowed + req.amount > limits.max_escrow:
            left = max(limits.max_escrow - escrowed, 0)
            raise PolicyViolation(
                f"a deposit of {req.human()} would exceed the escrow cap of "
                f"{req.human(limits.max_escrow)} of {req.wallet!r} ({req.human(left)} left)",
                rule="max_escrow",
                amount=req.amount,
                limit=limits.max_escrow,
                escrowed=escrowed,
            )

    # ---- editing -----------------------------------------------------------------------------
    def with_limits(self, token: str, symbol: str, decimals: int, **changes: Any) -> SpendingPolicy:
        """A copy with the limits of ``token`` changed (``None`` clears one limit)."""
        for name, value in changes.items():
            if name not in LIMIT_NAMES:
                raise ConfigError(f"unknown limit {name!r}")
            _check_units(value, name)
        key = token_key(token)
        current = self.tokens.get(key) or TokenLimits(symbol=symbol, decimals=decimals)
        updated = replace(current, symbol=symbol, decimals=decimals, **changes)
        return replace(self, tokens={**self.tokens, key: updated})

    def with_counterparties(
        self, *, allow: tuple[str, ...] = (), deny: tuple[str, ...] = ()
    ) -> SpendingPolicy:
        allow_set = set(self.allow) | {a.lower() for a in allow}
        deny_set = set(self.deny) | {d.lower() for d in deny}
        return replace(
            self, allow=frozenset(allow_set - deny_set), deny=frozenset(deny_set - set(allow))
        )

    def to_dict(self) -> dict[str, Any]:
        symbols = [lim.symbol for lim in self.tokens.values()]

        def label(key: str, lim: TokenLimits) -> str:
            return lim.symbol if symbols.count(lim.symbol) == 1 else f"{lim.symbol}@{key}"

        return {
            "window_seconds": self.window_seconds,
            "unlisted_tokens": self.unlisted_tokens,
            "allow": sorted(self.allow),
            "deny": sorted(self.deny),
            "tokens": {
                label(key, lim): {
                    "address": key,
                    "symbol": lim.symbol,
                    "decimals": lim.decimals,
                    **{
                        k: _int_out(v)
                        for k, v in (
                            ("max_per_payment", lim.max_per_payment),
                            ("daily", lim.daily),
                            ("approve_above", lim.approve_above),
                            ("max_escrow", lim.max_escrow),
                        )
                        if v is not None
                    },
                }
                for key, lim in sorted(self.tokens.items(), key=lambda kv: (kv[1].symbol, kv[0]))
            },
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "policy") -> SpendingPolicy:
        try:
            tokens: dict[str, TokenLimits] = {}
            for label, spec in dict(raw.get("tokens", {})).items():
                key = token_key(str(spec["address"]))
                if key in tokens:
                    raise ValueError(f"token {key} has two tables")
                tokens[key] = TokenLimits(
                    symbol=str(spec.get("symbol", label)),
                    decimals=int(spec["decimals"]),
                    max_per_payment=_int_in(spec.get("max_per_payment")),
                    daily=_int_in(spec.get("daily")),
                    approve_above=_int_in(spec.get("approve_above")),
                    max_escrow=_int_in(spec.get("max_escrow")),
                )
            unlisted = str(raw.get("unlisted_tokens", "allow"))
            if unlisted not in ("allow", "deny"):
                raise ValueError("unlisted_tokens must be 'allow' or 'deny'")
            window = int(raw.get("window_seconds", DAY_SECONDS))
            if window <= 0:
                raise ValueError("window_seconds must be positive")
            return cls(
                tokens=tokens,
                allow=frozenset(str(a).lower() for a in raw.get("allow", [])),
                deny=frozenset(str(d).lower() for d in raw.get("deny", [])),
                unlisted_tokens=unlisted,  # type: ignore[arg-type]
                window_seconds=window,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad spending policy in {source}: {exc}") from exc


def default_policy(known: Iterable[tuple[str, str, int]]) -> SpendingPolicy:
    """The policy of a new wallet: ``DEFAULT_LIMITS`` for each known (symbol, token key,
    decimals) it names, every other token refused (``unlisted_tokens = "deny"``)."""
    policy = SpendingPolicy(unlisted_tokens="deny")
    for symbol, key, decimals in known:
        limits = DEFAULT_LIMITS.get(symbol.upper())
        if limits is not None:
            units = {k: parse_units(v, decimals) for k, v in limits.items()}
            policy = policy.with_limits(key, symbol.upper(), decimals, **units)
    return policy


def token_key(token: str | None) -> str:
    """``"native"`` for the native currency (None or "native"), else the lower-case address."""
    if token is None or token.lower() == NATIVE_KEY:
        return NATIVE_KEY
    return token.lower()


def _check_units(value: Any, name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer of base units, got {value!r}")


def _int_in(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"amounts are integer base units, not {value!r}")
    number = int(value)  # int or a decimal string (TOML integers stop at 2**63)
    if number < 0:
        raise ValueError(f"amounts must not be negative: {value!r}")
    return number


def _int_out(value: int) -> int | str:
    return value if value < 2**63 else str(value)


class PolicyStore:
    """Policies of one data directory: ``<dir>/<wallet>.toml``, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)

    def path(self, name: str) -> Path:
        from agentbazaar.wallet.keystore import validate_name

        return self.dir / f"{validate_name(name)}.toml"

    def exists(self, name: str) -> bool:
        """Has ``name`` a policy file? (Without one a wallet has no limits.)"""
        return self.path(name).is_file()

    def load(self, name: str) -> SpendingPolicy:
        path = self.path(name)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return SpendingPolicy()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"cannot parse {path}: {exc}; fix or delete the file") from exc
        return SpendingPolicy.from_dict(raw, source=str(path))

    def save(self, name: str, policy: SpendingPolicy) -> Path:
        path = self.path(name)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(tomli_w.dumps(policy.to_dict()))
        os.replace(tmp, path)
        return path
