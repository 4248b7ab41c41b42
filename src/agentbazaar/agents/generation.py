"""Text generation sold per token: the skill, its receipts, and the OpenAI-compatible route.

``GenerationSkill`` runs a ``models.LanguageModel`` and is priced per input token and per output
token (``pricing.TokenPrices``; both prices are in the agent's card). Its price is *metered*:
what a completion costs is what its usage says, ``prices.charge(prompt tokens, output tokens)``,
known once it is done; the most it can cost, ``prices.ceiling(prompt tokens, max_tokens)``, is
known before (``quote``: what a buyer authorizes with an ``upto`` payment). A stream can be
stopped at a token budget: ``serve(..., budget=f)`` asks ``f(output tokens so far + this
piece)`` before each piece leaves, and stops (finish reason ``cancelled``) when it says no, so
a buyer pays only for what it received (the hook a per-chunk voucher plugs into).

Every completion gets a ``GenerationReceipt`` (see ``receipts``) signed by the provider over
the prompt, the token ids delivered, the counts, every sampling and runtime parameter and the
price; the provider keeps the evidence and asks its validator to re-run it.

``install_openai_routes(app, agent, skill)`` serves ``POST /v1/chat/completions`` (JSON or
``stream: true`` server-sent events, ``response_format`` JSON schema) and ``GET /v1/models``
in the OpenAI wire format, so the official ``openai`` client works unchanged; each answer also
carries ``bazaar: {price, asset, receipt, token_ids}``. Errors carry an OpenAI error body with
the error's ``http_status`` (4xx for the request, 503 when the model or the chain is down). For now the route is not paywalled: payments will wrap it with the metered price.

Dishonest modes exist so the validator's catch is shown rather than assumed: ``substitute``
serves another (cheaper) model while naming this one, ``truncate`` delivers half the tokens and
claims the model stopped, ``overcount`` pads the token list and bills the padding. Each receipt
is signed honestly over what was delivered: the lie is in the work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from agentbazaar.agents.pricing import TokenPrices
from agentbazaar.agents.protocol import in_thread, json_body
from agentbazaar.agents.receipts import (
    GenerationReceipt,
    SignedReceipt,
    prompt_hash,
    sign_receipt,
    tokens_bytes,
    tokens_hash,
)
from agentbazaar.agents.skills import Payment
from agentbazaar.errors import BazaarError, InputError, NotFound
from agentbazaar.models.chat import ChatRequest, Completion
from agentbazaar.models.language import LanguageModel, Piece

if TYPE_CHECKING:
    from agentbazaar.agents.runtime import Agent

GenerationMode = Literal["honest", "substitute", "truncate", "overcount"]
GENERATION_MODES: tuple[str, ...] = ("honest", "substitute", "truncate", "overcount")
UNPAID = "0x" + "00" * 32
Budget = Callable[[int], bool]


class GenerationSkill:
    """Chat completions from a local language model, priced per token, with receipts."""

    id = "generate"
    unit = "output token"
    metered = True

    def __init__(
        self,
        model: LanguageModel,
        prices: TokenPrices,
        *,
        mode: GenerationMode = "honest",
        substitute: LanguageModel | None = None,
    ) -> None:
        if mode not in GENERATION_MODES:
            raise InputError(
                f"unknown provider mode {mode!r}; one of {', '.join(GENERATION_MODES)}"
            )
        if mode == "substitute" and substitute is None:
            raise InputError("the substitute mode needs the model actually served")
        self.model = model
        self.prices = prices
        self.mode: GenerationMode = mode
        self.served = substitute if mode == "substitute" and substitute else model
        self.name = f"Text generation ({model.model_id})"
        self.description = "Chat completions with JSON-schema output, per-token prices, receipts"
        self.tags = ["text-generation", "llm", "json-schema", "verifiable"]
        self.unit_price = prices.output

    def card_prices(self) -> list[tuple[int, str]]:
        """The prices the agent's card lists: per input token and per output token."""
        return [(self.prices.input, "input token"), (self.prices.output, "output token")]

    def offer(self) -> dict[str, Any]:
        """What a buyer needs to choose this model: id, weights, window, runtime, prices."""
        return {
            "model": self.model.model_id,
            "weightsHash": self.model.weights_hash,
            "contextLength": self.model.config.context_size,
            "runtime": self.model.runtime,
            "inputPrice": str(self.prices.input),
            "outputPrice": str(self.prices.output),
        }

    # ---- the Skill protocol (quote, then work) ------------------------------------------------
    def quote(self, payload: Any) -> tuple[int, int, str]:
        """(the most this request can cost, its max_tokens, its prompt hash)."""
        request = self.request(payload)
        prompt_tokens = self.model.count_prompt_tokens(request)
        ceiling = self.prices.ceiling(prompt_tokens, request.sampling.max_tokens)
        return ceiling, request.sampling.max_tokens, prompt_hash(request.prompt_json())

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]:
        completion, signed = self.serve(agent, self.request(payload), payment_ref=payment.nonce)
        return chat_completion_json(self, completion, signed)

    def request(self, payload: Any) -> ChatRequest:
        if isinstance(payload, dict) and payload.get("model") not in (None, self.model.model_id):
            raise NotFound(
                f"this agent serves {self.model.model_id}, not {payload.get('model')!r}",
                code="model_not_found",
            )
        request = ChatRequest.from_openai(payload, max_tokens_limit=self.model.max_tokens_limit)
        prompt_hash(request.prompt_json())  # refuses what a receipt cannot cover
        return request

    # ---- work ---------------------------------------------------------------------------------
    def serve(
        self,
        agent: Agent,
        request: ChatRequest,
        *,
        payment_ref: str = UNPAID,
        budget: Budget | None = None,
        on_piece: Callable[[Piece], None] | None = None,
    ) -> tuple[Completion, SignedReceipt]:
        """Generate (streamed to ``on_piece`` when given), stop at the ``budget``, receipt."""
        if budget is None and on_piece is None and self.mode != "truncate":
            completion = self.served.complete(request)
        else:
            completion = self._streamed(request, budget, on_piece)
        completion = self._dishonest(completion, request.sampling.max_tokens)
        return completion, self.receipt(agent, request, completion, payment_ref)

    def _streamed(
        self, request: ChatRequest, budget: Budget | None, on_piece: Callable[[Piece], None] | None
    ) -> Completion:
        delivered = 0
        with self.served.stream(request) as stream:
            for piece in stream:
                if budget is not None and not budget(delivered + len(piece.token_ids)):
                    break
                delivered += len(piece.token_ids)
                if on_piece is not None:
                    on_piece(piece)
        return stream.completion(delivered=delivered)

    def _dishonest(self, completion: Completion, max_tokens: int) -> Completion:
        ids = completion.token_ids
        if self.mode == "truncate" and len(ids) > 1:
            return _replace(completion, ids[: len(ids) // 2])
        if self.mode == "overcount":  # padding within max_tokens when there is room
            extra = min(max(2, len(ids) // 4), max_tokens - len(ids)) or 2
            return _replace(completion, ids + ids[-1:] * extra)
        return completion

    def receipt(
        self, agent: Agent, request: ChatRequest, completion: Completion, payment_ref: str
    ) -> SignedReceipt:
        out = completion.completion_tokens
        receipt = GenerationReceipt(
            provider_agent_id=agent.require_agent_id(),
            provider=agent.address,
            model_id=self.model.model_id,
            weights_hash=self.model.weights_hash,
            input_hash=prompt_hash(request.prompt_json()),
            output_hash=tokens_hash(completion.token_ids),
            asset=agent.token.address or "",
            price=self.prices.charge(completion.prompt_tokens, out),
            payment_ref=payment_ref,
            timestamp=int(time.time()),
            runtime=self.model.runtime,
            settings={**request.sampling.to_json(), **self.model.config.to_json()},
            input_tokens=completion.prompt_tokens,
            output_tokens=out,
            finish_reason=completion.finish_reason,
            input_price=self.prices.input,
            output_price=self.prices.output,
        )
        signed = sign_receipt(agent.signer, receipt, agent.chain.chain_id)
        agent.receipts.add(
            signed,
            role="issued",
            texts=request.prompt_json(),
            output=tokens_bytes(completion.token_ids),
        )
        agent.request_validation(signed)
        return signed


def _replace(completion: Completion, ids: tuple[int, ...]) -> Completion:
    return Completion(completion.text, ids, completion.prompt_tokens, completion.finish_reason)


# ---- the OpenAI wire format ---------------------------------------------------------------------
def chat_completion_json(
    skill: GenerationSkill, completion: Completion, signed: SignedReceipt
) -> dict[str, Any]:
    r = signed.receipt
    return {
        "id": "chatcmpl-" + signed.id[2:26],
        "object": "chat.completion",
        "created": r.timestamp,
        "model": skill.model.model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": _wire_finish(completion.finish_reason),
            }
        ],
        "usage": _usage(completion),
        "bazaar": _bazaar(signed, completion),
    }


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def _bazaar(signed: SignedReceipt, completion: Completion) -> dict[str, Any]:
    return {
        "price": str(signed.receipt.price),
        "asset": signed.receipt.asset,
        "receipt": signed.to_json(),
        "token_ids": list(completion.token_ids),
    }


def _wire_finish(reason: str) -> str:
    return "stop" if reason == "stop" else "length"


def _chunk(chunk_id: str, model: str, delta: dict[str, Any], finish: str | None) -> str:
    body = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def sse_stream(
    agent: Agent, skill: GenerationSkill, request: ChatRequest, *, budget: Budget | None = None
) -> Iterator[str]:
    """Server-sent events of one streamed completion, the receipt in the last event."""
    import queue
    import threading

    events: queue.Queue[str | None] = queue.Queue()
    chunk_id = f"chatcmpl-{int(time.time() * 1000):x}"
    model = skill.model.model_id
    gone = threading.Event()  # the client went away: stop generating, receipt what it got

    def allowed(tokens: int) -> bool:
        return not gone.is_set() and (budget is None or budget(tokens))

    def work() -> None:
        try:
            completion, signed = skill.serve(
                agent,
                request,
                budget=allowed,
                on_piece=lambda p: events.put(_chunk(chunk_id, model, {"content": p.text}, None)),
            )
            final = _chunk(chunk_id, model, {}, _wire_finish(completion.finish_reason))
            tail = json.loads(final[6:])
            tail.update(usage=_usage(completion), bazaar=_bazaar(signed, completion))
            events.put(f"data: {json.dumps(tail, ensure_ascii=False)}\n\n")
        except BazaarError as exc:
            events.put(f"data: {json.dumps({'error': _error_body(exc)['error']})}\n\n")
        finally:
            events.put(None)

    yield _chunk(chunk_id, model, {"role": "assistant", "content": ""}, None)
    threading.Thread(target=work, name="generation-stream", daemon=True).start()
    try:
        while (event := events.get()) is not None:
            yield event
        yield "data: [DONE]\n\n"
    finally:
        gone.set()


def _error_body(exc: BazaarError) -> dict[str, Any]:
    code = exc.fields.get("code") or type(exc).__name__
    kind = "invalid_request_error" if isinstance(exc, InputError) else "server_error"
    return {"error": {"message": exc.message, "type": kind, "code": code, "param": None}}


def install_openai_routes(app: FastAPI, agent: Agent, skill: GenerationSkill) -> None:
    """``POST /v1/chat/completions`` and ``GET /v1/models`` for ``skill`` (see module doc)."""

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": skill.model.model_id, "object": "model", "owned_by": agent.name}],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            body = await json_body(request)
            chat = skill.request(body)
            if isinstance(body, dict) and body.get("stream"):
                await in_thread(lambda: skill.model.count_prompt_tokens(chat))
                return StreamingResponse(
                    sse_stream(agent, skill, chat), media_type="text/event-stream"
                )
            completion, signed = await in_thread(lambda: skill.serve(agent, chat))
        except BazaarError as exc:  # OpenAI's error body, the tree's status
            return JSONResponse(_error_body(exc), status_code=exc.http_status)
        return JSONResponse(chat_completion_json(skill, completion, signed))
