"""Generated tokens per second: the model called directly vs through the HTTP service, same run.

The reference is ``LanguageModel.complete`` (in process). The service path is what an OpenAI
client does: ``POST /v1/chat/completions`` to a generation agent on loopback (JSON, and SSE
streamed), which also signs a ``GenerationReceipt``, stores the evidence and asks its validator
on chain (embedded chain); not paid yet. Also measured: the validator's re-execution of one
receipt (``Rerunner.rerun``) against the original generation, and (``--threads-compare``) the
direct rate with 1 and with 2 CPU threads. Tokens/s counts generated tokens over the wall time
of the whole request (prompt evaluation included). One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ASK = "Write a short paragraph about harbours and ships."


def _emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def _direct(model: Any, request: Any, n: int) -> float:
    rates = []
    for _ in range(n):
        started = time.perf_counter()
        done = model.complete(request)
        rates.append(done.completion_tokens / (time.perf_counter() - started))
    return statistics.median(rates)


def _service(url: str, body: dict[str, Any], n: int, *, stream: bool) -> float:
    import httpx

    rates = []
    for _ in range(n):
        started = time.perf_counter()
        if stream:
            with httpx.stream("POST", url, json={**body, "stream": True}, timeout=600) as r:
                last = [line for line in r.iter_lines() if line.startswith("data: {")][-1]
            tokens = json.loads(last[6:])["usage"]["completion_tokens"]
        else:
            tokens = httpx.post(url, json=body, timeout=600).json()["usage"]["completion_tokens"]
        rates.append(tokens / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    from agentbazaar.agents.generation import GenerationSkill
    from agentbazaar.agents.pricing import TokenPrices
    from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet
    from agentbazaar.agents.rerun import Rerunner
    from agentbazaar.agents.runtime import Agent
    from agentbazaar.chain import Chain
    from agentbazaar.config import load_config
    from agentbazaar.models import SPECS, ChatRequest, LanguageModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="1.5b", choices=["0.5b", "1.5b"])
    parser.add_argument("--n", type=int, default=3, help="requests per measurement")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threads-compare", action="store_true")
    args = parser.parse_args()
    spec = next(s for s in SPECS.values() if args.model in s.model_id.lower())
    model = LanguageModel(spec, threads=args.threads)
    model.load()
    _emit(f"generation.{args.model}.load_seconds", model.load_seconds or 0.0, "s")
    body = {"messages": [{"role": "user", "content": ASK}], "max_tokens": args.max_tokens,
            "temperature": 0, "seed": 1}  # fmt: skip
    request = ChatRequest.from_openai(body)
    direct = _direct(model, request, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        net, minter = deploy_agent_network(Chain.embedded(), load_config(home, env={}))
        wallet = new_wallet("generator", home / "wallets", net.token)
        fund(net, minter, wallet.address, 0)  # gas for its registration and validation requests
        agent = Agent("generator", wallet, net, skills=[GenerationSkill(model, TokenPrices(1, 10))])
        agent.start()
        try:
            url = f"{agent.url}/v1/chat/completions"
            http = _service(url, body, args.n, stream=False)
            sse = _service(url, body, args.n, stream=True)
            receipt = agent.receipts.query(role="issued")[-1]
        finally:
            agent.stop()
    m = f"generation.{args.model}.t{args.threads}"
    _emit(f"{m}.direct_tokens_per_s", direct, "tokens/s")
    _emit(f"{m}.http_tokens_per_s", http, "tokens/s", ratio_to_direct=round(http / direct, 3))
    _emit(f"{m}.sse_tokens_per_s", sse, "tokens/s", ratio_to_direct=round(sse / direct, 3))
    _rerun_cost(Rerunner({model.model_id: model}), receipt, model, request, m)
    if args.threads_compare:
        model.close()
        other = LanguageModel(spec, threads=2 if args.threads == 1 else 1)
        other.load()
        rate = _direct(other, request, args.n)
        _emit(f"generation.{args.model}.t{other.config.threads}.direct_tokens_per_s", rate,
              "tokens/s", **{f"ratio_to_t{args.threads}": round(rate / direct, 3)})  # fmt: skip
        other.close()


def _rerun_cost(rerunner: Any, stored: Any, model: Any, request: Any, name: str) -> None:
    from agentbazaar.agents.receipts import tokens_from_bytes

    signed = stored.signed
    tokens = tokens_from_bytes(stored.output)
    started = time.perf_counter()
    verdict = rerunner.rerun(signed.receipt, stored.texts, tokens)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.complete(request)
    original = time.perf_counter() - started
    _emit(f"{name}.validator_rerun_seconds_per_receipt", seconds, "s",
          generation_seconds=round(original, 3), ratio=round(seconds / original, 3),
          verdict=verdict.score)  # fmt: skip


if __name__ == "__main__":
    main()
