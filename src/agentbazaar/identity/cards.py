"""Signed agent cards: the ERC-8004 registration file and the A2A agent card.

Both documents are generated from an agent's config (:class:`AgentConfig`), carry the agent's
wallet and its skills with prices (token, amount in base units as a decimal string, scheme), and
are signed by the agent's key.

Signature scheme (``alg`` ``ES256K-EIP191``), in the shape of A2A's detached JWS signatures::

    "signatures": [{"protected": B64URL(JCS(header)), "signature": B64URL(r || s || v)}]
    header    = {"alg": "ES256K-EIP191", "kid": "eip155:<chainId>:<address>", "typ": "JOSE"}
    payload   = JCS(document without "signatures")           (RFC 8785 canonical JSON)
    signed    = EIP-191 personal_sign of ASCII(protected + "." + B64URL(payload))

A verifier recovers the address from the signature (no public key needed), checks that it equals
the ``kid`` and the document's ``wallet``, and the discovery index further checks that this wallet
is the agent's on-chain ``agentWallet``. The payload is the canonical form of the JSON exactly as
read (unknown fields included), so changing any field, known or not, breaks the signature.

Cards travel as ``data:application/json;base64,...`` URIs on local chains, or at
``https://HOST/.well-known/agent-card.json``; :func:`fetch_document` reads either with a size and
time limit.

Errors (all ``IdentityError``)::

    IdentityError
    ├── CardError              malformed JSON / fields / URI
    │   └── CardFetchError     the URI could not be read (network, size, time, scheme)
    ├── SignatureError         missing, malformed or wrong signature
    └── WalletMismatch         card wallet differs from the on-chain agentWallet
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, cast

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from web3.contract import Contract
from web3.logs import DISCARD

from agentbazaar.chain import Chain
from agentbazaar.errors import AddressError, IdentityError
from agentbazaar.identity.errors import CardError, CardFetchError, SignatureError, WalletMismatch
from agentbazaar.primitives import Address, Network, parse_address
from agentbazaar.tokens import TokenRegistry

REGISTRATION_TYPE: Final = "https://eips.ethereum.org/EIPS/eip-8004#registration-v1"
SIGNATURE_ALG = "ES256K-EIP191"
WELL_KNOWN_CARD_PATH = "/.well-known/agent-card.json"
MAX_CARD_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
_MAX_SAFE_INT = 2**53 - 1
_DIGITS = re.compile(r"^(0|[1-9]\d{0,77})$")
Scheme = Literal["exact", "batch-settlement"]


# ---- RFC 8785 canonical JSON -------------------------------------------------------------------
def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialisation of JSON data limited to what cards hold.

    Numbers must be integers within +-(2**53 - 1) (amounts travel as strings); floats are refused
    because their canonical form would depend on binary rounding.
    """
    if _plain(value):  # code-point key order == UTF-16 order: the C encoder gives RFC 8785
        return json.dumps(
            value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    return _jcs(value).encode("utf-8")


def _plain(value: Any) -> bool:
    """True for data whose RFC 8785 form equals ``json.dumps(sort_keys=True)``'s."""
    if isinstance(value, str):
        return value.isascii()
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= _MAX_SAFE_INT
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    return False


def _jcs(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise CardError(f"integer {value} is too large for canonical JSON: use a string")
        return str(value)
    if isinstance(value, float):
        raise CardError("floating-point numbers are not allowed in cards: use a string")
    if isinstance(value, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise CardError("text contains a lone surrogate character")
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, Mapping):
        keys = sorted(value.keys(), key=_utf16_key)
        for k in keys:
            if not isinstance(k, str):
                raise CardError(f"object key {k!r} is not a string")
        return "{" + ",".join(_jcs(k) + ":" + _jcs(value[k]) for k in keys) + "}"
    raise CardError(f"value of type {type(value).__name__} cannot be put in a card")


def _utf16_key(key: Any) -> bytes:
    return str(key).encode("utf-16-be", "surrogatepass")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise SignatureError("signature field is not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"signature field is not base64url: {exc}") from exc


# ---- models ------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Price(_Model):
    """One way to pay for a skill: ``amount`` base units of ``asset`` on ``network``."""

    scheme: Scheme = "exact"
    network: Network
    asset: Address
    symbol: str | None = None
    amount: str

    @field_validator("amount")
    @classmethod
    def _amount_digits(cls, v: str) -> str:
        if not _DIGITS.match(v):
            raise ValueError("amount must be base units as a decimal string, e.g. '50000'")
        return v

    @property
    def units(self) -> int:
        return int(self.amount)


class Skill(_Model):
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    prices: list[Price] = Field(default_factory=list)


class Service(_Model):
    name: str
    endpoint: str
    version: str | None = None


class RegistrationRef(_Model):
    agentId: int
    agentRegistry: str


class CardSignature(_Model):
    protected: str
    signature: str


class Interface(_Model):
    url: str
    protocolBinding: str = "JSONRPC"
    protocolVersion: str = "0.3.0"


class Capabilities(_Model):
    streaming: bool = False
    pushNotifications: bool = False
    extensions: list[dict[str, Any]] = Field(default_factory=list)


class Provider(_Model):
    organization: str
    url: str


class _Signed(_Model):
    """Fields both documents share: the wallet that signs, and the priced skills."""

    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    wallet: Address
    skills: list[Skill] = Field(default_factory=list)
    signatures: list[CardSignature] = Field(default_factory=list)


class RegistrationFile(_Signed):
    """The ERC-8004 registration file (what ``agentURI`` points at), with priced skills."""

    type: Literal["https://eips.ethereum.org/EIPS/eip-8004#registration-v1"] = REGISTRATION_TYPE
    image: str = ""
    services: list[Service] = Field(default_factory=list)
    x402Support: bool = True
    active: bool = True
    registrations: list[RegistrationRef] = Field(default_factory=list)
    supportedTrust: list[str] = Field(default_factory=lambda: ["reputation"])


class AgentCard(_Signed):
    """The A2A agent card served at ``/.well-known/agent-card.json``."""

    version: str = "1.0.0"
    supportedInterfaces: list[Interface] = Field(default_factory=list)
    provider: Provider | None = None
    capabilities: Capabilities = Field(default_factory=Capabilities)
    defaultInputModes: list[str] = Field(default_factory=lambda: ["text/plain"])
    defaultOutputModes: list[str] = Field(default_factory=lambda: ["application/json"])

    @property
    def active(self) -> bool:
        return True


Card = RegistrationFile | AgentCard


# ---- agent config -> documents -----------------------------------------------------------------
class PriceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str
    amount: str  # human amount in the token's units, e.g. "0.05"
    scheme: Scheme = "exact"


class SkillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    prices: list[PriceConfig] = Field(default_factory=list)


class AgentConfig(BaseModel):
    """What an operator writes (TOML or JSON) to describe an agent."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    description: str = ""
    version: str = "1.0.0"
    image: str = ""
    url: str | None = None  # base URL of the agent's A2A server
    wallet: str | None = None  # keystore name of the agent's key
    active: bool = True
    supported_trust: list[str] = Field(default_factory=lambda: ["reputation"])
    skills: list[SkillConfig] = Field(default_factory=list)


# the one agent file (``bazaar agent register`` and ``bazaar serve`` read the same):
#   [agent]       the card's fields below, and the runtime's ``kind`` and ``port``
#   [[skills]]    the skills a card lists (an agent described by them, not served by bazaar)
#   [embedding] / [validator] / [assistant] / [contracts]   the settings of a served agent's kind
RUNTIME_AGENT_KEYS: Final = frozenset({"kind", "port"})
AGENT_FILE_SECTIONS: Final = frozenset(
    {"agent", "skills", "embedding", "validator", "assistant", "contracts"}
)


def read_agent_file(path: Path) -> dict[str, Any]:
    """The agent file as a table, with its layout checked: ``[agent]`` holds the agent, and
    nothing but the known sections sits beside it. ``.toml`` or ``.json``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CardError(f"cannot read agent config {path}: {exc}") from exc
    try:
        raw = tomllib.loads(text) if path.suffix != ".json" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CardError(f"agent config {path} is not valid TOML/JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("agent"), dict):
        if isinstance(raw, dict) and "name" in raw:
            raise CardError(
                f"agent config {path}: put name, description, wallet and url under [agent] "
                "(one file layout for `bazaar agent register` and `bazaar serve`; skills stay "
                "[[skills]])"
            )
        raise CardError(f"agent config {path} has no [agent] table (name, description, wallet)")
    unknown = sorted(set(raw) - AGENT_FILE_SECTIONS)
    if unknown:
        raise CardError(
            f"agent config {path}: unknown section {unknown[0]!r}; known: "
            f"{', '.join(sorted(AGENT_FILE_SECTIONS))}"
        )
    return raw


def load_agent_config(path: Path) -> AgentConfig:
    """The card an agent file describes: ``[agent]``'s card fields and its ``[[skills]]``."""
    raw = read_agent_file(path)
    card = {k: v for k, v in raw["agent"].items() if k not in RUNTIME_AGENT_KEYS}
    try:
        return AgentConfig.model_validate({**card, "skills": raw.get("skills", [])})
    except ValidationError as exc:
        raise CardError(f"agent config {path} is invalid: {_first_error(exc)}") from exc


def _skills(config: AgentConfig, tokens: TokenRegistry, chain_id: int) -> list[Skill]:
    out: list[Skill] = []
    for s in config.skills:
        prices = []
        for p in s.prices:
            token = tokens.get(p.token)
            if token.address is None:
                raise CardError(f"skill {s.id!r}: price token {p.token} is not an ERC-20 token")
            prices.append(
                Price(
                    scheme=p.scheme,
                    network=f"eip155:{chain_id}",
                    asset=parse_address(token.address),
                    symbol=token.symbol,
                    amount=str(token.parse(p.amount)),
                )
            )
        out.append(
            Skill(
                id=s.id,
                name=s.name,
                description=s.description,
                tags=list(s.tags),
                examples=list(s.examples),
                prices=prices,
            )
        )
    return out


def build_registration(
    config: AgentConfig,
    wallet: str,
    tokens: TokenRegistry,
    chain_id: int,
    *,
    registrations: list[RegistrationRef] | None = None,
) -> RegistrationFile:
    services = []
    if config.url:
        base = config.url.rstrip("/")
        services.append(Service(name="A2A", endpoint=base + WELL_KNOWN_CARD_PATH, version="0.3.0"))
    return RegistrationFile(
        name=config.name,
        description=config.description,
        image=config.image,
        wallet=parse_address(wallet),
        skills=_skills(config, tokens, chain_id),
        services=services,
        active=config.active,
        registrations=registrations or [],
        supportedTrust=list(config.supported_trust),
    )


def build_agent_card(
    config: AgentConfig, wallet: str, tokens: TokenRegistry, chain_id: int
) -> AgentCard:
    interfaces = [Interface(url=config.url)] if config.url else []
    return AgentCard(
        name=config.name,
        description=config.description,
        version=config.version,
        wallet=parse_address(wallet),
        skills=_skills(config, tokens, chain_id),
        supportedInterfaces=interfaces,
    )


# ---- signing and verification ------------------------------------------------------------------
def _signing_input(protected: str, payload: Mapping[str, Any]) -> bytes:
    return (protected + "." + _b64url(canonical_json(payload))).encode("ascii")


def sign_card(card: Card, account: LocalAccount, chain_id: int) -> dict[str, Any]:
    """The card as JSON data with one ``ES256K-EIP191`` signature by ``account``.

    ``account`` must be the card's wallet: the signature is what binds the card to that wallet.
    """
    if account.address != card.wallet:
        raise SignatureError(
            f"the card's wallet is {card.wallet} but the signing key is {account.address}: "
            "sign with the agent wallet's key"
        )
    payload = card.model_dump(mode="json", exclude={"signatures"}, exclude_none=True)
    header = {"alg": SIGNATURE_ALG, "kid": f"eip155:{chain_id}:{account.address}", "typ": "JOSE"}
    protected = _b64url(canonical_json(header))
    signed = account.sign_message(encode_defunct(primitive=_signing_input(protected, payload)))
    sig = bytes(signed.signature)
    payload["signatures"] = [{"protected": protected, "signature": _b64url(sig)}]
    return payload


def card_bytes(signed: Mapping[str, Any]) -> bytes:
    """The bytes that go into a data: URI or are served over HTTP (canonical JSON)."""
    return canonical_json(signed)


def parse_card(raw: bytes | str | Mapping[str, Any]) -> Card:
    """Parse a card (registration file or A2A card) and verify its signature.

    Raises CardError for malformed JSON or fields, SignatureError for a missing or bad signature.
    """
    data = _json_object(raw)
    model: type[RegistrationFile] | type[AgentCard] = (
        RegistrationFile if "type" in data else AgentCard
    )
    try:
        card = model.model_validate(data)
    except ValidationError as exc:
        if exc.errors()[0].get("loc", ("",))[0] == "signatures":
            raise SignatureError(f"malformed signature: {_first_error(exc)}") from exc
        raise CardError(f"malformed card: {_first_error(exc)}") from exc
    verify_signature(data, card.wallet)
    return card


def verify_signature(data: Mapping[str, Any], wallet: str) -> str:
    """Check the card's signature over its canonical JSON; returns the signer (== wallet)."""
    sigs = data.get("signatures")
    if not sigs:
        raise SignatureError("the card is not signed (no 'signatures')")
    if not isinstance(sigs, list) or not isinstance(sigs[0], Mapping):
        raise SignatureError("'signatures' must be a list of {protected, signature}")
    entry = sigs[0]
    protected, sig_text = entry.get("protected"), entry.get("signature")
    if not isinstance(protected, str) or not isinstance(sig_text, str):
        raise SignatureError("signature entry needs 'protected' and 'signature' strings")
    try:
        header = _json_object(_b64url_decode(protected), what="signature header")
    except CardError as exc:
        raise SignatureError(str(exc)) from exc
    if header.get("alg") != SIGNATURE_ALG:
        raise SignatureError(
            f"unsupported signature alg {header.get('alg')!r}: need {SIGNATURE_ALG}"
        )
    kid = str(header.get("kid", ""))
    sig = _b64url_decode(sig_text)
    if len(sig) != 65:
        raise SignatureError("signature must be 65 bytes (r, s, v)")
    payload = {k: v for k, v in data.items() if k != "signatures"}
    try:
        signer = Account.recover_message(
            encode_defunct(primitive=_signing_input(protected, payload)), signature=sig
        )
    except Exception as exc:  # eth-keys raises several types for invalid points
        raise SignatureError(f"signature does not verify: {exc}") from exc
    if signer != wallet:
        raise SignatureError(f"card is signed by {signer}, not by its wallet {wallet}")
    if kid.rsplit(":", 1)[-1].lower() != signer.lower():
        raise SignatureError(f"signature header kid {kid!r} does not name the signer {signer}")
    return str(signer)


def check_wallet(card: Card, onchain_wallet: str | None) -> None:
    """The card's wallet must be the on-chain agentWallet."""
    try:
        onchain = parse_address(onchain_wallet)
    except AddressError:
        onchain = None
    if onchain is None or int(onchain, 16) == 0:
        raise WalletMismatch("the agent has no agentWallet on chain")
    if onchain != card.wallet:
        raise WalletMismatch(
            f"card wallet {card.wallet} differs from the on-chain agentWallet {onchain_wallet}"
        )


def _json_object(raw: bytes | str | Mapping[str, Any], *, what: str = "card") -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        data = json.loads(raw, parse_float=_refuse_float, parse_constant=_refuse_float)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CardError(f"{what} is not valid JSON: {exc}") from exc
    except CardError:
        raise
    if not isinstance(data, dict):
        raise CardError(f"{what} must be a JSON object, not {type(data).__name__}")
    return cast(dict[str, Any], data)


def _refuse_float(text: str) -> Any:
    raise CardError(f"floating-point number {text} is not allowed in a card: use a string")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
    return f"{loc}: {err.get('msg')}"


# ---- transport: data: URIs and https -----------------------------------------------------------
def to_data_uri(data: bytes) -> str:
    return "data:application/json;base64," + base64.b64encode(data).decode("ascii")


def from_data_uri(uri: str, *, max_bytes: int = MAX_CARD_BYTES) -> bytes:
    if not uri.startswith("data:") or "," not in uri:
        raise CardError("not a data: URI")
    head, body = uri[5:].split(",", 1)
    params = head.split(";")
    if params[0] not in ("application/json", ""):
        raise CardError(f"data: URI has media type {params[0]!r}, expected application/json")
    if len(body) > max_bytes * 4 // 3 + 8:
        raise CardFetchError(f"data: URI is larger than {max_bytes} bytes")
    if "base64" in params[1:]:
        try:
            out = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CardError(f"data: URI is not valid base64: {exc}") from exc
    else:
        out = urllib.parse.unquote_to_bytes(body)
    if len(out) > max_bytes:
        raise CardFetchError(f"data: URI is larger than {max_bytes} bytes")
    return out


def card_url(base_url: str) -> str:
    """The well-known card URL of an agent server."""
    return base_url.rstrip("/") + WELL_KNOWN_CARD_PATH


def fetch_document(
    uri: str,
    *,
    max_bytes: int = MAX_CARD_BYTES,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    allow_http_loopback: bool = True,
) -> bytes:
    """Read a card from a ``data:`` URI or an https URL (http only on loopback), bounded."""
    if uri.startswith("data:"):
        return from_data_uri(uri, max_bytes=max_bytes)
    parsed = urllib.parse.urlparse(uri)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if parsed.scheme != "https" and not (
        parsed.scheme == "http" and loopback and allow_http_loopback
    ):
        raise CardFetchError(f"unsupported card URI {uri[:80]!r}: use data: or https://")
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", uri, headers={"accept": "application/json"}) as resp,
        ):
            if resp.status_code != 200:
                raise CardFetchError(f"GET {uri} answered {resp.status_code}")
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise CardFetchError(f"card at {uri} is larger than {max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise CardFetchError(f"card at {uri} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise CardFetchError(f"cannot fetch {uri}: {type(exc).__name__}: {exc}") from exc
    return b"".join(chunks)


def resolve_card(uri: str, **limits: Any) -> Card:
    """Fetch and verify the card at ``uri`` (data: or https)."""
    return parse_card(fetch_document(uri, **limits))


# ---- publishing --------------------------------------------------------------------------------
def register_card(
    chain: Chain, identity_registry: Contract, owner: LocalAccount, signed: Mapping[str, Any]
) -> tuple[int, str]:
    """Register an agent whose agentURI is the signed card as a ``data:`` URI.

    The card is verified first (nothing is sent for a card that would be indexed as untrusted
    because of its own signature). Returns (agentId, tx hash).
    """
    card = parse_card(signed)
    uri = to_data_uri(card_bytes(signed))
    receipt = chain.transact(owner, identity_registry.functions.register(uri))
    events = identity_registry.events.Registered().process_receipt(receipt, errors=DISCARD)
    if not events:
        raise IdentityError(f"registering {card.name} emitted no Registered event")
    return int(events[0]["args"]["agentId"]), receipt["transactionHash"].to_0x_hex()
