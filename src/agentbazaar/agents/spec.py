"""Agents declared in TOML, for ``bazaar serve AGENT.toml`` and ``bazaar agent register``.

One file layout for both (``identity.cards.read_agent_file`` checks it)::

    [agent]
    name = "minilm-honest"
    description = "MiniLM sentence embeddings with signed receipts"
    kind = "embedding-provider"     # embedding-provider | validator | assistant | contract-author
    wallet = "honest"               # keystore name in the data directory (bazaar wallet new)
    port = 8601                     # 0: a free port (then it can only be registered by serving)
    # url = "https://..."           # where it is reached, if not http://127.0.0.1:PORT

An agent bazaar does not run (one that sells its own skills) has no ``kind``; its ``[[skills]]``
(id, name, tags, ``[[skills.prices]]`` token and amount) are what its card lists, and
``bazaar agent register FILE`` registers it. A served agent's skills come from its kind.

    [embedding]                     # kind = "embedding-provider"
    price_per_1k_tokens = "0.002"   # in the payment token (USDC), parsed exactly
    mode = "honest"                 # honest | perturbed | stale (the last two for tests, demos)
    validator = "0x..."             # optional: the validator asked to check every sale

    [validator]                     # kind = "validator"
    sample_rate = 0.5

    [assistant]                     # kind = "assistant"
    validators = ["0x..."]          # validators whose verdicts the assistant trusts

    [contracts]                     # kind = "contract-author"
    price = "0.25"                  # per contract, in the payment token (USDC), parsed exactly
    examples = 25                   # property-check examples per property (default 25)

The agent's id is kept in ``<home>/agents/<name>.json`` so a restart updates the same identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.chain import to_address
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ConfigError
from agentbazaar.identity.cards import SkillConfig, read_agent_file
from agentbazaar.identity.errors import CardError
from agentbazaar.units import parse_units

Kind = Literal["embedding-provider", "validator", "assistant", "contract-author"]
MODEL_KINDS = ("embedding-provider", "validator")  # the kinds that run the embedding model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentSection(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    kind: Kind | None = None
    wallet: str = Field(min_length=1)
    port: int = Field(default=0, ge=0, le=65535)
    url: str | None = None
    # card fields an agent described by its skills may set (see identity.cards.AgentConfig)
    version: str = "1.0.0"
    image: str = ""
    active: bool = True
    supported_trust: list[str] = Field(default_factory=lambda: ["reputation"])


class EmbeddingSection(_Strict):
    price_per_1k_tokens: str = "0.002"
    mode: Literal["honest", "perturbed", "stale"] = "honest"
    validator: str | None = None


class ValidatorSection(_Strict):
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)


class AssistantSection(_Strict):
    validators: list[str] = Field(default_factory=list)


class ContractsSection(_Strict):
    price: str = "0.25"
    examples: int | None = Field(default=None, ge=1, le=1000)  # None: the skill's default


class AgentSpec(_Strict):
    agent: AgentSection
    embedding: EmbeddingSection = Field(default_factory=EmbeddingSection)
    validator: ValidatorSection = Field(default_factory=ValidatorSection)
    assistant: AssistantSection = Field(default_factory=AssistantSection)
    contracts: ContractsSection = Field(default_factory=ContractsSection)
    skills: list[SkillConfig] = Field(default_factory=list)


def load_spec(path: Path) -> AgentSpec:
    """The agent file, as an agent to serve or register."""
    try:
        raw = read_agent_file(path)
    except CardError as exc:  # a file that cannot be an agent's: a configuration error here
        raise ConfigError(str(exc)) from exc
    try:
        return AgentSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc


def load_served_spec(path: Path) -> AgentSpec:
    """The agent file of an agent bazaar runs: it has a ``kind``."""
    spec = load_spec(path)
    if spec.agent.kind is None:
        raise ConfigError(
            f"{path} describes an agent by its [[skills]] (no kind): `bazaar agent register "
            f"{path}` registers it; `bazaar serve` runs a kind = embedding-provider, validator, "
            "assistant or contract-author"
        )
    return spec


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


def _saved_id(cfg: BazaarConfig, name: str, network: Network) -> int | None:
    """The id this data directory registered the agent under on this chain's registry."""
    state = _state_path(cfg, name)
    if state.is_file():
        saved = json.loads(state.read_text())
        if saved.get("chainId") == network.chain.chain_id and saved.get("registry") == (
            network.identity_address
        ):
            return int(saved["agentId"])
    return None


def _save_id(cfg: BazaarConfig, name: str, network: Network, agent_id: int | None) -> None:
    state = _state_path(cfg, name)
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(
            {
                "agentId": agent_id,
                "chainId": network.chain.chain_id,
                "registry": network.identity_address,
            }
        )
    )
    tmp.replace(state)


def register_agent(spec: AgentSpec, cfg: BazaarConfig, network: Network, wallet: Any) -> Agent:
    """Register a served agent without serving it, with ``wallet`` (unlocked): its card names
    the URL it will serve on (``[agent] url``, else http://127.0.0.1:PORT), and ``bazaar serve``
    later updates the same identity. Its kind's model is not loaded."""
    a = spec.agent
    if a.kind is None:
        raise ConfigError("an agent without a kind is registered from its card (its [[skills]])")
    if a.url is None and not a.port:
        raise ConfigError(
            f"agent {a.name!r} has port = 0 (a free port when served) and no url: give it a port "
            "or a url to register it before serving, or `bazaar serve` it (it registers itself)"
        )
    agent_id = _saved_id(cfg, a.name, network)
    agent, _ = _build(spec, wallet, network, cfg.home / "agents" / a.name, agent_id)
    agent.url = (a.url or f"http://127.0.0.1:{a.port}").rstrip("/")
    agent.register()
    _save_id(cfg, a.name, network, agent.agent_id)
    return agent


def start_agent(spec: AgentSpec, cfg: BazaarConfig, network: Network) -> Running:
    """Open the wallet, build the agent of ``spec``, start it (it registers itself)."""
    from agentbazaar.wallet import open_wallet

    a = spec.agent
    if a.kind is None:
        raise ConfigError(f"agent {a.name!r} has no kind: bazaar serves only its own kinds")
    wallet = open_wallet(cfg, a.wallet)
    agent_id = _saved_id(cfg, a.name, network)
    agent, extra = _build(spec, wallet, network, cfg.home / "agents" / a.name, agent_id)
    if a.kind in MODEL_KINDS:
        from agentbazaar.models.embedding import shared_model

        shared_model().load()  # before serving: the first request should not wait for it
    running = Running(agent)
    agent.start(port=a.port or None)
    _save_id(cfg, a.name, network, agent.agent_id)
    for start in extra:
        running.stoppers.append(start(agent))
    return running


def _build(
    spec: AgentSpec, wallet: Any, network: Network, data_dir: Path, agent_id: int | None
) -> tuple[Agent, list[Any]]:
    a = spec.agent
    if a.kind == "embedding-provider":
        from agentbazaar.agents.skills import EmbeddingSkill
        from agentbazaar.models.embedding import shared_model

        e = spec.embedding
        price = parse_units(e.price_per_1k_tokens, network.token.decimals)
        skill = EmbeddingSkill(shared_model(), price, mode=e.mode)
        validator = to_address(e.validator) if e.validator else None
        agent = Agent(
            a.name, wallet, network, description=a.description, skills=[skill],
            data_dir=data_dir, validator=validator, agent_id=agent_id,
        )  # fmt: skip
        return agent, []
    if a.kind == "contract-author":
        return _contract_author(spec, wallet, network, data_dir, agent_id), []
    if a.kind == "validator":
        from agentbazaar.agents.validator import Validator
        from agentbazaar.models.embedding import shared_model

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


def _contract_author(
    spec: AgentSpec, wallet: Any, network: Network, data_dir: Path, agent_id: int | None
) -> Agent:
    """An agent selling contracts written from a sentence (``agents.contracts``)."""
    from agentbazaar.agents.contracts import ContractAuthorSkill
    from agentbazaar.authoring.checks import DEFAULT_EXAMPLES

    a, c = spec.agent, spec.contracts
    price = parse_units(c.price, network.token.decimals)
    skill = ContractAuthorSkill(price, examples=c.examples or DEFAULT_EXAMPLES)
    return Agent(a.name, wallet, network, description=a.description, skills=[skill],
                 data_dir=data_dir, agent_id=agent_id)  # fmt: skip
