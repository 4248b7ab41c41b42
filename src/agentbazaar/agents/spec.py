"""Agents declared in TOML, for ``bazaar serve AGENT.toml``.

::

    [agent]
    name = "minilm-honest"
    description = "MiniLM sentence embeddings with signed receipts"
    kind = "embedding-provider"     # embedding-provider | validator | assistant
    wallet = "honest"               # keystore name in the data directory (bazaar wallet new)
    port = 8601                     # 0: a free port

    [embedding]                     # kind = "embedding-provider"
    price_per_1k_tokens = "0.002"   # in the payment token (USDC), parsed exactly
    mode = "honest"                 # honest | perturbed | stale (the last two for tests, demos)
    validator = "0x..."             # optional: the validator asked to check every sale

    [validator]                     # kind = "validator"
    sample_rate = 0.5

    [assistant]                     # kind = "assistant"
    validators = ["0x..."]          # validators whose verdicts the assistant trusts

The agent's id is kept in ``<home>/agents/<name>.json`` so a restart updates the same identity.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.chain import to_address
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ConfigError
from agentbazaar.units import parse_units

Kind = Literal["embedding-provider", "validator", "assistant"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSection(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    kind: Kind
    wallet: str = Field(min_length=1)
    port: int = Field(default=0, ge=0, le=65535)


class EmbeddingSection(_Strict):
    price_per_1k_tokens: str = "0.002"
    mode: Literal["honest", "perturbed", "stale"] = "honest"
    validator: str | None = None


class ValidatorSection(_Strict):
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)


class AssistantSection(_Strict):
    validators: list[str] = Field(default_factory=list)


class AgentSpec(_Strict):
    agent: AgentSection
    embedding: EmbeddingSection = Field(default_factory=EmbeddingSection)
    validator: ValidatorSection = Field(default_factory=ValidatorSection)
    assistant: AssistantSection = Field(default_factory=AssistantSection)


def load_spec(path: Path) -> AgentSpec:
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return AgentSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc


@dataclass
class Running:
    """A started agent and what stops it."""

    agent: Agent
    stoppers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()
        self.agent.stop()


def _state_path(cfg: BazaarConfig, name: str) -> Path:
    return cfg.home / "agents" / f"{name}.json"


def receipts_path(cfg: BazaarConfig, name: str) -> Path:
    """Where a served agent keeps its receipts (``<home>/agents/<name>/receipts.sqlite``)."""
    return cfg.home / "agents" / name / "receipts.sqlite"


def start_agent(spec: AgentSpec, cfg: BazaarConfig, network: Network) -> Running:
    """Open the wallet, build the agent of ``spec``, start it (it registers itself)."""
    from agentbazaar.wallet import open_wallet

    a = spec.agent
    wallet = open_wallet(cfg, a.wallet)
    state = _state_path(cfg, a.name)
    agent_id = None
    if state.is_file():
        saved = json.loads(state.read_text())
        if saved.get("chainId") == network.chain.chain_id and saved.get("registry") == (
            network.identity_address
        ):
            agent_id = int(saved["agentId"])
    agent, extra = _build(spec, wallet, network, cfg.home / "agents" / a.name, agent_id)
    if a.kind != "assistant":
        from agentbazaar.models.embedding import shared_model

        shared_model().load()  # before serving: the first request should not wait for it
    running = Running(agent)
    agent.start(port=a.port or None)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(
        json.dumps(
            {
                "agentId": agent.agent_id,
                "chainId": network.chain.chain_id,
                "registry": network.identity_address,
            }
        )
    )
    for start in extra:
        running.stoppers.append(start(agent))
    return running


def _build(
    spec: AgentSpec, wallet: Any, network: Network, data_dir: Path, agent_id: int | None
) -> tuple[Agent, list[Any]]:
    from agentbazaar.models.embedding import shared_model

    a = spec.agent
    if a.kind == "embedding-provider":
        from agentbazaar.agents.skills import EmbeddingSkill

        e = spec.embedding
        price = parse_units(e.price_per_1k_tokens, network.token.decimals)
        skill = EmbeddingSkill(shared_model(), price, mode=e.mode)
        validator = to_address(e.validator) if e.validator else None
        agent = Agent(
            a.name, wallet, network, description=a.description, skills=[skill],
            data_dir=data_dir, validator=validator, agent_id=agent_id,
        )  # fmt: skip
        return agent, []
    if a.kind == "validator":
        from agentbazaar.agents.validator import Validator

        agent = Agent(a.name, wallet, network, description=a.description, data_dir=data_dir,
                      agent_id=agent_id)  # fmt: skip

        def run_validator(started: Agent) -> Any:
            v = Validator(started, shared_model(), sample_rate=spec.validator.sample_rate)
            v.run_in_background()
            return v.stop

        return agent, [run_validator]
    from agentbazaar.agents.assistant import Assistant, AssistantAgent
    from agentbazaar.agents.hiring import Buyer

    assistant = AssistantAgent(a.name, wallet, network, description=a.description,
                               data_dir=data_dir, agent_id=agent_id)  # fmt: skip

    def attach(started: Agent) -> Any:
        buyer = Buyer(started, validators=[to_address(v) for v in spec.assistant.validators])
        assistant.assistant = Assistant(started, buyer)
        return buyer.close

    return assistant, [attach]
