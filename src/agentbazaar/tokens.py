"""Tokens known on the current chain, by symbol or address, and human amounts ("12.5 USDC").

Sources, later ones winning: the native currency (ETH), tokens deployed by our local suite (from
the deployment manifest's ``meta``), and tokens declared in ``bazaar.toml`` (e.g. the real USDC on
an rpc chain).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from web3 import Web3

from agentbazaar.chain.deploy import Manifest
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import AmountError, UnknownTokenError
from agentbazaar.units import format_units, parse_units

NATIVE_SYMBOL = "ETH"


@dataclass(frozen=True)
class Token:
    symbol: str
    decimals: int
    address: str | None = None  # None: the chain's native currency
    eip712_name: str | None = None
    eip712_version: str | None = None

    @property
    def is_native(self) -> bool:
        return self.address is None

    def parse(self, text: str | int | Decimal) -> int:
        """Base units of an amount of this token: "0.01", or "0.01 USDC" naming this token
        (another token's symbol is refused, never converted)."""
        if not isinstance(text, str):
            return parse_units(text, self.decimals)
        amount, symbol = split_amount(text)
        if symbol is not None and symbol.upper() != self.symbol.upper():
            raise AmountError(f"{text.strip()!r} is in {symbol}; this amount is in {self.symbol}")
        return parse_units(amount, self.decimals)

    def format(self, units: int) -> str:
        return f"{format_units(units, self.decimals)} {self.symbol}"


NATIVE = Token(symbol=NATIVE_SYMBOL, decimals=18)


def split_amount(text: str) -> tuple[str, str | None]:
    """("12.5", "USDC") from "12.5 USDC" or "12.5USDC"; ("12.5", None) from "12.5"."""
    parts = text.strip().split()
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 1 and (m := re.fullmatch(r"([\d.,_]+)([A-Za-z][A-Za-z0-9.]*)", parts[0])):
        return m.group(1), m.group(2)
    if len(parts) == 1:
        return parts[0], None
    raise AmountError(f"cannot read amount {text!r}: write it like '12.5 USDC'")


class TokenRegistry:
    def __init__(self, tokens: Iterable[Token]) -> None:
        self._by_symbol: dict[str, Token] = {}
        self._by_address: dict[str, Token] = {}
        for token in tokens:
            self._by_symbol[token.symbol.upper()] = token
            if token.address:
                self._by_address[token.address.lower()] = token

    def all(self) -> list[Token]:
        return sorted(self._by_symbol.values(), key=lambda t: t.symbol)

    def get(self, symbol_or_address: str) -> Token:
        key = symbol_or_address.strip()
        token = self._by_address.get(key.lower()) if Web3.is_address(key) else None
        token = token or self._by_symbol.get(key.upper())
        if token is None:
            known = ", ".join(t.symbol for t in self.all()) or "none"
            raise UnknownTokenError(
                f"unknown token {symbol_or_address!r}; known tokens: {known}",
                token=symbol_or_address,
            )
        return token

    def parse_amount(self, text: str, default_token: str | None = None) -> tuple[Token, int]:
        """Parse "12.5 USDC" (or "12.5" with ``default_token``) into (token, base units)."""
        amount, symbol = split_amount(text)
        if symbol is None and not default_token:
            raise AmountError(f"cannot read amount {text!r}: write it like '12.5 USDC'")
        token = self.get(symbol or default_token or "")
        return token, token.parse(amount)


def registry_for(cfg: BazaarConfig, manifest: Manifest | None) -> TokenRegistry:
    tokens: list[Token] = [NATIVE]
    if manifest is not None:
        for key, dep in manifest.contracts.items():
            meta = dep.meta
            if meta.get("kind") == "token":
                tokens.append(
                    Token(
                        symbol=str(meta.get("symbol", key)).upper(),
                        decimals=int(meta["decimals"]),
                        address=Web3.to_checksum_address(dep.address),
                        eip712_name=meta.get("eip712_name"),
                        eip712_version=meta.get("eip712_version"),
                    )
                )
    for tc in cfg.tokens.values():
        tokens.append(
            Token(
                symbol=tc.symbol,
                decimals=tc.decimals,
                address=Web3.to_checksum_address(tc.address) if tc.address else None,
                eip712_name=tc.eip712_name,
                eip712_version=tc.eip712_version,
            )
        )
    return TokenRegistry(tokens)
