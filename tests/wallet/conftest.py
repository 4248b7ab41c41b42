"""Wallet fixtures: a ledger with a hand-moved clock, wallets over dev accounts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from wallet_helpers import USDC_ADDRESS, Clock

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.tokens import Token
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet


@pytest.fixture(autouse=True)
def _cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite", clock=clock)


@pytest.fixture
def usdc_token() -> Token:
    return Token(symbol="USDC", decimals=6, address=USDC_ADDRESS)


@pytest.fixture
def make_wallet(ledger: Ledger) -> Callable[..., Wallet]:
    def make(
        policy: SpendingPolicy | None = None, *, index: int = 1, name: str = "alice"
    ) -> Wallet:
        return Wallet(name, dev_account(index), policy or SpendingPolicy(), ledger)

    return make
