"""Run an agent that sells a skill, and give it a paid task over A2A, on an in-process chain.

    python examples/agent_ask.py

The seller is an ``Agent``: a wallet, an ERC-8004 identity (registered on start), a priced
skill (``UppercaseSkill``: 0.002 USDC a task, needs no model) and a FastAPI service on
127.0.0.1 with its signed A2A card. The buyer gives it a task with ``ask``: the agent answers
``input-required`` with its x402 requirement, the buyer pays it through its wallet's policy and
ledger in the next message, and gets the answer with a receipt signed by the agent.
``bazaar ask AGENT_URL "TASK"`` does the same from the shell.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from agentbazaar.agents.asking import ask
from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet
from agentbazaar.agents.runtime import Agent
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.testing import UppercaseSkill

PRICE = 2_000  # 0.002 USDC in base units


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        # USDC and the three ERC-8004 registries on a fresh embedded chain
        net, minter = deploy_agent_network(Chain.embedded(), load_config(home, env={}))
        seller_wallet = new_wallet("upper", home / "wallets", net.token)
        fund(net, minter, seller_wallet.address, 0)  # gas money to register itself
        buyer = new_wallet("buyer", home / "wallets", net.token, max_per_payment=10_000)
        fund(net, minter, buyer.address, 1_000_000)  # 1 USDC
        agent = Agent("upper", seller_wallet, net, skills=[UppercaseSkill(PRICE)])
        with agent:
            url = agent.start()  # serves on a free port, then registers on chain
            print("agent", agent.agent_id, "serving at", url)
            token = net.token
            answer = ask(
                url,
                "make me loud",
                payer=WalletPayer(buyer, tokens={str(token.address): token}),
                network=net.chain.network,
                token=token,
                chain_id=net.chain.chain_id,
                max_price=PRICE,
            )
        assert answer.paid is not None and answer.receipt is not None
        print("state:", answer.state, "answer:", answer.result["upper"])
        print("paid:", answer.paid.amount, "base units to", answer.paid.pay_to)
        print("receipt:", answer.receipt.id)


if __name__ == "__main__":
    main()
