"""x402 over A2A: an agent sells its priced skills inside its JSON-RPC ``message/send``.

The x402 A2A transport (x402 ``specs/transports-v2/a2a.md``, the a2a-x402 extension):

1. ``message/send`` with a text part (the task) and/or a data part ``{"skill": ID, "input":
   {...}}`` answers a task in state ``input-required`` whose status message carries, in its
   metadata, ``x402.payment.status: payment-required`` and ``x402.payment.required`` (an x402 v2
   ``PaymentRequired``: one ``exact`` requirement for this task's price, to the agent's wallet;
   its ``resource.url`` names the task).
2. The client's next ``message/send`` names the task (``message.taskId``) and carries
   ``x402.payment.status: payment-submitted`` and ``x402.payment.payload`` (a ``PaymentPayload``).
3. The agent checks that the payment is for this task's requirement (scheme, network, asset,
   amount, payee and resource), verifies it through its facilitator (which *reserves* the
   authorization: a replay, here or on the agent's HTTP routes, is refused), runs the skill,
   settles, and answers the task ``completed`` with ``x402.payment.status: payment-completed``,
   ``x402.payment.receipts`` (the settlement) and the skill's answer (with its signed receipt) as
   an artifact. When the skill fails the reservation is given back (nothing was charged).
4. Any refusal of the payment answers the task ``failed`` with ``payment-failed``,
   ``x402.payment.error`` (a reason code, ``payments.reasons``) and a failed receipt; nothing is
   settled and the task is not paid. What is wrong with the request itself (no such task, a task
   that takes no payment, a skill it does not sell) is a JSON-RPC error instead.

Exactly once: the facilitator's reservation (through ``payments.once.ReservingClient``, which also
releases it when the skill failed and maps an unreachable facilitator to a reason code) makes one
authorization serve at most one task; payments to one task are serialised, and a repeat of the
payment that completed it (the same signature: a client retrying after a lost answer) gets the
completed task again, not a second service. Tasks live in memory, at most ``MAX_TASKS`` per agent
(oldest dropped first); ``tasks/get`` returns one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from x402.mechanisms.evm import constants as c
from x402.schemas import (
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
)

from agentbazaar.agents.errors import RpcRefusal
from agentbazaar.agents.protocol import data_parts, event, in_thread, text_parts
from agentbazaar.agents.skills import QUOTE_TTL_SECONDS, Payment, Skill
from agentbazaar.errors import BazaarError
from agentbazaar.payments.once import ReservingClient
from agentbazaar.payments.reasons import ERR_TERMS_MISMATCH, explain

if TYPE_CHECKING:
    from agentbazaar.agents.runtime import Agent

log = logging.getLogger("agentbazaar.agents")

EXTENSION_URI = "https://github.com/google-a2a/a2a-x402/v0.1"
EXTENSIONS_HEADER = "X-A2A-Extensions"
STATUS = "x402.payment.status"
REQUIRED = "x402.payment.required"
PAYLOAD = "x402.payment.payload"
RECEIPTS = "x402.payment.receipts"
ERROR = "x402.payment.error"
PAYMENT_REQUIRED = "payment-required"
PAYMENT_SUBMITTED = "payment-submitted"
PAYMENT_REJECTED = "payment-rejected"
PAYMENT_COMPLETED = "payment-completed"
PAYMENT_FAILED = "payment-failed"
MAX_TASKS = 10_000

# JSON-RPC error codes (JSON-RPC 2.0 and A2A's own)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
TASK_NOT_FOUND = -32001
UNSUPPORTED_OPERATION = -32004
METHODS = ("message/send", "tasks/get")

# reason codes of refused A2A payments beyond ``payments.reasons`` (x402's own codes otherwise)
ERR_INVALID_PAYLOAD = "invalid_payload"
ERR_TASK_EXPIRED = "task_expired"
ERR_SKILL_FAILED = "skill_failed"
ERR_OTHER_TASK = "payment_for_another_task"
REASONS = {
    ERR_INVALID_PAYLOAD: "x402.payment.payload is not an x402 v2 PaymentPayload",
    ERR_TASK_EXPIRED: "the task's payment requirements expired; send the task again",
    ERR_SKILL_FAILED: "the skill failed; nothing was charged",
    ERR_OTHER_TASK: "the payment was made for another task; pay this task's requirement",
    c.ERR_UNSUPPORTED_SCHEME: "this agent takes the exact scheme only",
}


def reason_text(reason: str) -> str:
    """One sentence per reason code (ours, then the payments layer's)."""
    return REASONS.get(reason) or explain(reason)


def task_not_found(task_id: object) -> RpcRefusal:
    return RpcRefusal(TASK_NOT_FOUND, f"no task {task_id!r} at this agent (unknown or forgotten)")


def task_closed(task_id: str, state: str) -> RpcRefusal:
    return RpcRefusal(
        UNSUPPORTED_OPERATION,
        f"task {task_id!r} is {state} and takes no payment; send the task again for a new one",
    )


def rpc_error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def unknown_method(method: object) -> str:
    return f"unknown method {method!r}; this agent serves {', '.join(METHODS)}"


# ---- the task documents -----------------------------------------------------------------------
def agent_message(
    task_id: str, context_id: str, text: str, metadata: dict[str, Any], data: Any = None
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"kind": "text", "text": text}]
    if data is not None:
        parts.append({"kind": "data", "data": data})
    return {
        "kind": "message",
        "role": "agent",
        "messageId": str(uuid.uuid4()),
        "taskId": task_id,
        "contextId": context_id,
        "parts": parts,
        "metadata": metadata,
    }


def task_document(
    task_id: str, context_id: str, state: str, message: dict[str, Any], result: Any = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "task",
        "id": task_id,
        "contextId": context_id,
        "status": {"state": state, "message": message, "timestamp": _now_iso()},
    }
    if result is not None:
        doc["artifacts"] = [
            {"artifactId": str(uuid.uuid4()), "parts": [{"kind": "data", "data": result}]}
        ]
    return doc


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(by_alias=True, mode="json", exclude_none=True))


# ---- tasks ------------------------------------------------------------------------------------
@dataclass
class PaidTask:
    """A task waiting for (or done with) its payment."""

    id: str
    context_id: str
    skill: Skill
    input: Any
    price: int
    required: PaymentRequired
    expires: float
    state: str = "input-required"
    document: dict[str, Any] = field(default_factory=dict)
    paid_with: str | None = None  # the signature of the payment that completed it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def requirement(self) -> PaymentRequirements:
        return self.required.accepts[0]


class TaskBook:
    """Tasks by id, in memory, at most ``limit`` (the oldest dropped first); thread-safe."""

    def __init__(self, limit: int = MAX_TASKS) -> None:
        self.limit = limit
        self._tasks: OrderedDict[str, PaidTask] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, task: PaidTask) -> None:
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > self.limit:
                self._tasks.popitem(last=False)

    def get(self, task_id: object) -> PaidTask:
        with self._lock:
            task = self._tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            raise task_not_found(task_id)
        return task

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)


# ---- the seller -------------------------------------------------------------------------------
class A2ASeller:
    """The x402 A2A side of one agent: opens priced tasks, takes their payments."""

    def __init__(self, agent: Agent, *, limit: int = MAX_TASKS) -> None:
        self.agent = agent
        self.tasks = TaskBook(limit)
        self.client = ReservingClient(agent._facilitator())

    # -- opening a task (runs in a worker thread: quoting may be heavy) --
    def open_task(self, params: Any) -> dict[str, Any]:
        skill, payload = self._skill_and_input(params)
        price, units, in_hash = skill.quote(payload)
        task_id, context_id = str(uuid.uuid4()), _context_of(params)
        required = self._required(skill, task_id, price)
        task = PaidTask(task_id, context_id, skill, payload, price, required,
                        time.time() + QUOTE_TTL_SECONDS)  # fmt: skip
        quote = {"skill": skill.id, "price": str(price), "units": units, "inputHash": in_hash}
        text = f"payment is required: {self.agent.token.format(price)} for {skill.id}"
        metadata = {STATUS: PAYMENT_REQUIRED, REQUIRED: _dump(required)}
        message = agent_message(task_id, context_id, text, metadata, quote)
        task.document = task_document(task_id, context_id, task.state, message)
        self.tasks.add(task)
        return task.document

    def _skill_and_input(self, params: Any) -> tuple[Skill, Any]:
        data = next(iter(data_parts(params)), {})
        texts = text_parts(params)
        skill = self._skill(data.get("skill"))
        if "input" in data:
            return skill, data["input"]
        from_text = getattr(skill, "input_from_text", None)
        if texts and callable(from_text):
            return skill, from_text(texts[0])
        raise RpcRefusal(
            INVALID_PARAMS,
            f"skill {skill.id!r} needs its input in a data part "
            f'{{"skill": "{skill.id}", "input": {{...}}}}',
        )

    def _skill(self, skill_id: object) -> Skill:
        sellable = {k: s for k, s in self.agent.skills.items() if not getattr(s, "metered", False)}
        if skill_id is None and len(sellable) == 1:
            return next(iter(sellable.values()))
        if skill_id is None:
            raise RpcRefusal(
                INVALID_PARAMS,
                f'which skill? name one in a data part {{"skill": ID}}; '
                f"this agent offers: {', '.join(self.agent.skills) or 'none'}",
            )
        skill = self.agent._skill(str(skill_id))
        if getattr(skill, "metered", False):
            raise RpcRefusal(
                INVALID_PARAMS,
                f"skill {skill.id!r} is priced by usage: buy it over HTTP at "
                f"{self.agent.url}/v1/chat/completions",
            )
        return skill

    def _required(self, skill: Skill, task_id: str, price: int) -> PaymentRequired:
        token = self.agent.token
        assert token.address is not None
        requirement = PaymentRequirements(
            scheme=c.SCHEME_EXACT,
            network=self.agent.chain.network,
            asset=token.address,
            amount=str(price),
            pay_to=self.agent.pay_to(),
            max_timeout_seconds=QUOTE_TTL_SECONDS,
            extra={"name": token.eip712_name, "version": token.eip712_version},
        )
        resource = ResourceInfo(
            url=task_resource(self.agent.url or "", task_id),
            description=f"{skill.name} (A2A task {task_id})",
            mime_type="application/json",
        )
        return PaymentRequired(error="payment required", resource=resource, accepts=[requirement])

    # -- the client's next message --
    async def follow_up(self, params: Any) -> dict[str, Any]:
        """A message naming a task: its payment (or the refusal to pay)."""
        message = params["message"]
        task = self.tasks.get(message.get("taskId"))
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        status = metadata.get(STATUS)
        if status == PAYMENT_REJECTED:
            return await self._rejected(task)
        if status != PAYMENT_SUBMITTED:
            raise RpcRefusal(
                INVALID_PARAMS,
                f"a message for task {task.id!r} carries {STATUS}: {PAYMENT_SUBMITTED} and "
                f"{PAYLOAD}, or {STATUS}: {PAYMENT_REJECTED}",
            )
        # its own task: a client that goes away does not stop a settlement under way
        job = asyncio.ensure_future(self._pay(task, metadata.get(PAYLOAD)))
        result: dict[str, Any] = await asyncio.shield(job)
        return result

    def get(self, params: Any) -> dict[str, Any]:
        task_id = params.get("id") if isinstance(params, dict) else None
        return self.tasks.get(task_id).document

    async def _rejected(self, task: PaidTask) -> dict[str, Any]:
        async with task.lock:
            if task.state != "input-required":
                raise task_closed(task.id, task.state)
            metadata = {STATUS: PAYMENT_REJECTED}
            text = "the payment was declined; nothing was charged"
            self._close(task, "failed", agent_message(task.id, task.context_id, text, metadata))
            return task.document

    async def _pay(self, task: PaidTask, raw: Any) -> dict[str, Any]:
        async with task.lock:
            if task.state == "completed" and _signature_of(raw) == task.paid_with:
                return task.document  # a repeat of the payment that completed it
            if task.state != "input-required":
                raise task_closed(task.id, task.state)
            if time.time() > task.expires:
                return self._failed(task, ERR_TASK_EXPIRED)
            try:
                payload = PaymentPayload.model_validate(raw)
            except (ValidationError, TypeError, ValueError):
                return self._failed(task, ERR_INVALID_PAYLOAD)
            mismatch = _mismatch(task, payload)
            if mismatch is not None:
                return self._failed(task, mismatch)
            return await self._verified_service(task, payload)

    async def _verified_service(self, task: PaidTask, payload: PaymentPayload) -> dict[str, Any]:
        req = task.requirement
        verified = await self.client.verify(payload, req)
        if not verified.is_valid:
            reason = verified.invalid_reason or "payment_invalid"
            return self._failed(task, reason, verified.invalid_message)
        nonce = str(payload.payload.get("authorization", {}).get("nonce", ""))
        payment = Payment(nonce, str(verified.payer or ""), task.price)
        try:
            result = await in_thread(lambda: task.skill.perform(self.agent, task.input, payment))
        except Exception as exc:  # nothing served: give the reservation back, charge nothing
            await self.client.release(payload, req)
            if not isinstance(exc, BazaarError):
                log.exception("A2A skill %s failed", task.skill.id)
            detail = exc.message if isinstance(exc, BazaarError) else None
            return self._failed(task, ERR_SKILL_FAILED, detail)
        settled = await self.client.settle(payload, req)
        if not settled.success:
            reason = settled.error_reason or c.ERR_TRANSACTION_FAILED
            return self._failed(task, reason, settled.error_message, settled)
        return self._completed(task, payload, settled, result)

    def _completed(
        self, task: PaidTask, payload: PaymentPayload, settled: SettleResponse, result: Any
    ) -> dict[str, Any]:
        task.paid_with = _signature_of(_dump(payload))
        metadata = {STATUS: PAYMENT_COMPLETED, RECEIPTS: [_dump(settled)]}
        text = f"paid {self.agent.token.format(task.price)}; {task.skill.id} done"
        self._close(
            task, "completed", agent_message(task.id, task.context_id, text, metadata), result
        )
        event(self.agent.name, "sale", skill=task.skill.id, payer=settled.payer, price=task.price,
              tx=settled.transaction, task=task.id, transport="a2a")  # fmt: skip
        return task.document

    def _failed(
        self,
        task: PaidTask,
        reason: str,
        detail: str | None = None,
        settled: SettleResponse | None = None,
    ) -> dict[str, Any]:
        receipt = settled or SettleResponse(
            success=False,
            error_reason=reason,
            error_message=detail,
            transaction="",
            network=task.requirement.network,
        )
        metadata = {STATUS: PAYMENT_FAILED, ERROR: reason, RECEIPTS: [_dump(receipt)]}
        text = f"payment failed ({reason}): {reason_text(reason)}"
        if detail and detail != reason:
            text += f" [{detail}]"
        self._close(task, "failed", agent_message(task.id, task.context_id, text, metadata))
        event(self.agent.name, "payment-refused", task=task.id, reason=reason, transport="a2a")
        return task.document

    @staticmethod
    def _close(task: PaidTask, state: str, message: dict[str, Any], result: Any = None) -> None:
        task.state = state
        task.document = task_document(task.id, task.context_id, state, message, result)


def task_resource(agent_url: str, task_id: str) -> str:
    """The x402 resource a task's payment is for: the agent's A2A endpoint and the task."""
    return f"{agent_url}/a2a#task={task_id}"


def _context_of(params: Any) -> str:
    message = params.get("message") if isinstance(params, dict) else None
    given = message.get("contextId") if isinstance(message, dict) else None
    return given if isinstance(given, str) and 0 < len(given) <= 128 else secrets.token_hex(16)


def _signature_of(raw: Any) -> str | None:
    try:
        return str(raw["payload"]["signature"]).lower()
    except (KeyError, TypeError):
        return None


def _mismatch(task: PaidTask, payload: PaymentPayload) -> str | None:
    """Why ``payload`` is not a payment for ``task`` (None when it is)."""
    if payload.x402_version != 2 or not isinstance(payload.payload.get("authorization"), dict):
        return ERR_INVALID_PAYLOAD
    if payload.accepted.scheme != c.SCHEME_EXACT:
        return c.ERR_UNSUPPORTED_SCHEME
    expected = task.required.resource.url if task.required.resource is not None else None
    if payload.resource is None or payload.resource.url != expected:
        return ERR_OTHER_TASK
    if _dump(payload.accepted) != _dump(task.requirement):
        return ERR_TERMS_MISMATCH
    return None


def is_follow_up(params: Any) -> bool:
    """Does this ``message/send`` continue a task (names a ``taskId``)?"""
    message = params.get("message") if isinstance(params, dict) else None
    return isinstance(message, dict) and message.get("taskId") is not None


def activated_extensions(header: str | None) -> list[str]:
    """The extensions of ours a client activated (``X-A2A-Extensions``), echoed back."""
    asked = {uri.strip() for uri in (header or "").split(",")}
    return [EXTENSION_URI] if EXTENSION_URI in asked else []


def extension_declaration() -> dict[str, Any]:
    """The agent card's ``capabilities.extensions`` entry."""
    return {
        "uri": EXTENSION_URI,
        "description": "Priced skills are paid with x402 (exact) inside message/send: "
        "input-required with x402.payment.required, then x402.payment.payload",
        "required": True,
    }
