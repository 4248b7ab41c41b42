"""The job contracts on a web3 chain (embedded py-evm or anvil), deployed from the contract
suite by the test kit with this file's terms in ``[jobs]``, and wallets to use them with: the
setting of the Python client's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentbazaar.chain import Chain
from agentbazaar.config import BazaarConfig
from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY, VALIDATION_KEY
from agentbazaar.identity.tickets import GATE_KEY
from agentbazaar.jobs import JobMarket, Staking
from agentbazaar.testing import LocalWorld
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

USDC = 10**6
FEE = USDC
# dispute window, draw period, commit period, reveal period (seconds)
PERIODS = (3_600, 1_800, 600, 600)
UNBOND = 86_400


@dataclass
class ChainWorld:
    chain: Chain
    tmp: Path
    committee_size: int = 3
    wallets: dict[str, Wallet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        window, draw, commit, reveal = PERIODS
        terms = {
            "dispute_fee": FEE, "dispute_window": window, "draw_period": draw,
            "commit_period": commit, "reveal_period": reveal,
            "committee_size": self.committee_size, "unbond_delay": UNBOND,
            "min_provider_stake": 10 * USDC, "min_validator_stake": 50 * USDC,
        }  # fmt: skip
        cfg = BazaarConfig(home=self.tmp / "home", extra={"jobs": terms})
        self.world = LocalWorld.deploy(self.chain, only=("JobEscrow",), cfg=cfg)
        suite = self.world.suite
        self.deployer, self.usdc = self.world.deployer, self.world.usdc
        self.identity = suite.contract(IDENTITY_KEY)
        self.reputation = suite.contract(REPUTATION_KEY)
        self.validation = suite.contract(VALIDATION_KEY)
        self.gate = suite.contract(GATE_KEY)
        self.market = JobMarket.from_suite(suite)
        self.staking = Staking(self.chain, self.market.terms.stake_registry)
        self.ledger = Ledger(self.tmp / "ledger.sqlite")

    def wallet(self, name: str, usdc: int = 0, policy: SpendingPolicy | None = None) -> Wallet:
        """A wallet with gas money and ``usdc`` base units, sharing one ledger file."""
        account = self.world.new_account(usdc=usdc)
        wallet = Wallet(name, account, policy or SpendingPolicy(), self.ledger)
        self.wallets[name] = wallet
        return wallet

    def mint(self, to: str, amount: int) -> None:
        self.world.mint(to, amount)

    def balance(self, who: Any) -> int:
        return self.world.balance(getattr(who, "address", who))
