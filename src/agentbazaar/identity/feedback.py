"""Paid-only feedback: a feedback file that carries a proof of payment, checked on chain.

ERC-8004 lets anyone leave feedback. Our client leaves feedback only for a payment it made, and
our indexer counts feedback only when that payment is on the chain:

1. The off-chain feedback file (ERC-8004 fields) carries ``proofOfPayment`` =
   ``{txHash, fromAddress, toAddress, chainId}``. Its RFC 8785 canonical bytes are hashed with
   keccak-256 into the on-chain ``feedbackHash`` and stored at ``feedbackURI`` (a ``data:`` URI on
   local chains), so the proof cannot be swapped after the fact.
2. :func:`verify_feedback` checks: the file's hash equals ``feedbackHash``; the file names the same
   agent, registry and client as the event; ``fromAddress`` is the client and ``toAddress`` the
   agent's wallet; and :func:`verify_payment` finds the transaction on this chain, successful,
   with an ERC-20 ``Transfer(from=client, to=agent wallet, value>0)`` emitted by one of the tokens
   the agent prices its skills in. (EIP-3009 ``transferWithAuthorization`` emits the same
   ``Transfer`` next to ``AuthorizationUsed``, so x402 payments are covered.)
3. One payment proves one feedback: the index keeps the first claim of a ``txHash``, and
   :func:`give_feedback` refuses, before sending anything, a payment this client's earlier
   feedback (to any agent, revoked or not) already carries (:func:`claimed_payments`, read from
   the registry's ``NewFeedback`` events of the client; feedback files behind ``data:`` URIs).

The value is a rating: ERC-8004's quality rating (``starred``) is 0..100, and ``value`` /
10**``valueDecimals`` (0-18 decimals, so 87, 4.5 or 99.95) must lie in 0..100
(:func:`check_rating`); the index counts no value outside it as reputation.

Errors::

    IdentityError
    └── FeedbackError              malformed feedback file / mismatch with the on-chain event
        ├── FeedbackValueError     a rating outside 0..100 or more than 18 decimals
        └── ProofOfPaymentError    the payment cannot be found or does not pay this agent
            └── PaymentAlreadyUsed the payment already proves earlier feedback
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from web3 import Web3
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.errors import BazaarError
from agentbazaar.identity.cards import (
    _first_error,
    _json_object,
    canonical_json,
    fetch_document,
    from_data_uri,
    to_data_uri,
)
from agentbazaar.identity.errors import (
    CardError,
    FeedbackError,
    FeedbackValueError,
    PaymentAlreadyUsed,
    ProofOfPaymentError,
)
from agentbazaar.primitives import Address

TRANSFER_TOPIC = HexBytes(Web3.keccak(text="Transfer(address,address,uint256)"))


RATING_MIN, RATING_MAX = 0, 100
MAX_VALUE_DECIMALS = 18


def check_rating(value: int, value_decimals: int) -> None:
    """A feedback value is a rating of ``value`` / 10**``value_decimals`` in 0..100 (ERC-8004's
    ``starred``), with 0-18 decimals; ``FeedbackValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FeedbackValueError(f"a feedback value is an integer, not {value!r}")
    if isinstance(value_decimals, bool) or not isinstance(value_decimals, int):
        raise FeedbackValueError(f"valueDecimals is an integer, not {value_decimals!r}")
    if not 0 <= value_decimals <= MAX_VALUE_DECIMALS:
        raise FeedbackValueError(f"valueDecimals must be 0..18, got {value_decimals}")
    if not RATING_MIN * 10**value_decimals <= value <= RATING_MAX * 10**value_decimals:
        shown = Decimal(value).scaleb(-value_decimals)
        raise FeedbackValueError(
            f"feedback value {shown} is outside the rating range {RATING_MIN}..{RATING_MAX}",
            value=value,
            value_decimals=value_decimals,
        )


class ProofOfPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    txHash: str
    fromAddress: Address
    toAddress: Address
    chainId: int

    @field_validator("txHash")
    @classmethod
    def _tx_hash(cls, v: str) -> str:
        if not (isinstance(v, str) and v.startswith("0x") and len(v) == 66):
            raise ValueError("txHash must be 0x + 64 hex digits")
        int(v, 16)
        return v.lower()


class FeedbackFile(BaseModel):
    """The ERC-8004 off-chain feedback file, with our required ``proofOfPayment``."""

    model_config = ConfigDict(extra="allow")
    agentRegistry: str
    agentId: int = Field(ge=0)
    clientAddress: Address
    createdAt: str
    value: int
    valueDecimals: int = Field(ge=0, le=18)
    tag1: str = ""
    tag2: str = ""
    endpoint: str = ""
    proofOfPayment: ProofOfPayment


@dataclass(frozen=True)
class ProvenPayment:
    tx_hash: str
    token: str
    amount: int  # base units
    block_number: int


@dataclass(frozen=True)
class PreparedFeedback:
    """Everything ``giveFeedback`` needs: the file, its data: URI and its keccak hash."""

    file: FeedbackFile
    data: bytes
    uri: str
    hash: bytes


def registry_id(chain_id: int, identity_registry: str) -> str:
    """ERC-8004 ``agentRegistry``: ``eip155:<chainId>:<identityRegistry>``."""
    return f"eip155:{chain_id}:{Web3.to_checksum_address(identity_registry)}"


def prepare_feedback(
    *,
    chain_id: int,
    identity_registry: str,
    agent_id: int,
    client: str,
    agent_wallet: str,
    value: int,
    value_decimals: int,
    payment_tx: str,
    tag1: str = "",
    tag2: str = "",
    endpoint: str = "",
    created_at: datetime | None = None,
) -> PreparedFeedback:
    """Build the feedback file for a payment ``client`` made to ``agent_wallet``."""
    check_rating(value, value_decimals)
    try:
        file = FeedbackFile.model_validate(  # validated: the addresses are text until parsed
            {
                "agentRegistry": registry_id(chain_id, identity_registry),
                "agentId": agent_id,
                "clientAddress": client,
                "createdAt": (created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "value": value,
                "valueDecimals": value_decimals,
                "tag1": tag1,
                "tag2": tag2,
                "endpoint": endpoint,
                "proofOfPayment": {
                    "txHash": payment_tx,
                    "fromAddress": client,
                    "toAddress": agent_wallet,
                    "chainId": chain_id,
                },
            }
        )
    except ValidationError as exc:
        raise FeedbackError(f"invalid feedback: {_first_error(exc)}") from exc
    data = canonical_json(file.model_dump(mode="json"))
    return PreparedFeedback(file=file, data=data, uri=to_data_uri(data), hash=Web3.keccak(data))


def parse_feedback(raw: bytes | Mapping[str, Any]) -> FeedbackFile:
    try:
        return FeedbackFile.model_validate(_json_object(raw, what="feedback file"))
    except CardError as exc:
        raise FeedbackError(str(exc)) from exc
    except ValidationError as exc:
        raise FeedbackError(f"malformed feedback file: {_first_error(exc)}") from exc


def read_feedback_uri(uri: str) -> bytes:
    """The feedback file bytes behind a ``data:`` feedbackURI."""
    if not uri:
        raise ProofOfPaymentError("feedback has no feedbackURI, so no proof of payment")
    try:
        return fetch_document(uri)
    except CardError as exc:
        raise FeedbackError(f"cannot read the feedback file: {exc}") from exc


def verify_payment(
    chain: Chain,
    proof: ProofOfPayment,
    *,
    client: str,
    agent_wallet: str,
    tokens: Collection[str],
) -> ProvenPayment:
    """Find the payment on chain: a successful tx with Transfer(client -> agent wallet)."""
    if proof.chainId != chain.chain_id:
        raise ProofOfPaymentError(
            f"payment is on chain {proof.chainId}, not on this chain {chain.chain_id}"
        )
    if proof.fromAddress != Web3.to_checksum_address(client):
        raise ProofOfPaymentError(f"payment is from {proof.fromAddress}, not the client {client}")
    if proof.toAddress != Web3.to_checksum_address(agent_wallet):
        raise ProofOfPaymentError(
            f"payment is to {proof.toAddress}, not the agent's wallet {agent_wallet}"
        )
    try:
        receipt = chain.receipt(proof.txHash)
    except BazaarError as exc:
        raise ProofOfPaymentError(f"cannot read payment {proof.txHash}: {exc}") from exc
    if receipt is None:
        raise ProofOfPaymentError(f"payment {proof.txHash} is not on this chain")
    if receipt["status"] != 1:
        raise ProofOfPaymentError(f"payment {proof.txHash} reverted")
    allowed = {t.lower() for t in tokens}
    for log in receipt["logs"]:
        found = _transfer(cast(Mapping[str, Any], log), client, agent_wallet, allowed)
        if found is not None:
            return ProvenPayment(
                tx_hash=proof.txHash,
                token=found[0],
                amount=found[1],
                block_number=int(receipt["blockNumber"]),
            )
    raise ProofOfPaymentError(
        f"payment {proof.txHash} has no transfer of the agent's price tokens "
        f"from {client} to {agent_wallet}"
    )


def _transfer(
    log: Mapping[str, Any], client: str, wallet: str, allowed: set[str]
) -> tuple[str, int] | None:
    topics = [HexBytes(t) for t in log.get("topics", [])]
    if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
        return None
    token = str(log["address"])
    if token.lower() not in allowed:
        return None
    sender = "0x" + topics[1][-20:].hex()
    receiver = "0x" + topics[2][-20:].hex()
    amount = int.from_bytes(HexBytes(log["data"]), "big") if HexBytes(log["data"]) else 0
    if sender.lower() == client.lower() and receiver.lower() == wallet.lower() and amount > 0:
        return Web3.to_checksum_address(token), amount
    return None


def verify_feedback(
    chain: Chain,
    raw_file: bytes,
    *,
    feedback_hash: bytes,
    agent_id: int,
    client: str,
    agent_wallet: str | None,
    registry: str,
    tokens: Collection[str],
) -> tuple[FeedbackFile, ProvenPayment]:
    """All checks for one NewFeedback event; raises FeedbackError / ProofOfPaymentError."""
    if bytes(Web3.keccak(raw_file)) != bytes(feedback_hash):
        raise FeedbackError("feedback file does not match the on-chain feedbackHash")
    file = parse_feedback(raw_file)
    if file.agentId != agent_id or file.agentRegistry.lower() != registry.lower():
        raise FeedbackError(
            f"feedback file is about agent {file.agentId} of {file.agentRegistry}, "
            f"not agent {agent_id} of {registry}"
        )
    if file.clientAddress.lower() != client.lower():
        raise FeedbackError(f"feedback file names client {file.clientAddress}, not {client}")
    if not agent_wallet:
        raise ProofOfPaymentError("the agent has no wallet that a payment could prove")
    payment = verify_payment(
        chain, file.proofOfPayment, client=client, agent_wallet=agent_wallet, tokens=tokens
    )
    return file, payment


def claimed_payments(
    chain: Chain, reputation_registry: Contract, client: str, *, from_block: int = 0
) -> dict[str, tuple[int, int]]:
    """Payment tx hash -> (agent id, feedback index) of every feedback ``client`` gave on this
    registry whose file (a ``data:`` URI) carries a proof of payment."""
    event = reputation_registry.events.NewFeedback()
    try:
        logs = event.get_logs(
            from_block=from_block,
            argument_filters={"clientAddress": Web3.to_checksum_address(client)},
        )
    except Exception as exc:  # web3 / node errors: the check cannot be made, nothing is sent
        raise FeedbackError(f"cannot read this client's earlier feedback: {exc}") from exc
    claims: dict[str, tuple[int, int]] = {}
    for log in logs:
        args = log["args"]
        uri = str(args["feedbackURI"])
        if not uri.startswith("data:"):
            continue
        try:
            proof = parse_feedback(from_data_uri(uri)).proofOfPayment
        except (FeedbackError, CardError):
            continue
        claims.setdefault(proof.txHash, (int(args["agentId"]), int(args["feedbackIndex"])))
    return claims


def give_feedback(
    chain: Chain,
    reputation_registry: Contract,
    client: LocalAccount,
    *,
    identity_registry: str,
    agent_id: int,
    agent_wallet: str,
    value: int,
    value_decimals: int = 0,
    payment_tx: str,
    tokens: Collection[str],
    tag1: str = "",
    tag2: str = "",
    endpoint: str = "",
) -> tuple[PreparedFeedback, str]:
    """Give paid-only feedback: the rating, the payment on chain and that no earlier feedback
    of this client carries it are checked before anything is sent.

    Returns the prepared feedback file and the ``giveFeedback`` transaction hash. Raises
    ``FeedbackValueError``, ``ProofOfPaymentError`` or ``PaymentAlreadyUsed`` (nothing sent).
    """
    prepared = prepare_feedback(
        chain_id=chain.chain_id,
        identity_registry=identity_registry,
        agent_id=agent_id,
        client=client.address,
        agent_wallet=agent_wallet,
        value=value,
        value_decimals=value_decimals,
        payment_tx=payment_tx,
        tag1=tag1,
        tag2=tag2,
        endpoint=endpoint,
    )
    verify_payment(
        chain,
        prepared.file.proofOfPayment,
        client=client.address,
        agent_wallet=agent_wallet,
        tokens=tokens,
    )
    used = claimed_payments(chain, reputation_registry, client.address).get(
        prepared.file.proofOfPayment.txHash
    )
    if used is not None:
        raise PaymentAlreadyUsed(
            f"payment {payment_tx} already proves your feedback #{used[1]} to agent {used[0]}: "
            "one payment, one feedback; nothing was sent",
            agent_id=used[0],
            feedback_index=used[1],
        )
    fn = reputation_registry.functions.giveFeedback(
        agent_id, value, value_decimals, tag1, tag2, endpoint, prepared.uri, prepared.hash
    )
    receipt = chain.transact(client, fn)
    return prepared, receipt["transactionHash"].to_0x_hex()
