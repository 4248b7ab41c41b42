"""The catalog: one description per operation (name, what it does, argument schema, how it runs).

``bazaar mcp`` lists these as MCP tools; ``agentbazaar.tools.langchain``, ``.openai_agents`` and
``.pydantic_ai`` turn the same descriptions into their framework's tools. A tool's ``run`` is a
thin call into the library; amounts in results are token units with their symbol ("0.01 USDC"),
with the exact base units beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentbazaar.tools import _market, _money, _works

if TYPE_CHECKING:
    from agentbazaar.tools._toolbox import Toolbox


@dataclass(frozen=True)
class Tool:
    """One operation of the product as a tool."""

    name: str
    description: str
    args: type[BaseModel]
    run: Callable[[Toolbox, Any], dict[str, Any]]
    spends: bool = False  # signs money out of the wallet (its policy applies)

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (the same for every framework)."""
        return self.args.model_json_schema()


TOOLS: tuple[Tool, ...] = (
    Tool("balance", "Native and token balances of the paying wallet, a wallet name or an "
         "address.", _money.BalanceArgs, _money.balance),
    Tool("send", "Send tokens or ETH from the paying wallet to a wallet name or address, under "
         "its spending policy, exactly once per idempotency key.", _money.SendArgs, _money.send,
         spends=True),
    Tool("pay", "Call a paid HTTP resource (x402): pay at most max_price from the paying wallet "
         "and return the response body.", _money.PayArgs, _money.pay, spends=True),
    Tool("channel_pay", "Call a paid HTTP resource over a batch-settlement payment channel: one "
         "deposit the first time, then one signed voucher per call.", _money.ChannelPayArgs,
         _money.channel_pay, spends=True),
    Tool("ledger", "The paying wallet's spend ledger, newest first: kind, amount, counterparty, "
         "status, transaction.", _money.LedgerArgs, _money.ledger),
    Tool("discover", "Find agents (ERC-8004) by skill, maximum price and minimum proven "
         "reputation, best score first.", _market.DiscoverArgs, _market.discover),
    Tool("hire", "Hire the best trusted agent for a skill (e.g. embed) on some texts: pays it "
         "with x402, verifies its signed receipt, gives paid feedback.", _market.HireArgs,
         _market.hire, spends=True),
    Tool("intent", "Understand a plain-English instruction and plan it (route, amounts, policy "
         "check); nothing is signed.", _market.IntentArgs, _market.intent),
    Tool("do", "Carry out a plain-English instruction (swap, send, pay an agent, balance) for the "
         "paying wallet, checked against its policy.", _market.DoArgs, _market.do, spends=True),
    Tool("contract_templates", "The contract templates a sentence can become (vesting, escrow, "
         "splitter, stream, vault, token, timelock).", _works.NoArgs, _works.contract_templates),
    Tool("contract_new", "A contract from a sentence: template filled, compiled, checked and "
         "simulated; deployed and funded by the paying wallet only with deploy=true.",
         _works.ContractNewArgs, _works.contract_new, spends=True),
    Tool("data_licences", "The licence templates a dataset can be published under.",
         _works.NoArgs, _works.data_licences),
    Tool("data_list", "The datasets in the dataset registry: CID, licence, price, publisher.",
         _works.NoArgs, _works.data_list),
    Tool("data_show", "One dataset by CID: licence, publisher, parents, contributors, payments.",
         _works.DataShowArgs, _works.data_show),
    Tool("job_create", "Create an escrowed job with the paying wallet as client: provider, "
         "evaluator, budget, expiry; nothing is escrowed until it is funded.",
         _works.JobCreateArgs, _works.job_create),
    Tool("job_list", "Escrowed jobs (all, or those a wallet is party to): state, budget, "
         "parties, expiry.", _works.JobListArgs, _works.job_list),
    Tool("job_show", "One escrowed job by id: state, budget held, parties, deliverable, "
         "description.", _works.JobShowArgs, _works.job_show),
)  # fmt: skip


def tool_names() -> list[str]:
    return [t.name for t in TOOLS]
