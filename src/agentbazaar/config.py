"""Typed configuration, built in one place from ``bazaar.toml``, ``BAZAAR_*`` env vars and flags.

Layout of the data directory (``BAZAAR_HOME``, default ``~/.bazaar``)::

    bazaar.toml            configuration (this module); ``default_wallet = "alice"`` names the
                           wallet of commands given no --wallet and no BAZAAR_WALLET
    keystores/NAME.json    encrypted keystore v3 files (scrypt); .addressbook.json: each name's
                           address, sealed under the passphrase (see ``wallet.keystore``)
    policies/NAME.toml     spending policy per wallet
    ledger.sqlite          the spend ledger (idempotency keys, status, tx hashes)
    init.json              which demo wallets ``bazaar init`` funded, per chain and USDC deployment
    chain/                 local anvil node: state dump, pid, port, log
    deployments/ID.json    deployment manifest per chain id
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import tomli_w

from agentbazaar.errors import ConfigError

Backend = Literal["embedded", "local", "rpc"]
BACKENDS: tuple[str, ...] = ("embedded", "local", "rpc")
DEFAULT_ANVIL_PORT = 8545
LOCAL_CHAIN_ID = 31337


@dataclass(frozen=True)
class TokenConfig:
    """A token known by symbol. ``address`` is required on rpc chains (e.g. the real USDC)."""

    symbol: str
    decimals: int
    address: str | None = None
    eip712_name: str | None = None
    eip712_version: str | None = None


@dataclass(frozen=True)
class ChainConfig:
    backend: Backend = "local"
    rpc_url: str | None = None
    chain_id: int | None = None  # expected chain id; checked on connect when set
    anvil_port: int = DEFAULT_ANVIL_PORT
    receipt_timeout: float = 60.0


@dataclass(frozen=True)
class BazaarConfig:
    home: Path
    chain: ChainConfig = field(default_factory=ChainConfig)
    tokens: dict[str, TokenConfig] = field(default_factory=dict)
    stablecoin_name: str = "USD Coin"
    stablecoin_version: str = "2"
    facilitator_url: str | None = None
    default_wallet: str | None = None  # the wallet of commands not given --wallet / BAZAAR_WALLET
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.home / "bazaar.toml"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystores"

    @property
    def policy_dir(self) -> Path:
        return self.home / "policies"

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def chain_dir(self) -> Path:
        return self.home / "chain"

    @property
    def deployments_dir(self) -> Path:
        return self.home / "deployments"

    @property
    def artifacts_dir(self) -> Path:
        """Compiled contracts, keyed by source hash: safe to share between data directories."""
        return default_cache_dir()

    def with_chain(self, **changes: Any) -> BazaarConfig:
        return replace(self, chain=replace(self.chain, **changes))


def default_cache_dir() -> Path:
    """Where compiled contracts are cached: ``$BAZAAR_ARTIFACTS``, else the user's cache dir.

    Artifacts are keyed by source hash, so one cache serves every data directory."""
    env = os.environ.get("BAZAAR_ARTIFACTS")
    if env:
        return Path(env)
    return (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentbazaar" / "artifacts"
    )


def default_home() -> Path:
    env = os.environ.get("BAZAAR_HOME")
    return Path(env).expanduser() if env else Path.home() / ".bazaar"


def load_config(
    home: Path | None = None,
    *,
    backend: str | None = None,
    rpc_url: str | None = None,
    env: dict[str, str] | None = None,
) -> BazaarConfig:
    """Build the config: file, then ``BAZAAR_*`` env vars, then explicit arguments (flags)."""
    env = dict(os.environ) if env is None else env
    home = (
        home
        or (Path(env["BAZAAR_HOME"]).expanduser() if env.get("BAZAAR_HOME") else None)
        or default_home()
    )
    raw: dict[str, Any] = {}
    path = home / "bazaar.toml"
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix or delete the file") from exc
    _check_keys(raw, path)
    chain_raw = dict(raw.get("chain", {}))
    if env.get("BAZAAR_CHAIN"):
        chain_raw["backend"] = env["BAZAAR_CHAIN"]
    if env.get("BAZAAR_RPC_URL"):
        chain_raw["rpc_url"] = env["BAZAAR_RPC_URL"]
        chain_raw.setdefault("backend", "rpc")
    if backend:
        chain_raw["backend"] = backend
    if rpc_url:
        chain_raw["rpc_url"] = rpc_url
        if not backend:
            chain_raw["backend"] = "rpc"
    chain = _chain_config(chain_raw)
    tokens = _tokens(raw.get("tokens", {}))
    stable = raw.get("stablecoin", {})
    return BazaarConfig(
        home=home,
        chain=chain,
        tokens=tokens,
        stablecoin_name=str(stable.get("name", "USD Coin")),
        stablecoin_version=str(stable.get("version", "2")),
        facilitator_url=env.get("BAZAAR_FACILITATOR_URL") or raw.get("facilitator", {}).get("url"),
        default_wallet=_default_wallet(raw.get("default_wallet")),
        extra={
            k: v
            for k, v in raw.items()
            if k not in {"chain", "tokens", "stablecoin", "default_wallet"}
        },
    )


# what bazaar.toml may hold: a misspelt key is an error, never a silently kept default
# ([jobs] is checked against its defaults where the job contracts are deployed)
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset(
        {"default_wallet", "chain", "tokens", "stablecoin", "facilitator", "dex", "jobs"}
    ),
    "chain": frozenset({"backend", "rpc_url", "chain_id", "anvil_port", "receipt_timeout"}),
    "tokens.SYMBOL": frozenset({"decimals", "address", "eip712_name", "eip712_version"}),
    "stablecoin": frozenset({"name", "version"}),
    "facilitator": frozenset({"url"}),
    "dex": frozenset({"factory", "router"}),
}


def _check_keys(raw: dict[str, Any], path: Path) -> None:
    """Refuse unknown keys and sections that are not tables, naming the nearest known key."""
    _known(raw, "", KNOWN_KEYS[""], path)
    for section in ("chain", "stablecoin", "facilitator", "dex", "jobs", "tokens"):
        if section in raw and not isinstance(raw[section], dict):
            raise ConfigError(f"[{section}] in {path} must be a table, not {raw[section]!r}")
    for section in ("chain", "stablecoin", "facilitator", "dex"):
        _known(raw.get(section, {}), section, KNOWN_KEYS[section], path)
    for symbol, spec in raw.get("tokens", {}).items():
        if not isinstance(spec, dict):
            raise ConfigError(f"[tokens.{symbol}] in {path} must be a table, not {spec!r}")
        _known(spec, f"tokens.{symbol}", KNOWN_KEYS["tokens.SYMBOL"], path)


def _known(table: dict[str, Any], section: str, known: frozenset[str], path: Path) -> None:
    unknown = sorted(set(table) - known)
    if not unknown:
        return
    where = f"[{section}]" if section else "the top level"
    near = difflib.get_close_matches(unknown[0], sorted(known), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(
        f"unknown setting {unknown[0]!r} in {where} of {path}{hint}; "
        f"known: {', '.join(sorted(known))}"
    )


def _default_wallet(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"default_wallet in bazaar.toml must be a wallet name, not {raw!r}")
    return raw


def _chain_config(raw: dict[str, Any]) -> ChainConfig:
    backend = str(raw.get("backend", "local"))
    if backend not in BACKENDS:
        raise ConfigError(f"unknown chain backend {backend!r}; use one of {', '.join(BACKENDS)}")
    rpc_url = raw.get("rpc_url")
    if backend == "rpc" and not rpc_url:
        raise ConfigError("chain backend 'rpc' needs an rpc_url (config [chain] rpc_url or --rpc)")
    try:
        chain_id = int(raw["chain_id"]) if raw.get("chain_id") is not None else None
        port = int(raw.get("anvil_port", DEFAULT_ANVIL_PORT))
        timeout = float(raw.get("receipt_timeout", 60.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad [chain] value in bazaar.toml: {exc}") from exc
    return ChainConfig(
        backend=backend,  # type: ignore[arg-type]
        rpc_url=str(rpc_url) if rpc_url else None,
        chain_id=chain_id,
        anvil_port=port,
        receipt_timeout=timeout,
    )


def _tokens(raw: dict[str, Any]) -> dict[str, TokenConfig]:
    out: dict[str, TokenConfig] = {}
    for symbol, spec in raw.items():
        if not isinstance(spec, dict) or "decimals" not in spec:
            raise ConfigError(f"token {symbol!r} in bazaar.toml needs at least 'decimals'")
        out[symbol.upper()] = TokenConfig(
            symbol=symbol.upper(),
            decimals=int(spec["decimals"]),
            address=spec.get("address"),
            eip712_name=spec.get("eip712_name"),
            eip712_version=spec.get("eip712_version"),
        )
    return out


def set_default_wallet(home: Path, name: str) -> bool:
    """Set ``default_wallet`` in ``home/bazaar.toml`` unless one is set; True if written.

    The line goes first in the file (top-level keys precede tables), so the rest of the file,
    comments included, is kept as it is."""
    path = home / "bazaar.toml"
    text = path.read_text() if path.exists() else ""
    try:
        if "default_wallet" in tomllib.loads(text):
            return False
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or delete the file") from exc
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps({"default_wallet": name}) + text)
    tmp.replace(path)
    return True


def write_default_config(
    home: Path, *, backend: str = "local", port: int = DEFAULT_ANVIL_PORT
) -> Path:
    """Create ``home`` and a default ``bazaar.toml`` if none exists; return its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "bazaar.toml"
    if not path.exists():
        doc = {
            "chain": {"backend": backend, "anvil_port": port},
            "stablecoin": {"name": "USD Coin", "version": "2"},
        }
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(doc))
        tmp.replace(path)
    return path
