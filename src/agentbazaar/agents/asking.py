"""Asking an agent over A2A, paying in-band with x402 (the buying side of ``agents.a2a``).

``ask(agent_url, task, payer=..., ...)``:

1. reads the agent's card (``/.well-known/agent-card.json``) and checks its signature: the
   card names the agent's wallet, the only payee this client accepts, and its JSON-RPC endpoint;
2. sends the task (``message/send``: a text part, and a data part naming the skill and its input
   when given); a free answer (a ``completed`` task) ends there;
3. on ``input-required`` with ``x402.payment.required``: picks the ``exact`` requirement in the
   caller's token on the caller's network, payable to the card's wallet; refuses one above
   ``max_price`` before anything is signed; signs it through the payer (``WalletPayer``:
   ``Wallet.spend`` checks the policy, reserves in the ledger under the idempotency key
   ``a2a-<task id>``, then signs);
4. sends the payment in the next message (same ``taskId``; a lost answer is retried with the
   same payment, which the agent answers with the same completed task);
5. on ``completed`` with ``payment-completed``: marks the spend settled with the transaction and
   checks the signed receipt in the answer (signed by the card's wallet, for this price, asset,
   chain and payment nonce); on ``payment-failed``: records the refusal on the ledger row and
   raises ``PaymentRefused`` with the agent's reason code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentRequired, PaymentRequirements, SettleResponse

from agentbazaar.agents.a2a import (
    EXTENSION_URI,
    EXTENSIONS_HEADER,
    PAYLOAD,
    PAYMENT_COMPLETED,
    PAYMENT_REQUIRED,
    PAYMENT_SUBMITTED,
    RECEIPTS,
    REQUIRED,
    STATUS,
    reason_text,
)
from agentbazaar.agents.errors import AgentRefused, AgentUnavailable, BadReceipt
from agentbazaar.agents.receipts import SignedReceipt, recover_signer
from agentbazaar.errors import PolicyViolation
from agentbazaar.identity.cards import AgentCard, parse_card
from agentbazaar.payments import PaymentRefused
from agentbazaar.payments.payers import Authorized, PaymentIntent, WalletPayer
from agentbazaar.tokens import Token

CARD_PATH = "/.well-known/agent-card.json"
SEND_ATTEMPTS = 3  # a payment message is resent (same payment) when its answer is lost


@dataclass
class Paid:
    amount: int
    asset: str
    network: str
    pay_to: str
    payer: str
    nonce: str
    transaction: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "amount": str(self.amount),
            "asset": self.asset,
            "network": self.network,
            "payTo": self.pay_to,
            "payer": self.payer,
            "nonce": self.nonce,
            "transaction": self.transaction,
        }


@dataclass
class Answer:
    """What an agent answered: the task, its result, what was paid and the receipt."""

    agent: str
    wallet: str
    task_id: str
    state: str
    result: Any
    paid: Paid | None = None
    receipt: SignedReceipt | None = None
    text: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "wallet": self.wallet,
            "taskId": self.task_id,
            "state": self.state,
            "answer": self.result,
            "paid": self.paid.to_json() if self.paid else None,
            "receiptId": self.receipt.id if self.receipt else None,
            "message": self.text,
        }


@dataclass
class Seller:
    card: AgentCard
    endpoint: str


class A2AClient:
    """JSON-RPC ``message/send`` to one agent (sync httpx)."""

    def __init__(self, http: httpx.Client, endpoint: str) -> None:
        self.http = http
        self.endpoint = endpoint
        self._ids = 0

    def send(self, message: dict[str, Any], *, attempts: int = 1) -> dict[str, Any]:
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": "message/send",
                "params": {"message": message}}  # fmt: skip
        headers = {EXTENSIONS_HEADER: EXTENSION_URI}
        last: Exception | None = None
        for _ in range(attempts):
            try:
                response = self.http.post(self.endpoint, json=body, headers=headers)
                break
            except httpx.TransportError as exc:
                last = exc
        else:
            raise AgentUnavailable(f"cannot reach {self.endpoint}: {last}")
        return _result(response, self.endpoint)


def _result(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise AgentUnavailable(f"{endpoint} answered {response.status_code}, not JSON-RPC")
    error = answer.get("error")
    if isinstance(error, dict):
        raise AgentRefused(f"the agent refused: {error.get('message')}", code=error.get("code"))
    result = answer.get("result")
    if not isinstance(result, dict) or result.get("kind") != "task":
        raise AgentUnavailable(f"{endpoint} answered something that is not an A2A task")
    return result


def card_url(agent_url: str) -> str:
    if agent_url.endswith(CARD_PATH):
        return agent_url
    return agent_url.rstrip("/") + CARD_PATH


def read_card(http: httpx.Client, agent_url: str) -> Seller:
    """The agent's signed card and its JSON-RPC endpoint."""
    url = card_url(agent_url)
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise AgentUnavailable(f"cannot reach {url}: {exc}") from exc
    if response.status_code != 200:
        raise AgentUnavailable(f"{url} answered {response.status_code}, not an agent card")
    card = parse_card(response.content)
    if not isinstance(card, AgentCard):
        raise AgentUnavailable(f"{url} serves a registration file, not an A2A agent card")
    rpc = [i.url for i in card.supportedInterfaces if i.protocolBinding == "JSONRPC"]
    if not rpc:
        raise AgentUnavailable(f"the card at {url} names no JSON-RPC endpoint")
    return Seller(card, rpc[0])


def first_message(task: str, skill: str | None, payload: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"kind": "text", "text": task}]
    data: dict[str, Any] = {}
    if skill is not None:
        data["skill"] = skill
    if payload is not None:
        data["input"] = payload
    if data:
        parts.append({"kind": "data", "data": data})
    return {"kind": "message", "role": "user", "messageId": str(uuid.uuid4()), "parts": parts}


def _metadata(task: dict[str, Any]) -> dict[str, Any]:
    message = task.get("status", {}).get("message")
    metadata = message.get("metadata") if isinstance(message, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _text(task: dict[str, Any]) -> str:
    message = task.get("status", {}).get("message")
    parts = message.get("parts", []) if isinstance(message, dict) else []
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and p.get("kind") == "text")


def _artifact(task: dict[str, Any]) -> Any:
    for artifact in task.get("artifacts") or []:
        for part in artifact.get("parts", []) if isinstance(artifact, dict) else []:
            if isinstance(part, dict) and part.get("kind") == "data":
                return part.get("data")
    return None


def choose(
    required: PaymentRequired, *, network: str, token: Token, pay_to: str, max_price: int
) -> PaymentRequirements:
    """The cheapest ``exact`` requirement in ``token`` on ``network`` payable to ``pay_to``;
    ``PolicyViolation`` when it costs more than ``max_price`` (nothing signed)."""
    assert token.address is not None
    options = [
        r
        for r in required.accepts
        if r.scheme == c.SCHEME_EXACT
        and r.network == network
        and r.asset.lower() == token.address.lower()
        and r.amount.isdigit()
    ]
    if not options:
        raise PaymentRefused(
            f"the agent asks no payment this client makes (exact, {token.symbol} on {network})"
        )
    best = min(options, key=lambda r: int(r.amount))
    if best.pay_to.lower() != pay_to.lower():
        raise PaymentRefused(
            f"the agent asks to pay {best.pay_to}, not the wallet its card names ({pay_to})"
        )
    if int(best.amount) > max_price:
        raise PolicyViolation(
            f"the agent asks {token.format(int(best.amount))}, above the maximum "
            f"{token.format(max_price)} for this task",
            amount=int(best.amount),
            limit=max_price,
        )
    return best


def ask(
    agent_url: str,
    task: str,
    *,
    payer: WalletPayer,
    network: str,
    token: Token,
    chain_id: int,
    max_price: int,
    skill: str | None = None,
    payload: Any = None,
    http: httpx.Client | None = None,
) -> Answer:
    """Send ``task`` to the agent at ``agent_url`` over A2A; pay its x402 requirement (at most
    ``max_price`` base units of ``token``) through ``payer``; return its answer."""
    own = http is None
    client = http or httpx.Client(timeout=120.0)
    try:
        seller = read_card(client, agent_url)
        rpc = A2AClient(client, seller.endpoint)
        first = rpc.send(first_message(task, skill, payload))
        answer = _answer(seller, first)
        if answer.state in ("failed", "rejected", "canceled"):
            raise AgentRefused(f"the agent answered the task {answer.state}: {answer.text}")
        if answer.state != "input-required":
            return answer
        if _metadata(first).get(STATUS) != PAYMENT_REQUIRED:
            raise AgentRefused(f"the agent needs more input: {_text(first) or 'no reason given'}")
        return _pay(rpc, seller, first, payer=payer, network=network, token=token,
                    chain_id=chain_id, max_price=max_price)  # fmt: skip
    finally:
        if own:
            client.close()


def _answer(seller: Seller, task: dict[str, Any]) -> Answer:
    return Answer(
        agent=seller.card.name,
        wallet=seller.card.wallet,
        task_id=str(task.get("id", "")),
        state=str(task.get("status", {}).get("state", "")),
        result=_artifact(task),
        text=_text(task),
    )


def _pay(
    rpc: A2AClient,
    seller: Seller,
    task: dict[str, Any],
    *,
    payer: WalletPayer,
    network: str,
    token: Token,
    chain_id: int,
    max_price: int,
) -> Answer:
    try:
        required = PaymentRequired.model_validate(_metadata(task).get(REQUIRED))
    except ValidationError as exc:
        raise AgentUnavailable(f"the agent's {REQUIRED} is not an x402 v2 PaymentRequired") from exc
    chosen = choose(required, network=network, token=token, pay_to=seller.card.wallet,
                    max_price=max_price)  # fmt: skip
    task_id = str(task.get("id", ""))
    intent = PaymentIntent(
        url=f"{seller.endpoint}#task={task_id}",
        network=chosen.network,
        asset=chosen.asset,
        amount=int(chosen.amount),
        pay_to=chosen.pay_to,
        idempotency_key=f"a2a-{task_id}",
    )
    auth = payer.authorize(intent, required)
    message = {
        "kind": "message",
        "role": "user",
        "messageId": str(uuid.uuid4()),
        "taskId": task_id,
        "contextId": task.get("contextId"),
        "parts": [{"kind": "text", "text": "payment for the task"}],
        "metadata": {
            STATUS: PAYMENT_SUBMITTED,
            PAYLOAD: auth.payload.model_dump(by_alias=True, mode="json", exclude_none=True),
        },
    }
    done = rpc.send(message, attempts=SEND_ATTEMPTS)
    return _outcome(seller, done, auth, chosen, chain_id, token)


def _outcome(
    seller: Seller,
    done: dict[str, Any],
    auth: Authorized,
    chosen: PaymentRequirements,
    chain_id: int,
    token: Token,
) -> Answer:
    metadata = _metadata(done)
    receipts = metadata.get(RECEIPTS)
    settle = _settle_response(receipts[0] if isinstance(receipts, list) and receipts else None)
    completed = (
        done.get("status", {}).get("state") == "completed"
        and metadata.get(STATUS) == PAYMENT_COMPLETED
        and settle is not None
        and settle.success
    )
    if not completed:
        reason = str(metadata.get("x402.payment.error") or "payment_refused")
        auth.refused(reason)
        detail = _text(done) or f"payment failed ({reason}): {reason_text(reason)}"
        raise PaymentRefused(detail, reason=reason, task=str(done.get("id", "")))
    assert settle is not None
    auth.settled(settle)
    answer = _answer(seller, done)
    nonce = str(auth.payload.payload.get("authorization", {}).get("nonce", ""))
    answer.paid = Paid(int(chosen.amount), chosen.asset, chosen.network, chosen.pay_to,
                       str(settle.payer or ""), nonce, settle.transaction or None)  # fmt: skip
    answer.receipt = _checked_receipt(answer, chain_id, token)
    return answer


def _settle_response(raw: Any) -> SettleResponse | None:
    try:
        return SettleResponse.model_validate(raw)
    except ValidationError:
        return None


def _checked_receipt(answer: Answer, chain_id: int, token: Token) -> SignedReceipt | None:
    """The answer's signed receipt, checked against what was paid (None when it has none)."""
    raw = answer.result.get("receipt") if isinstance(answer.result, dict) else None
    if raw is None:
        return None
    signed = SignedReceipt.from_json(raw)
    paid = answer.paid
    assert paid is not None
    r = signed.receipt
    checks = [
        ("chainId", signed.chain_id == chain_id),
        ("signature", recover_signer(signed).lower() == answer.wallet.lower()),
        ("provider", r.provider.lower() == answer.wallet.lower()),
        ("asset", r.asset.lower() == (token.address or "").lower()),
        ("price", r.price == paid.amount),
        ("payment_ref", r.payment_ref.lower() == paid.nonce.lower()),
    ]
    for name, ok in checks:
        if not ok:
            raise BadReceipt(f"receipt field {name} does not match what was paid", field=name)
    return signed
