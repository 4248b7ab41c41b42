"""Fixtures for the token contract tests."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from token_helpers import deploy_stablecoin


@pytest.fixture
def minter() -> str:
    return str(boa.env.generate_address("minter"))


@pytest.fixture
def usdc(minter: str) -> Any:
    return deploy_stablecoin(minter)
