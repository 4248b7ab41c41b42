"""The assistant: the buyer a person talks to.

Given a task in plain words and the material, e.g. ``"embed these 50 sentences, spend at most
0.01 USDC"`` with 50 sentences, it works out the skill and the budget (exact decimal parsing to
base units), hires providers batch by batch through ``Buyer`` (which avoids providers that
trusted validators failed and picks the cheapest trusted quote), never commits more than what
is left of the budget to one purchase, and reports what it bought, from whom, for how much, with
the receipt ids and settlement transactions.

Over the A2A endpoint it takes a JSON-RPC ``message/send`` with a text part (the task) and a data
part ``{"texts": [...]}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agentbazaar.agents.errors import BadReceipt, ProviderUnavailable
from agentbazaar.agents.hiring import Buyer, Hire
from agentbazaar.agents.protocol import a2a_task, data_parts, text_parts
from agentbazaar.agents.runtime import Agent
from agentbazaar.errors import AgentError, BazaarError, InputError, IntentError

_BUDGET = re.compile(
    r"(?:spend|pay|budget)\s+(?:at\s+most|up\s+to|no\s+more\s+than|of)?\s*"
    r"\$?([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)?",
    re.IGNORECASE,
)
_EMBED = re.compile(r"\bembed", re.IGNORECASE)
DEFAULT_BATCH = 25
ASSISTANT_NEEDS = 'the assistant takes a text part (the task) and a data part {"texts": [...]}'


@dataclass(frozen=True)
class Task:
    skill: str
    texts: list[str]
    budget: int  # base units of the agent's payment token


@dataclass
class Report:
    task: Task
    hires: list[Hire] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def spent(self) -> int:
        return sum(h.price for h in self.hires)

    @property
    def embedded(self) -> int:
        return sum(len(h.output) for h in self.hires)

    def to_json(self) -> dict[str, Any]:
        return {
            "skill": self.task.skill,
            "texts": len(self.task.texts),
            "embedded": self.embedded,
            "budget": str(self.task.budget),
            "spent": str(self.spent),
            "purchases": [h.to_json() for h in self.hires],
            "failures": self.failures,
        }


def parse_task(text: str, texts: list[str], *, token_symbol: str, decimals: int) -> Task:
    """Understand "embed these N sentences, spend at most X TOKEN" (amount parsed exactly)."""
    from agentbazaar.units import parse_units

    if not _EMBED.search(text):
        raise IntentError(
            "I can only buy embeddings for now: say e.g. 'embed these sentences, "
            "spend at most 0.01 USDC'"
        )
    match = _BUDGET.search(text)
    if match is None:
        raise IntentError("say how much I may spend, e.g. 'spend at most 0.01 USDC'")
    symbol = (match.group(2) or token_symbol).upper()
    if symbol != token_symbol.upper():
        raise IntentError(f"I pay in {token_symbol}, not {symbol}")
    budget = parse_units(match.group(1), decimals)
    if budget <= 0:
        raise IntentError("the budget must be positive")
    if not texts:
        raise InputError("give me the sentences to embed")
    return Task("embed", list(texts), budget)


class Assistant:
    """Carries out tasks for a person with its agent's wallet."""

    def __init__(self, agent: Agent, buyer: Buyer, *, batch: int = DEFAULT_BATCH) -> None:
        if batch <= 0:
            raise InputError("batch size must be positive")
        self.agent = agent
        self.buyer = buyer
        self.batch = batch
        self.reports: list[Report] = []

    def ask(self, text: str, texts: list[str]) -> Report:
        task = parse_task(
            text, texts, token_symbol=self.agent.token.symbol, decimals=self.agent.token.decimals
        )
        return self.run(task)

    def run(self, task: Task) -> Report:
        report = Report(task)
        self.reports.append(report)
        for start in range(0, len(task.texts), self.batch):
            chunk = task.texts[start : start + self.batch]
            left = task.budget - report.spent
            if left <= 0:
                report.failures.append({"batch": start, "error": "budget exhausted"})
                break
            try:
                report.hires.append(self.buyer.hire(task.skill, {"texts": chunk}, left))
            except (BadReceipt, ProviderUnavailable) as exc:
                report.failures.append({"batch": start, **exc.to_dict()})  # try another provider
            except BazaarError as exc:
                report.failures.append({"batch": start, **exc.to_dict()})
                break
        return report


class AssistantAgent(Agent):
    """An ``Agent`` whose ``message/send`` takes a task in words (text part) + data part."""

    assistant: Assistant | None = None

    def handle_message(self, params: Any) -> dict[str, Any]:
        if self.assistant is None:
            raise AgentError("the assistant is not ready")
        texts = next(iter(data_parts(params)), {}).get("texts")
        words = text_parts(params)
        if not words or not isinstance(texts, list):
            raise InputError(ASSISTANT_NEEDS)
        text = words[0]
        report = self.assistant.ask(text, texts)
        state = "completed" if not report.failures else "failed"
        return a2a_task(state, report.to_json())
