"""API keys for the facilitator: who may make it verify (load) and settle (spend its gas).

Server side, ``ApiKeys`` holds the SHA-256 digests of the accepted keys (never the keys) and
checks an ``Authorization: Bearer <key>`` header in constant time: the candidate is hashed and
compared with every accepted digest by ``hmac.compare_digest``, without stopping at the first
match, so neither the matching key nor a key's length shows in the timing.

Client side, ``BearerAuth`` is an ``AuthProvider`` for the x402 SDK's ``HTTPFacilitatorClient``:
it sends the key to ``/verify``, ``/settle`` and ``/supported`` (the SDK asks its provider for
headers on all three; our facilitator leaves ``/supported`` open and ignores them there).
``facilitator_client(url, api_key=...)`` builds that client (``FacilitatorHttpClient``: the SDK's
client plus ``release``, our facilitator's ``/release``, sent with the same key).

Keys are RFC 6750 tokens (letters, digits and ``-._~+/``, then optional ``=`` padding), 16 to
512 characters; ``secrets.token_urlsafe(32)`` makes a good one. No error message, log line or
``repr`` carries a key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.facilitator_client_base import AuthHeaders
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.errors import ConfigError

KEYS_ENV = "BAZAAR_FACILITATOR_API_KEYS"  # server: comma-separated accepted keys
KEY_ENV = "BAZAAR_FACILITATOR_API_KEY"  # client: the key sent to a facilitator URL
MIN_KEY_CHARS = 16
MAX_KEY_CHARS = 512
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

Refusal = Literal["missing", "malformed", "wrong_key"]


def check_key(key: str, *, where: str = "API key") -> str:
    """``key`` if it is a usable bearer token; ConfigError (without the key) otherwise."""
    if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS:
        raise ConfigError(
            f"{where} must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters, got {len(key)}"
        )
    if _TOKEN.fullmatch(key) is None:
        raise ConfigError(
            f"{where} may only hold letters, digits and -._~+/ (then '=' padding); "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return key


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (scheme case-insensitive), or
    None when the header is absent or not that shape."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


class ApiKeys:
    """The keys a facilitator accepts (empty: no authentication)."""

    __slots__ = ("_digests",)

    def __init__(self, keys: Iterable[str] = ()) -> None:
        digests: list[bytes] = []
        for i, key in enumerate(keys, 1):
            digest = _digest(check_key(key, where=f"API key #{i}"))
            if digest not in digests:
                digests.append(digest)
        self._digests: tuple[bytes, ...] = tuple(digests)

    @classmethod
    def from_sources(
        cls,
        keys: Iterable[str] = (),
        *,
        env_value: str | None = None,
        file: Path | None = None,
    ) -> ApiKeys:
        """Keys given one by one, plus a comma-separated list (``BAZAAR_FACILITATOR_API_KEYS``),
        plus a file with one key a line (blank lines and ``#`` comments skipped)."""
        found = [k.strip() for k in keys]
        if env_value:
            found += [k.strip() for k in env_value.split(",") if k.strip()]
        if file is not None:
            found += _read_key_file(file)
        return cls(found)

    def __len__(self) -> int:
        return len(self._digests)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __repr__(self) -> str:
        return f"ApiKeys(<{len(self._digests)} keys>)"

    def refusal(self, authorization: str | None) -> Refusal | None:
        """None when ``authorization`` carries an accepted key (or no keys are configured);
        otherwise why it is refused."""
        if not self._digests:
            return None
        if authorization is None:
            return "missing"
        token = bearer_token(authorization)
        if token is None:
            return "malformed"
        candidate = _digest(token)
        matched = False
        for digest in self._digests:  # no early exit: the time does not tell which key matched
            matched |= hmac.compare_digest(candidate, digest)
        return None if matched else "wrong_key"


def _read_key_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API key file {path}: {exc.__class__.__name__}") from exc
    keys = [line.strip() for line in text.splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        raise ConfigError(f"the API key file {path} holds no key")
    return keys


class BearerAuth:
    """``AuthProvider`` for the SDK's facilitator client: one bearer key on every endpoint."""

    __slots__ = ("_headers",)

    def __init__(self, key: str) -> None:
        self._headers = {"Authorization": f"Bearer {check_key(key, where='facilitator key')}"}

    def __repr__(self) -> str:
        return "BearerAuth(<key>)"

    def get_auth_headers(self) -> AuthHeaders:
        return AuthHeaders(
            verify=dict(self._headers),
            settle=dict(self._headers),
            supported=dict(self._headers),
        )


class FacilitatorHttpClient(HTTPFacilitatorClient):
    """The SDK's HTTP facilitator client plus ``release``: hand a reservation back to our
    facilitator's ``/release`` (with the settle credentials). A facilitator without that endpoint
    answers non-200 and the lease simply runs out."""

    async def release(
        self, payload: PaymentPayload, requirements: PaymentRequirements, reservation: str
    ) -> bool:
        body = self._build_request_body(
            payload.x402_version,
            payload.model_dump(by_alias=True, exclude_none=True),
            requirements.model_dump(by_alias=True, exclude_none=True),
        )
        body["reservation"] = reservation
        response = await self._get_async_client().post(
            f"{self.url}/release", headers=self._get_settle_headers(), json=body
        )
        if response.status_code != 200:
            return False
        answer = response.json()
        return isinstance(answer, dict) and answer.get("released") is True


def facilitator_client(
    url: str, *, api_key: str | None = None, timeout: float = 30.0
) -> FacilitatorHttpClient:
    """The HTTP facilitator client for ``url``, sending ``api_key`` as a bearer token."""
    auth = BearerAuth(api_key) if api_key is not None else None
    return FacilitatorHttpClient(FacilitatorConfig(url=url, timeout=timeout, auth_provider=auth))


def is_loopback_host(host: str) -> bool:
    """Is ``host`` (a bind address or a URL's host) this machine only?"""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_sent_in_clear(url: str) -> bool:
    """Would a key sent to ``url`` cross the network unencrypted (plain http, not loopback)?"""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")


def open_bind_warning(host: str, keys: ApiKeys) -> str | None:
    """The one-line warning for a facilitator bound to ``host`` with ``keys`` (None: no need)."""
    if keys or is_loopback_host(host):
        return None
    return (
        f"warning: {host} is reachable from other machines and no API key is set: anyone with a "
        f"payment authorization can make this facilitator verify and spend gas "
        f"(set --api-key, --api-key-file or {KEYS_ENV})"
    )
