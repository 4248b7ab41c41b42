"""Feedback tickets: paid-only feedback enforced by the FeedbackGate contract.

A ticket is minted when money reaches an agent (a completed job, or an x402 payment relayed
through the gate) and buys exactly one feedback, written by the gate to the ERC-8004
ReputationRegistry. This module reads the tickets a payer holds and spends one::

    gate = TicketGate(chain, gate_address)
    ticket = gate.unused(payer.address)[0]                  # from the TicketMinted events
    index = gate.give_feedback(payer, ticket, agent_id, 95) # the registry's feedback index
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.errors import TransactionReverted
from agentbazaar.identity.errors import TicketError

GATE_KEY = "FeedbackGate"  # the suite's manifest key


@dataclass(frozen=True)
class Ticket:
    ticket_id: int
    payer: str
    payee: str
    amount: int
    used: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["amount"] = str(self.amount)
        return out


class TicketGate:
    """Client of one FeedbackGate."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.contract = chain.contract(address, compile_contract("FeedbackGate").abi)

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def tickets(self, payer: str, *, from_block: int = 0) -> list[Ticket]:
        """Every ticket minted to ``payer``, oldest first, with whether it was used."""
        logs = self.contract.events.TicketMinted().get_logs(
            from_block=from_block, argument_filters={"payer": to_address(payer)}
        )
        out = []
        for log in logs:
            args = log["args"]
            ticket_id = int(args["ticketId"])
            state = int(self.chain.call(self.contract.functions.ticketState(ticket_id)))
            out.append(
                Ticket(ticket_id, to_address(args["payer"]), to_address(args["payee"]),
                       int(args["amount"]), state == 2)
            )  # fmt: skip
        return out

    def unused(self, payer: str) -> list[Ticket]:
        return [t for t in self.tickets(payer) if not t.used]

    def give_feedback(
        self,
        payer: LocalAccount,
        ticket: Ticket,
        agent_id: int,
        value: int,
        *,
        value_decimals: int = 0,
        tag1: str = "",
        tag2: str = "",
        endpoint: str = "",
        feedback_uri: str = "",
        feedback_hash: bytes = b"\0" * 32,
    ) -> int:
        """Spend ``ticket`` on feedback for ``agent_id``; returns the registry's feedback index.
        The call moves no tokens (it is signed by the payer's account); it is simulated first,
        and a refusal raises ``TicketError`` with the gate's reason."""
        fn = self.contract.functions.giveFeedback(
            ticket.ticket_id, ticket.payee, ticket.amount, agent_id, value, value_decimals,
            tag1, tag2, endpoint, feedback_uri, feedback_hash,
        )  # fmt: skip
        try:
            receipt = self.chain.transact(payer, fn)
        except TransactionReverted as exc:
            reason = str(exc.fields.get("reason") or exc)
            raise TicketError(f"cannot use ticket {ticket.ticket_id}: {reason}", reason=reason) from exc  # fmt: skip
        events = self.contract.events.TicketConsumed().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["feedbackIndex"])
