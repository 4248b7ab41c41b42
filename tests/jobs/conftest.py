"""Fixtures for job tests: the job contracts on titanoboa's EVM, deployed once per module and
rolled back after each test (``boa.env.anchor``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boa
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from escrow_world import World


@pytest.fixture(scope="module")
def _module_world() -> World:
    return World()


@pytest.fixture
def world(_module_world: World) -> Iterator[World]:
    with boa.env.anchor():
        yield _module_world
