"""What the discovery index needs from the outside world while deriving an agent (IO behind a
small interface): documents (cards), proofs of payment behind feedback, and where payers' money
came from (for weighted reputation).

Feedback is proven by its payment: the x402 / transfer named in the feedback file's
``proofOfPayment`` (``identity.feedback``), or, for feedback the FeedbackGate wrote to the
registry (its client address is the gate), the feedback ticket the payer consumed for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from hexbytes import HexBytes
from web3 import Web3

from agentbazaar.chain import Chain, to_address
from agentbazaar.identity.cards import fetch_document
from agentbazaar.identity.errors import ProofOfPaymentError
from agentbazaar.identity.feedback import read_feedback_uri, registry_id, verify_feedback
from agentbazaar.identity.funding import FundingTracer

_FEEDBACK_TICKET_ABI: list[dict[str, Any]] = [
    {
        "name": "feedbackTicket",
        "type": "function",
        "stateMutability": "view",
        "inputs": [
            {"name": "agentId", "type": "uint256"},
            {"name": "feedbackIndex", "type": "uint64"},
        ],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "components": [
                    {"name": "ticketId", "type": "uint256"},
                    {"name": "payer", "type": "address"},
                    {"name": "amount", "type": "uint256"},
                ],
            }
        ],
    }
]


def ticket_proof(chain: Chain, gate: str, agent_id: int, index: int) -> tuple[str, int, str]:
    """(``ticket:<id>``, amount paid, payer) of the gate's feedback ``index`` of the agent."""
    contract = chain.contract(gate, _FEEDBACK_TICKET_ABI)
    ticket_id, payer, amount = chain.call(contract.functions.feedbackTicket(agent_id, index))
    if int(ticket_id) == 0:
        raise ProofOfPaymentError("the feedback gate holds no ticket for this feedback")
    return f"ticket:{int(ticket_id)}", int(amount), to_address(payer)


class Resolver(Protocol):
    """What the index needs from the outside world while deriving an agent."""

    def document(self, uri: str) -> bytes: ...

    def verify_feedback(
        self, event: Mapping[str, Any], agent_id: int, wallet: str | None, tokens: set[str]
    ) -> tuple[str, int, str]:
        """(proof: the payment tx hash or ``ticket:<id>``, amount paid, payer), or raise an
        IdentityError naming the problem."""
        ...

    def funding_roots(
        self, payers: Collection[str], tokens: set[str], stop: Collection[str]
    ) -> dict[str, str]:
        """payer -> where its money came from (``identity.funding``), for weighted scores."""
        ...


class ChainResolver:
    """Cards from data: URIs / https, payments checked against ``chain``. With the FeedbackGate
    (``gate``), feedback the gate wrote is proven by its consumed ticket."""

    def __init__(
        self,
        chain: Chain,
        identity_registry: str,
        *,
        gate: str | None = None,
        funding: FundingTracer | None = None,
        **fetch_limits: Any,
    ) -> None:
        self.chain = chain
        self.registry = registry_id(chain.chain_id, identity_registry)
        self.gate = Web3.to_checksum_address(gate) if gate else None
        self.funding = funding or FundingTracer(chain)
        self.limits = fetch_limits

    def document(self, uri: str) -> bytes:
        return fetch_document(uri, **self.limits)

    def funding_roots(
        self, payers: Collection[str], tokens: set[str], stop: Collection[str]
    ) -> dict[str, str]:
        return self.funding.roots(payers, tokens, stop)

    def verify_feedback(
        self, event: Mapping[str, Any], agent_id: int, wallet: str | None, tokens: set[str]
    ) -> tuple[str, int, str]:
        if self.gate is not None and str(event["clientAddress"]).lower() == self.gate.lower():
            return ticket_proof(self.chain, self.gate, agent_id, int(event["feedbackIndex"]))
        raw = read_feedback_uri(str(event["feedbackURI"]))
        _file, payment = verify_feedback(
            self.chain,
            raw,
            feedback_hash=HexBytes(event["feedbackHash"]),
            agent_id=agent_id,
            client=str(event["clientAddress"]),
            agent_wallet=wallet,
            registry=self.registry,
            tokens=tokens,
        )
        return payment.tx_hash, payment.amount, str(event["clientAddress"])
