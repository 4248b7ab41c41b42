"""A paid MCP tool (x402 ``exact`` over MCP) beside the same tool unpaid: calls per second, one
anvil, one run.

Run: .venv/bin/python -P benchmarks/mcp_paid.py [--n 60] [--concurrency 8]

One MCP server (official ``mcp`` lowlevel ``Server``, streamable HTTP in a uvicorn thread on
127.0.0.1) with two tools running the same handler: ``quote`` priced at 0.001 USDC by
``payments.mcp.PaidTools`` over our facilitator in-process, and ``quote_free``. The buyer is our
MCP client (``payments.mcp_client.call_paid_tool``) paying through ``WalletPayer``
(``Wallet.spend``: policy, ledger, key): an unpaid call, the payment-required result, the
signature, the paid call (verify, run, settle on chain, the settlement in ``_meta``). The load
runs in a forked process, sequentially and with ``--concurrency`` clients. One JSON line per
figure: ``value`` the paid calls/s, ``reference`` the unpaid calls/s, ``ratio`` paid / unpaid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.server.lowlevel import Server

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.client import AcceptedToken
from agentbazaar.payments.facilitator import exact_facilitator
from agentbazaar.payments.mcp import PaidTools
from agentbazaar.payments.mcp_client import call_paid_tool
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.payments.server import PaymentTerms
from agentbazaar.testing import serve_in_thread
from agentbazaar.testing.bench import anvil_world, emit, in_fork
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

PRICE = "0.001"


def tool_server(paid: PaidTools) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {"pair": {"type": "string"}}}
        return types.ListToolsResult(
            tools=[types.Tool(name=n, input_schema=schema) for n in ("quote", "quote_free")]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        doc = {"pair": (params.arguments or {}).get("pair"), "price": "3150.25"}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(doc))], structured_content=doc
        )

    return Server("bench", on_list_tools=list_tools, on_call_tool=paid.wrap(call_tool))


class Load:
    """``clients`` MCP sessions making ``n`` calls in all; paid ones through a wallet each."""

    def __init__(self, url: str, env: dict[str, Any], tmp: Path) -> None:
        self.url, self.env, self.tmp = url, env, tmp

    async def _worker(self, tool: str, n: int, index: int, lat: list[float]) -> None:
        wallet = Wallet(
            f"bench{index}",
            self.env["payer"],
            SpendingPolicy(),
            Ledger(self.tmp / f"ledger-{tool}-{index}-{time.monotonic_ns()}.db"),
        )
        payer = WalletPayer(wallet)
        accepted = [AcceptedToken(self.env["network"], self.env["asset"])]
        async with Client(self.url) as client:
            for i in range(n):
                t0 = time.perf_counter()
                paid = await call_paid_tool(
                    client, tool, {"pair": f"ETH/USDC-{index}-{i}"}, payer=payer, accepted=accepted
                )
                lat.append(time.perf_counter() - t0)
                if paid.result.is_error or (tool == "quote") != (paid.payment is not None):
                    raise RuntimeError(f"{tool}: {paid.result.content}")

    def measure(self, tool: str, n: int, clients: int) -> dict[str, float]:
        lat: list[float] = []

        async def go() -> float:
            await self._worker(tool, 2, 99, [])  # warm-up: connections, the SDK's /supported
            t0 = time.perf_counter()
            await asyncio.gather(
                *(self._worker(tool, n // clients, k, lat) for k in range(clients))
            )
            return time.perf_counter() - t0

        elapsed = asyncio.run(go())
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
        return {"calls_per_s": len(lat) / elapsed, "p50_ms": 1000 * q[49], "p99_ms": 1000 * q[98]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with anvil_world(tmp, only=("USDC",)) as world:
            payer = dev_account(1)
            world.mint(payer.address, 10**12)
            token = world.usdc_token
            terms = PaymentTerms(world.chain.network, token, dev_account(3).address)
            facilitator = exact_facilitator(
                world.chain, dev_account(5), store_path=tmp / "fac.db", assets=[world.token]
            )
            paid = PaidTools(terms, facilitator, {"quote": PRICE})
            env = {"payer": payer, "network": world.chain.network, "asset": world.token}
            app = tool_server(paid).streamable_http_app(host="127.0.0.1")
            with serve_in_thread(app, loop="auto") as url:
                load = Load(f"{url}/mcp", env, tmp)
                for mode, clients in (("sequential", 1), ("concurrent", args.concurrency)):
                    free = in_fork(load.measure, "quote_free", args.n, clients)
                    bought = in_fork(load.measure, "quote", args.n, clients)
                    emit(
                        name="mcp_paid_calls",
                        scheme="exact",
                        mode=mode,
                        clients=clients,
                        value=round(bought["calls_per_s"], 1),
                        unit="calls/s",
                        p50_ms=round(bought["p50_ms"], 1),
                        p99_ms=round(bought["p99_ms"], 1),
                        reference=round(free["calls_per_s"], 1),
                        reference_p50_ms=round(free["p50_ms"], 1),
                        ratio=round(bought["calls_per_s"] / free["calls_per_s"], 2),
                    )


if __name__ == "__main__":
    main()
