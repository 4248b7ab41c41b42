"""The agent network the tests build: embedded chain, real model, agents on loopback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentbazaar.agents.hiring import Buyer
from agentbazaar.agents.provision import fund, new_wallet
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import EmbeddingSkill, Mode, Skill
from agentbazaar.models.embedding import EmbeddingModel
from agentbazaar.wallet import Wallet

BUYER_FUNDS = 1_000_000


@dataclass
class World:
    net: Network
    minter: object
    home: Path
    model: EmbeddingModel
    agents: list[Agent] = field(default_factory=list)

    def wallet(self, name: str, usdc: int = 0, **limits: int) -> Wallet:
        wallet = new_wallet(name, self.home / "wallets", self.net.token, **limits)
        fund(self.net, self.minter, wallet.address, usdc)  # type: ignore[arg-type]
        return wallet

    def agent(
        self,
        name: str,
        *,
        skills: list[Skill] | None = None,
        validator: str | None = None,
        usdc: int = 0,
        cls: type[Agent] = Agent,
        **limits: int,
    ) -> Agent:
        agent = cls(
            name,
            self.wallet(name, usdc, **limits),
            self.net,
            skills=skills,
            data_dir=self.home / name,
            validator=validator,
        )
        self.agents.append(agent)
        agent.start()
        return agent

    def provider(
        self, name: str, price: int, mode: Mode = "honest", validator: str | None = None
    ) -> Agent:
        return self.agent(
            name, skills=[EmbeddingSkill(self.model, price, mode=mode)], validator=validator
        )

    def buyer(
        self, name: str, validators: list[str], usdc: int = BUYER_FUNDS, **limits: int
    ) -> Buyer:
        return Buyer(self.agent(name, usdc=usdc, **limits), validators=validators)
