"""Tokens known on the current chain, by symbol or address, and human amounts ("12.5 USDC").

Sources, later ones winning: the native currency (ETH), tokens deployed by our local suite (from
the deployment manifest's ``meta``), and tokens declared in ``bazaar.toml`` (e.g. the real USDC on
an rpc chain).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

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

    def parse(self, text: str) -> int:
        return parse_units(text, self.decimals)

    def format(self, units: int) -> str:
        return f"{format_units(units, self.decimals)} {self.symbol}"


NATIVE = Token(symbol=NATIVE_SYMBOL, decimals=18)


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
        parts = text.strip().split()
        if len(parts) == 2:
            amount, symbol = parts
        elif len(parts) == 1 and default_token:
            amount, symbol = parts[0], default_token
        elif len(parts) == 1 and re.fullmatch(r"[\d.,]+[A-Za-z]+", parts[0]):
            m = re.fullmatch(r"([\d.,]+)([A-Za-z]+)", parts[0])
            assert m is not None
            amount, symbol = m.group(1), m.group(2)
        else:
            raise AmountError(f"cannot read amount {text!r}: write it like '12.5 USDC'")
        token = self.get(symbol)
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
