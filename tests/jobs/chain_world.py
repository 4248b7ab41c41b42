"""The job contracts on a web3 chain (embedded py-evm or anvil) and wallets to use them with:
the setting of the Python client's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.jobs import JobMarket, Staking
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
        self.deployer = dev_account(0)
        self.chain.fund_native(self.deployer.address, 10**21)
        self.usdc = self._deploy("Stablecoin", "USD Coin", "USDC", "USD Coin", "2")
        identity = self._deploy("IdentityRegistry", "agentbazaar Agent", "AGENT")
        self.identity = identity
        self.reputation = self._deploy("ReputationRegistry", identity.address)
        self.validation = self._deploy("ValidationRegistry", identity.address)
        stake = self._deploy("StakeRegistry", self.usdc.address, UNBOND, 10 * USDC, 50 * USDC)
        self.gate = self._deploy("FeedbackGate", self.usdc.address, self.reputation.address)
        escrow = self._deploy(
            "JobEscrow", self.usdc.address, stake.address, self.gate.address,
            self.validation.address, FEE, list(PERIODS), self.committee_size,
        )  # fmt: skip
        self.chain.transact(self.deployer, stake.functions.link(escrow.address))
        self.chain.transact(self.deployer, self.gate.functions.setMinter(escrow.address, True))
        self.market = JobMarket(self.chain, escrow.address)
        self.staking = Staking(self.chain, stake.address)
        self.ledger = Ledger(self.tmp / "ledger.sqlite")

    def _deploy(self, name: str, *args: Any) -> Contract:
        art = compile_contract(name)
        contract, _ = self.chain.deploy(self.deployer, art.abi, art.bytecode, *args, name=name)
        return contract

    def wallet(self, name: str, usdc: int = 0, policy: SpendingPolicy | None = None) -> Wallet:
        """A wallet with gas money and ``usdc`` base units, sharing one ledger file."""
        account = Account.create()
        self.chain.fund_native(account.address, 10**18)
        if usdc:
            self.mint(account.address, usdc)
        wallet = Wallet(name, account, policy or SpendingPolicy(), self.ledger)
        self.wallets[name] = wallet
        return wallet

    def mint(self, to: str, amount: int) -> None:
        self.chain.transact(self.deployer, self.usdc.functions.mint(to, amount))

    def balance(self, who: Any) -> int:
        return int(self.usdc.functions.balanceOf(getattr(who, "address", who)).call())
