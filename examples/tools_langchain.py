"""The product as agent tools: a ``Toolbox`` over a wallet, and the same tools as LangChain tools.

    python examples/tools_langchain.py        # needs the extra: pip install 'agentbazaar[langchain]'

The toolbox runs on an in-process chain with the suite's USDC and an in-memory wallet whose
policy allows at most 5 USDC a payment and asks for approval above 1 USDC. The tools are called
as a model would call them, through LangChain's own ``invoke`` (no model, no network): the
spend above the threshold goes to the ``approve`` callback; a spend above the policy is refused
and the refusal comes back to the model as ``{"error": ..., "message": ...}``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from eth_account import Account

from agentbazaar.chain import Chain
from agentbazaar.testing import LocalWorld
from agentbazaar.tools import Toolbox
from agentbazaar.tools.langchain import langchain_tools
from agentbazaar.wallet import Ledger, SpendingPolicy, SpendRequest, TokenLimits, Wallet


def main() -> None:
    world = LocalWorld.deploy(Chain.embedded())
    key = world.new_account(usdc=10_000_000)  # 10 USDC and gas money
    limits = TokenLimits("USDC", 6, max_per_payment=5_000_000, approve_above=1_000_000)
    policy = SpendingPolicy(tokens={world.token.lower(): limits})
    friend = Account.create().address
    with tempfile.TemporaryDirectory() as scratch:
        wallet = Wallet("alice", key, policy, Ledger(Path(scratch) / "ledger.sqlite"))
        box = Toolbox(
            world.cfg,
            wallet="alice",
            chain=world.chain,
            suite=world.suite,
            wallets={"alice": wallet},
        )
        print("send 0.5:", box.call("send", {"to": friend, "amount": "0.5 USDC"})["status"])

        def approve(request: SpendRequest) -> bool:  # asked for spends above approve_above
            print("approval asked:", request.kind, request.amount, request.symbol)
            return True

        tools = {tool.name: tool for tool in langchain_tools(box, approve=approve)}
        sent = json.loads(tools["send"].invoke({"to": friend, "amount": "2 USDC"}))
        print("send 2:", sent["status"])
        refused = json.loads(tools["send"].invoke({"to": friend, "amount": "7 USDC"}))
        print("send 7:", refused["error"])
    print("friend balance:", world.balance(friend), "base units")


if __name__ == "__main__":
    main()
