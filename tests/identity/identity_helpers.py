"""Identity test helpers: the ERC-8004 registries and the stablecoin of the suite, freshly
deployed on a real chain (the kit's ``LocalWorld``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.identity.cards import (
    AgentConfig,
    PriceConfig,
    SkillConfig,
    build_registration,
    register_card,
    sign_card,
)
from agentbazaar.identity.contracts import IDENTITY_KEY, REPUTATION_KEY
from agentbazaar.testing import LocalWorld
from agentbazaar.tokens import TokenRegistry


@dataclass
class Registries:
    chain: Chain
    identity: Contract
    reputation: Contract
    usdc: Contract
    tokens: TokenRegistry
    deployer: LocalAccount

    def new_account(self, eth: int = 10**18) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.chain.fund_native(account.address, eth)
        return account

    def pay(self, payer: LocalAccount, to: str, units: int) -> str:
        """Mint ``units`` USDC to ``payer`` and transfer them to ``to``: a real payment."""
        self.chain.transact(self.deployer, self.usdc.functions.mint(payer.address, units))
        receipt = self.chain.transact(payer, self.usdc.functions.transfer(to, units))
        return str(receipt["transactionHash"].to_0x_hex())

    def register(
        self,
        owner: LocalAccount,
        *,
        name: str = "agent",
        skills: list[SkillConfig] | None = None,
        signer: LocalAccount | None = None,
        active: bool = True,
    ) -> int:
        """Register an agent owned by ``owner`` with a card signed by ``signer`` (default owner)."""
        signer = signer or owner
        config = AgentConfig(name=name, skills=skills or [], active=active)
        card = build_registration(config, signer.address, self.tokens, self.chain.chain_id)
        agent_id, _ = register_card(
            self.chain, self.identity, owner, sign_card(card, signer, self.chain.chain_id)
        )
        return agent_id


def skill(sid: str, price: str, *tags: str, scheme: Any = "exact") -> SkillConfig:
    return SkillConfig(
        id=sid,
        name=sid.title(),
        tags=list(tags),
        prices=[PriceConfig(token="USDC", amount=price, scheme=scheme)],
    )


def deploy_registries(chain: Chain) -> Registries:
    world = LocalWorld.deploy(chain, only=("USDC", IDENTITY_KEY, REPUTATION_KEY))
    return Registries(
        chain,
        world.suite.contract(IDENTITY_KEY),
        world.suite.contract(REPUTATION_KEY),
        world.usdc,
        world.tokens,
        world.deployer,
    )
