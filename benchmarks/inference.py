"""Embeddings per second through a paid agent vs calling the model directly, in the same run.

The paid path is everything a buyer does with ``Buyer.hire``: discovery sync, a quote over HTTP,
the x402 round trip (402, EIP-3009 authorization signed through the wallet policy and ledger,
verify, settle on chain), the provider's receipt signing and on-chain validation request, the
buyer's receipt verification, and its paid feedback transaction. The reference is
``EmbeddingModel.embed`` on the same batches. Also measured: the provider's HTTP route alone
(quote + paid call, without discovery and feedback), to split what HTTP + x402 cost from what
the buyer's bookkeeping costs, and four buyers' threads hiring at once (the provider embeds
concurrent requests in one batch). Embedded chain; one JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _texts(i: int, batch: int) -> list[str]:
    return [f"request {i} sentence {j}: agents pay each other for small jobs" for j in range(batch)]


def _rate(n: int, batch: int, fn: Callable[[int], None]) -> float:
    fn(-1)  # warm-up
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n * batch / (time.perf_counter() - start)


def main() -> None:
    from agentbazaar.agents.hiring import Buyer
    from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet
    from agentbazaar.agents.runtime import Agent
    from agentbazaar.agents.skills import EmbeddingSkill
    from agentbazaar.chain import Chain
    from agentbazaar.config import load_config
    from agentbazaar.models.embedding import shared_model
    from agentbazaar.payments.client import AcceptedToken, X402Auth
    from agentbazaar.payments.payers import WalletPayer

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20, help="requests per measurement")
    parser.add_argument("--batch", type=int, default=10, help="texts per request")
    args = parser.parse_args()
    n, batch = args.n, args.batch
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        net, minter = deploy_agent_network(Chain.embedded(), load_config(home, env={}))
        model = shared_model()
        model.load()
        provider = Agent(
            "bench-provider",
            new_wallet("provider", home, net.token),
            net,
            skills=[EmbeddingSkill(model, 1_000)],
            data_dir=home / "provider",
        )
        fund(net, minter, provider.address, 0)
        buyer_wallet = new_wallet("buyer", home, net.token)
        fund(net, minter, buyer_wallet.address, 10**9)
        buyer_agent = Agent("bench-buyer", buyer_wallet, net, data_dir=home / "buyer")
        provider.start()
        buyer_agent.start()
        buyer = Buyer(buyer_agent)
        try:

            def direct(i: int) -> None:
                model.embed(_texts(i, batch))

            def paid(i: int) -> None:
                buyer.hire("embed", {"texts": _texts(i, batch)}, 10**6)

            def route(i: int) -> None:
                body = {"texts": _texts(i, batch)}
                quote = buyer.http.post(f"{provider.url}/skills/embed/quote", json=body).json()
                auth = X402Auth(
                    WalletPayer(buyer_wallet, tokens={str(net.token.address): net.token}),
                    [AcceptedToken(net.chain.network, str(net.token.address))],
                    max_amount=int(quote["price"]),
                    pay_to=provider.address,
                )
                url = f"{provider.url}/skills/embed?quote={quote['quote']}"
                buyer.http.post(url, json=body, auth=auth).raise_for_status()

            def paid_parallel(i: int) -> None:
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(paid, range(4 * i, 4 * i + 4)))

            r_direct = _rate(n, batch, direct)
            r_paid = _rate(n, batch, paid)
            r_route = _rate(n, batch, route)
            r_parallel = _rate(max(1, n // 4), 4 * batch, paid_parallel)
        finally:
            buyer.close()
            provider.stop()
            buyer_agent.stop()
    for name, value in (
        ("direct_model", r_direct),
        ("paid_agent_hire", r_paid),
        ("paid_route", r_route),
        ("paid_agent_hire_4_threads", r_parallel),
    ):
        print(
            json.dumps(
                {
                    "name": f"inference.embeddings_per_s.batch{batch}.{name}",
                    "value": round(value, 1),
                    "unit": "embeddings/s",
                    "reference": "direct_model",
                    "ratio": round(value / r_direct, 3),
                }
            )
        )


if __name__ == "__main__":
    main()
