"""Deploying the local suite for dex tests (imported by conftest.py and the tests)."""

from __future__ import annotations

from dataclasses import dataclass

from agentbazaar.chain import Chain
from agentbazaar.config import BazaarConfig
from agentbazaar.deployment import deploy_suite
from agentbazaar.dex.onchain import Amm
from agentbazaar.suite import Suite


@dataclass
class Deployed:
    chain: Chain
    cfg: BazaarConfig
    suite: Suite
    amm: Amm


def deploy(chain: Chain, cfg: BazaarConfig) -> Deployed:
    suite = Suite.from_context(deploy_suite(chain, cfg))
    return Deployed(chain, cfg, suite, Amm.from_suite(suite))
