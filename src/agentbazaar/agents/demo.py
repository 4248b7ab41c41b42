"""``bazaar demo``: an agent network from nothing, scripted purchases, and a report.

On the embedded chain (default, zero set-up) or a fresh anvil (``chain="local"``):

1. deploy USDC and the ERC-8004 registries; create and fund wallets;
2. start, as real HTTP services on 127.0.0.1, a validator, three embedding providers (one
   honest, one returning perturbed vectors, one returning stale vectors; the dishonest ones are
   cheaper, so a price-only buyer would prefer them) and an assistant. Each registers itself;
   on the embedded chain they are uvicorn servers in threads of this process sharing the chain;
3. give the assistant tasks in words over its A2A endpoint (JSON-RPC ``message/send``): "embed
   these 50 sentences, spend at most 0.01 USDC". It buys batch by batch over HTTP + x402; after every purchase the validator handles its new on-chain validation
   requests (re-running the model on sampled sales) so the story is deterministic;
4. show the validator catching the dishonest providers and the assistant switching away, then
   an over-budget task refused before anything is paid;
5. reconcile: every agent's USDC balance on chain equals what it was given plus what it sold
   minus what it bought; the assistant's ledger equals its receipts.

``run_demo`` returns the report (plain JSON data) and raises ``AgentError`` when the story does
not hold (a dishonest provider not caught, balances that do not reconcile).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from agentbazaar.agents.assistant import Assistant, AssistantAgent
from agentbazaar.agents.hiring import Buyer, Hire
from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet, usdc_balance
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import EmbeddingSkill, Mode
from agentbazaar.agents.validator import Validator
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.errors import AgentError, ConfigError
from agentbazaar.models.embedding import shared_model
from agentbazaar.units import format_units

ASSISTANT_FUNDS = 1_000_000  # 1 USDC
PROVIDERS: tuple[tuple[str, Mode, int], ...] = (
    # name, mode, price per 1,000 tokens in USDC base units
    ("minilm-honest", "honest", 2_000),
    ("minilm-cut-price", "perturbed", 1_000),
    ("minilm-bargain", "stale", 1_500),
)

_SUBJECTS = ("The cat", "A trader", "Our robot", "The river", "A student", "The old bridge",
             "My neighbour", "The market", "A violinist", "The server")  # fmt: skip
_ACTIONS = ("watches the rain over", "writes a long letter about", "slowly repairs",
            "dreams of", "argues with a friend about")  # fmt: skip
_OBJECTS = ("the harbour at dawn", "stablecoin payments", "a broken umbrella",
            "the price of bread", "quiet mountain villages")  # fmt: skip


def sentences(n: int, offset: int = 0) -> list[str]:
    """``n`` varied English sentences (deterministic)."""
    out = []
    for i in range(offset, offset + n):
        s = _SUBJECTS[i % len(_SUBJECTS)]
        a = _ACTIONS[(i // len(_SUBJECTS)) % len(_ACTIONS)]
        o = _OBJECTS[(i * 7 + i // 3) % len(_OBJECTS)]
        out.append(f"{s} {a} {o} (note {i}).")
    return out


@contextmanager
def _chain(kind: str, home: Path) -> Iterator[Chain]:
    if kind == "embedded":
        yield Chain.embedded()
        return
    if kind != "local":
        raise ConfigError(f"the demo runs on 'embedded' or 'local', not {kind!r}")
    from agentbazaar.chain.anvil import AnvilNode, free_port

    cfg = load_config(home, env={}).with_chain(backend="local", anvil_port=free_port())
    node = AnvilNode(cfg)
    node.start()
    try:
        yield Chain.rpc(node.running_url(), backend="local")
    finally:
        node.stop()


def run_demo(
    *,
    chain: str = "embedded",
    sample_rate: float = 1.0,
    progress: Callable[[str], None] | None = None,
    batch: int = 10,
    n_sentences: int = 50,
) -> dict[str, Any]:
    """Run the whole demo; returns the report."""
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bazaar-demo-") as tmp, ExitStack() as stack:
        home = Path(tmp)
        c = stack.enter_context(_chain(chain, home / "home"))
        say(f"chain: {chain} (chain id {c.chain_id})")
        net, minter = deploy_agent_network(c, load_config(home / "home", env={}))
        say(f"deployed USDC {net.token.address} and the ERC-8004 registries")
        model = shared_model()
        model.load()
        say(f"model {model.model_id} loaded (weights {model.weights_hash[:18]}...)")
        world = _World(net, minter, home, stack, model, sample_rate, batch)
        world.start_agents(say)
        steps = world.purchases(say, n_sentences)
        report = world.report(steps, chain, time.monotonic() - started)
        world.close()
    _check_story(report)
    return report


class _World:
    def __init__(
        self, net: Network, minter: Any, home: Path, stack: ExitStack, model: Any,
        sample_rate: float, batch: int,
    ) -> None:  # fmt: skip
        self.net, self.minter, self.home, self.stack = net, minter, home, stack
        self.model, self.sample_rate, self.batch = model, sample_rate, batch
        self.agents: list[tuple[str, Agent]] = []
        self.funded: dict[str, int] = {}
        self.mint_txs: dict[str, str | None] = {}

    def _agent(self, role: str, agent: Agent, usdc: int) -> Agent:
        self.mint_txs[agent.address] = fund(self.net, self.minter, agent.address, usdc)
        self.funded[agent.address] = usdc
        agent.start()
        self.stack.callback(agent.stop)
        self.agents.append((role, agent))
        return agent

    def start_agents(self, say: Callable[[str], None]) -> None:
        net, home = self.net, self.home
        wv = new_wallet("validator", home / "wallets", net.token)
        self.validator_agent = self._agent(
            "validator", Agent("validator", wv, net, description="re-runs sampled embedding sales",
                               data_dir=home / "validator"), 0,
        )  # fmt: skip
        self.validator = Validator(self.validator_agent, self.model, sample_rate=self.sample_rate)
        self.stack.callback(self.validator.stop)
        for name, mode, price in PROVIDERS:
            wallet = new_wallet(name, home / "wallets", net.token)
            skill = EmbeddingSkill(self.model, price, mode=mode)
            agent = Agent(
                name, wallet, net, description=f"MiniLM embeddings ({mode})", skills=[skill],
                data_dir=home / name, validator=wv.address,
            )  # fmt: skip
            self._agent(f"provider ({mode})", agent, 0)
        wa = new_wallet("assistant", home / "wallets", net.token,
                        max_per_payment=10_000, daily=100_000)  # fmt: skip
        assistant = AssistantAgent("assistant", wa, net, description="buys AI work for a person",
                                   data_dir=home / "assistant")  # fmt: skip
        self._agent("assistant", assistant, ASSISTANT_FUNDS)
        self.buyer = Buyer(assistant, validators=[wv.address])
        self.stack.callback(self.buyer.close)
        self.assistant = Assistant(assistant, self.buyer, batch=self.batch)
        assistant.assistant = self.assistant
        for role, agent in self.agents:
            say(f"{agent.name}: agent #{agent.agent_id} at {agent.url} ({role})")

    def purchases(self, say: Callable[[str], None], n: int) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        tasks = [
            (f"embed these {n} sentences, spend at most 0.01 USDC", sentences(n)),
            ("embed these 20 sentences too, spend at most 0.005 USDC", sentences(20, n)),
            ("embed these 10 sentences, spend at most 0.000001 USDC", sentences(10, n + 20)),
        ]

        def validate_then_review(hired: Hire) -> None:
            say(f"  bought {len(hired.output)} embeddings from {hired.provider.name} for "
                f"{format_units(hired.price, 6)} USDC (tx {hired.tx_hash})")  # fmt: skip
            for v in self.validator.process_pending():
                say(
                    f"  validator: {_name(self, v.provider_agent_id)} scored {v.score} ({v.reason})"
                )
            self.buyer.review(hired)
            say(f"  assistant: paid feedback {hired.feedback_value} to {hired.provider.name}")

        self.buyer.after_purchase = validate_then_review
        try:
            for text, texts in tasks:
                say(f"task: {text!r} ({len(texts)} sentences), sent to the assistant over A2A")
                result = self._ask_over_a2a(text, texts)
                for f in result["failures"]:
                    say(f"  refused: {f.get('message', f.get('error'))}")
                steps.append({"task": text, **result})
        finally:
            self.buyer.after_purchase = None
        return steps

    def _ask_over_a2a(self, text: str, texts: list[str]) -> dict[str, Any]:
        """JSON-RPC ``message/send`` to the assistant's service, as a person's client would."""
        agent = self.assistant.agent
        params = {
            "message": {
                "role": "user",
                "parts": [
                    {"kind": "text", "text": text},
                    {"kind": "data", "data": {"texts": texts}},
                ],
            }
        }
        body = {"jsonrpc": "2.0", "id": len(self.assistant.reports) + 1, "method": "message/send",
                "params": params}  # fmt: skip
        answer = httpx.post(f"{agent.url}/a2a", json=body, timeout=300).json()
        if "error" in answer:
            raise AgentError(f"the assistant refused the task: {answer['error']['message']}")
        data: dict[str, Any] = answer["result"]["artifacts"][0]["parts"][0]["data"]
        data["state"] = answer["result"]["status"]["state"]
        return data

    def report(self, steps: list[dict[str, Any]], chain: str, seconds: float) -> dict[str, Any]:
        agents = [
            {"role": role, "name": a.name, "agentId": a.agent_id, "wallet": a.address,
             "url": a.url, "registrationTx": a.registration_tx}
            for role, a in self.agents
        ]  # fmt: skip
        hires = [h for r in self.assistant.reports for h in r.hires]
        payments = [
            {"from": "assistant", "to": h.provider.name, "amount": str(h.price),
             "amountUsdc": format_units(h.price, 6), "txHash": h.tx_hash,
             "nonce": h.nonce, "tokens": h.units}
            for h in hires
        ]  # fmt: skip
        verdicts = {v.request_hash: v for v in self.validator.verdicts}
        receipts = [
            {"id": h.receipt.id, "provider": h.provider.name,
             "providerAgentId": h.provider.agent_id, "price": str(h.price),
             "inputHash": h.receipt.receipt.input_hash,
             "outputHash": h.receipt.receipt.output_hash,
             "paymentRef": h.receipt.receipt.payment_ref, "txHash": h.tx_hash,
             "verdict": verdicts[h.receipt.id].score if h.receipt.id in verdicts else None}
            for h in hires
        ]  # fmt: skip
        return {
            "chain": {"kind": chain, "chainId": self.net.chain.chain_id,
                      "usdc": self.net.token.address,
                      "identityRegistry": self.net.identity_address},
            "agents": agents,
            "tasks": steps,
            "payments": payments,
            "receipts": receipts,
            "validation": self._validation(),
            "reputation": [o.to_json() for o in self.buyer.offers("embed")],
            "balances": self._balances(hires),
            "seconds": round(seconds, 1),
        }  # fmt: skip

    def _validation(self) -> list[dict[str, Any]]:
        out = []
        for role, a in self.agents:
            if not role.startswith("provider"):
                continue
            mine = [v for v in self.validator.verdicts if v.provider_agent_id == a.agent_id]
            out.append({
                "provider": a.name, "agentId": a.agent_id, "mode": role,
                "validated": len(mine), "passed": sum(v.score == 100 for v in mine),
                "failed": sum(v.score < 100 for v in mine),
                "verdicts": [v.to_json() for v in mine],
            })  # fmt: skip
        return out

    def _balances(self, hires: list[Any]) -> list[dict[str, Any]]:
        received: dict[str, int] = {}
        for h in hires:
            received[h.provider.wallet] = received.get(h.provider.wallet, 0) + h.price
        spent = sum(h.price for h in hires)
        out = []
        for role, a in self.agents:
            expected = self.funded[a.address] + received.get(a.address, 0)
            if role == "assistant":
                expected -= spent
            onchain = usdc_balance(self.net, a.address)
            out.append({
                "name": a.name, "wallet": a.address, "usdc": str(onchain),
                "usdcHuman": format_units(onchain, 6), "expected": str(expected),
                "reconciled": onchain == expected,
            })  # fmt: skip
        ledger = self.assistant.agent.wallet.ledger
        settled = sum(r.amount for r in ledger.records("assistant", statuses=("settled",)))
        out.append({
            "name": "assistant ledger (settled spends)", "wallet": self.assistant.agent.address,
            "usdc": str(settled), "usdcHuman": format_units(settled, 6), "expected": str(spent),
            "reconciled": settled == spent,
        })  # fmt: skip
        return out

    def close(self) -> None:
        self.stack.close()


def _name(world: _World, agent_id: int) -> str:
    return next((a.name for _r, a in world.agents if a.agent_id == agent_id), f"#{agent_id}")


def _check_story(report: dict[str, Any]) -> None:
    for entry in report["validation"]:
        dishonest = "honest" not in entry["mode"]
        if dishonest and entry["validated"] and not entry["failed"]:
            raise AgentError(f"the validator did not catch {entry['provider']}")
        if not dishonest and entry["failed"]:
            raise AgentError(f"the validator failed the honest provider {entry['provider']}")
    bad = [b["name"] for b in report["balances"] if not b["reconciled"]]
    if bad:
        raise AgentError(f"balances do not reconcile with the chain for: {', '.join(bad)}")
