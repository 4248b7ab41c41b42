"""A language model on this CPU: a GGUF file run by the xllamacpp runtime (llama.cpp), in process.

    from agentbazaar.models import ChatRequest, shared_language_model

    model = shared_language_model()            # Qwen2.5-Coder-1.5B-Instruct Q4_K_M, lazy
    answer = model.complete(ChatRequest.chat(
        [{"role": "user", "content": "Name a colour."}],
        schema={"type": "object", "properties": {"colour": {"type": "string"}},
                "required": ["colour"]},
        max_tokens=32, temperature=0, seed=1))
    answer.text, answer.token_ids, answer.prompt_tokens, answer.completion_tokens

Loading is lazy (the first request, or ``load()``), once per process and model, under a lock:
the weights are joined and verified (``weights.ensure_weights``), the runtime starts with
``threads`` CPU threads, one slot and a ``context_size``-token window, and one short request
with the model's fixed system prompt runs at once (it pages the weights in and fills the prompt
cache with that prefix: the first real answer is then as fast as the others).

Reproducibility (measured, see ``benchmarks/determinism.py`` and BENCHMARKS.md): with the same
weights, runtime, context size, batch sizes and seed, a request evaluated from an empty cache
gives the same token ids every time, in any process. Reusing a cached prompt prefix changes the
order of the floating-point sums and so, sometimes, the tokens. Requests therefore evaluate the
whole prompt (``cache_prompt=False``) unless the caller asks for the cache (faster, not
reproducible token for token: fine for a local parser, never for a sale with a receipt). The
runtime has one slot, so concurrent requests queue instead of being decoded together in a batch,
which would also change the sums.

The runtime also listens on a loopback port (it cannot be switched off); it is locked with a
random API key that never leaves this object.

Errors: ``ModelUnavailable`` (runtime or weights not installed: names the fix),
``WeightsMismatch`` (weights not the pinned ones), ``PromptTooLong``, ``BadMessages``,
``MaxTokensOutOfRange``, ``BadSamplingParameter`` (see ``chat``), ``ModelError`` for a runtime
failure.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from agentbazaar.errors import BazaarError, InputError, ModelError, ModelUnavailable
from agentbazaar.models.chat import ChatRequest, Completion, FinishReason
from agentbazaar.models.errors import BadMessages, BadSamplingParameter, PromptTooLong
from agentbazaar.models.weights import INSTALL_HINT, QWEN_CODER_1_5B, WeightsSpec, ensure_weights

RUNTIME = "xllamacpp"
DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 512
SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly and exactly as asked."
# the sampler chain, fixed: every other sampler of the runtime is set to its neutral value
SAMPLERS = ["top_k", "top_p", "min_p", "temperature"]
_NEUTRAL = {
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "dry_multiplier": 0.0,
    "xtc_probability": 0.0,
    "typical_p": 1.0,
    "mirostat": 0,
    "top_n_sigma": -1.0,
    "dynatemp_range": 0.0,
    "n_probs": 0,
}


def default_threads() -> int:
    """``BAZAAR_MODEL_THREADS``, else 1: on 2 shared cores one thread is as fast as two when
    the other core is busy, and much steadier (BENCHMARKS.md)."""
    raw = os.environ.get("BAZAAR_MODEL_THREADS", "1")
    try:
        threads = int(raw)
    except ValueError:
        threads = 0
    if not 1 <= threads <= 64:
        raise InputError(f"BAZAAR_MODEL_THREADS must be 1..64, not {raw!r}")
    return threads


def runtime_version() -> str:
    """``xllamacpp <version>``; ``ModelUnavailable`` when the runtime is not installed."""
    try:
        return f"{RUNTIME} {metadata.version(RUNTIME)}"
    except metadata.PackageNotFoundError as exc:
        raise ModelUnavailable(
            f"the {RUNTIME} runtime is not installed: run {INSTALL_HINT}"
        ) from exc


@dataclass(frozen=True)
class RuntimeConfig:
    """What, besides the weights and the sampling, decides the tokens (all in receipts)."""

    threads: int
    context_size: int = DEFAULT_CONTEXT
    batch_size: int = DEFAULT_BATCH
    ubatch_size: int = DEFAULT_BATCH
    slots: int = 1  # > 1 decodes concurrent requests together: not reproducible (measured)

    def to_json(self) -> dict[str, int]:
        return {
            "threads": self.threads,
            "context_size": self.context_size,
            "batch_size": self.batch_size,
            "ubatch_size": self.ubatch_size,
            "slots": self.slots,
        }


@dataclass(frozen=True)
class Piece:
    """One streamed chunk: its text and the ids of the tokens it carries."""

    text: str
    token_ids: tuple[int, ...]


class LanguageModel:
    """One GGUF model in this process; lazy, loaded once, thread-safe. See the module doc."""

    def __init__(
        self,
        spec: WeightsSpec = QWEN_CODER_1_5B,
        *,
        threads: int | None = None,
        context_size: int = DEFAULT_CONTEXT,
        batch_size: int = DEFAULT_BATCH,
        slots: int = 1,
        system_prompt: str = SYSTEM_PROMPT,
        cache_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.config = RuntimeConfig(
            threads or default_threads(), context_size, batch_size, batch_size, slots
        )
        self.system_prompt = system_prompt
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._server: Any = None
        self._key = secrets.token_urlsafe(24)
        self.load_seconds: float | None = None

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def weights_hash(self) -> str:
        return self.spec.weights_hash

    @property
    def runtime(self) -> str:
        return runtime_version()

    @property
    def max_tokens_limit(self) -> int:
        return self.config.context_size

    # ---- lifecycle ----------------------------------------------------------------------------
    def load(self) -> None:
        """Join/verify the weights, start the runtime, warm it (once; later calls return)."""
        self._runtime()

    def _runtime(self) -> Any:
        with self._lock:
            if self._server is None:
                started = time.perf_counter()
                server = self._start()
                self._warm(server)
                self._server = server
                self.load_seconds = time.perf_counter() - started
            return self._server

    def _start(self) -> Any:
        runtime_version()
        path = ensure_weights(self.spec, cache_dir=self.cache_dir)
        import xllamacpp

        p = xllamacpp.CommonParams()
        p.model.path = str(path)
        p.n_ctx = self.config.context_size
        p.n_batch = self.config.batch_size
        p.n_ubatch = self.config.ubatch_size
        p.n_parallel = self.config.slots
        p.cpuparams.n_threads = self.config.threads
        p.cpuparams_batch.n_threads = self.config.threads
        p.n_threads_http = 1
        p.api_keys = [self._key]
        p.verbosity = -1
        try:
            return xllamacpp.Server(p)
        except RuntimeError as exc:
            raise ModelError(f"the runtime could not load {self.model_id}: {exc}") from exc

    def _warm(self, server: Any) -> None:
        messages = [{"role": "system", "content": self.system_prompt}]
        body = {"messages": [*messages, {"role": "user", "content": "ok"}], "max_tokens": 1}
        _call(server, dict(body, cache_prompt=True, temperature=0.0))

    def close(self) -> None:
        """Stop the runtime and free its memory (a later request loads it again)."""
        with self._lock:
            server, self._server = self._server, None
        del server

    # ---- generation ---------------------------------------------------------------------------
    def complete(self, request: ChatRequest, *, cache_prompt: bool = False) -> Completion:
        """Generate the whole answer (see the module doc for ``cache_prompt``)."""
        body = self.body(request, stream=False, cache_prompt=cache_prompt)
        result = _call(self._runtime(), body)
        choice, usage = result["choices"][0], result["usage"]
        tokens = tuple(int(t) for t in result["__verbose"]["tokens"])
        if len(tokens) != usage["completion_tokens"]:
            raise ModelError("the runtime's token ids and its token count disagree")
        timings = result.get("timings") or {}
        return Completion(
            text=choice.get("text") or "",
            token_ids=tokens,
            prompt_tokens=int(usage["prompt_tokens"]),
            finish_reason=_finish(choice.get("finish_reason")),
            prompt_ms=float(timings.get("prompt_ms", 0.0)),
            generation_ms=float(timings.get("predicted_ms", 0.0)),
        )

    def stream(self, request: ChatRequest, *, cache_prompt: bool = False) -> TokenStream:
        """Generate token by token: iterate the ``Piece``s; ``close()`` (or leaving a ``with``
        block) stops the generation; ``completion()`` is what was produced up to there."""
        body = self.body(request, stream=True, cache_prompt=cache_prompt)
        return TokenStream(self._runtime(), body)

    def body(self, request: ChatRequest, *, stream: bool, cache_prompt: bool) -> dict[str, Any]:
        """The runtime request: the chat template applied by the runtime (``prompt``), every
        sampling parameter explicit, the rest neutral. The text-completion route is used (not
        the chat route) because the chat route's answer parser swallows some token ids."""
        request.sampling.checked(self.max_tokens_limit)
        s = request.sampling
        body: dict[str, Any] = {
            "prompt": self.prompt(request),
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "min_p": s.min_p,
            "seed": s.seed,
            "samplers": SAMPLERS,
            **_NEUTRAL,
            "cache_prompt": cache_prompt,
            "stream": stream,
            "return_tokens": True,
            "verbose": True,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        fmt = request.response_format
        if fmt is not None:
            inner = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
            body["json_schema"] = inner or {"type": "object"}
        return body

    # ---- tokens -------------------------------------------------------------------------------
    def prompt(self, request: ChatRequest) -> str:
        """The prompt text the model reads: the messages through the model's chat template."""
        messages = [m.to_json() for m in request.messages]
        answer = self._post("/apply-template", {"messages": messages})
        return str(answer["prompt"])

    def count_prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens the prompt of ``request`` takes, without running the model: what an
        input-token price is computed from before generation."""
        tokens = self._post("/tokenize", {"content": self.prompt(request), "add_special": True})
        count = len(tokens["tokens"])
        if count >= self.config.context_size:
            raise _too_long(count, self.config.context_size)
        return count

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The runtime's own template and tokenizer, over its locked loopback port."""
        address = self._runtime().listening_address
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            answer = httpx.post(address + path, json=body, headers=headers, timeout=30.0)
            answer.raise_for_status()
            data = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ModelError(f"the runtime did not answer {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError(f"the runtime answered {path} with something else than an object")
        return data


class TokenStream:
    """The pieces of one streamed generation (the runtime runs in a worker thread)."""

    def __init__(self, server: Any, body: dict[str, Any]) -> None:
        self._queue: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()
        self._stop = threading.Event()
        self._pieces: list[Piece] = []
        self._finish: FinishReason | None = None
        self._usage: dict[str, Any] = {}
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(server, body), daemon=True)
        self._thread.start()

    def _run(self, server: Any, body: dict[str, Any]) -> None:
        def on_chunk(chunk: dict[str, Any]) -> bool:
            self._queue.put(chunk)
            return self._stop.is_set()

        try:
            server.handle_completions(body, on_chunk)
        except ValueError as exc:
            self._queue.put(runtime_refusal({"message": str(exc), "code": 400}))
        except BaseException as exc:  # reported to the consumer, not lost in this thread
            self._queue.put(exc)
        finally:
            self._queue.put(None)

    def __iter__(self) -> Iterator[Piece]:
        while not self._done:
            item = self._queue.get()
            if item is None:
                self._done = True
                break
            if isinstance(item, BaseException):
                self._done = True
                raise item
            try:
                piece = self._piece(item)
            except BazaarError:
                self.close()
                raise
            if piece is not None:
                yield piece

    def _piece(self, chunk: dict[str, Any]) -> Piece | None:
        if "error" in chunk or ("choices" not in chunk and "usage" not in chunk):
            raise runtime_refusal(chunk.get("error", chunk))
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        verbose = chunk.get("__verbose") or {}
        if "tokens_evaluated" in verbose and "prompt_tokens" not in self._usage:
            # every chunk says how many prompt tokens were read: a stream stopped early has
            # no usage chunk (exact with the prompt cache off, as for every sale)
            self._usage = {"prompt_tokens": int(verbose["tokens_evaluated"])}
        for choice in chunk.get("choices") or []:
            if choice.get("finish_reason"):
                self._finish = _finish(choice["finish_reason"])
            ids = tuple(int(t) for t in (chunk.get("__verbose") or {}).get("tokens") or [])
            text = choice.get("text") or ""
            if ids or text:
                self._pieces.append(Piece(text, ids))
                return self._pieces[-1]
        return None

    def close(self) -> None:
        """Stop generating (at the next token) and wait for the runtime to let go."""
        self._stop.set()
        while not self._done:
            item = self._queue.get()
            self._done = item is None
        self._thread.join(timeout=30)

    def completion(self, *, delivered: int | None = None) -> Completion:
        """What was generated (or, with ``delivered``, the pieces whose tokens were handed on);
        finish reason ``cancelled`` when the stream was stopped before the model finished."""
        pieces, count = [], 0
        for piece in self._pieces:
            if delivered is not None and count + len(piece.token_ids) > delivered:
                break
            pieces.append(piece)
            count += len(piece.token_ids)
        finished = self._finish is not None and len(pieces) == len(self._pieces)
        return Completion(
            text="".join(p.text for p in pieces),
            token_ids=tuple(t for p in pieces for t in p.token_ids),
            prompt_tokens=int(self._usage.get("prompt_tokens", 0)),
            finish_reason=self._finish if finished and self._finish else "cancelled",
        )

    def __enter__(self) -> TokenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _call(server: Any, body: dict[str, Any]) -> dict[str, Any]:
    """One non-streamed request: the chat route for ``messages``, else the text route."""
    handle = server.handle_chat_completions if "messages" in body else server.handle_completions
    try:
        result = handle(body)
    except ValueError as exc:
        raise runtime_refusal({"message": str(exc), "code": 400}) from exc
    if not isinstance(result, dict) or "error" in result or "choices" not in result:
        raise runtime_refusal(result.get("error", result) if isinstance(result, dict) else {})
    return result


def runtime_refusal(error: object) -> InputError | ModelError:
    """The runtime's error answer as our typed error (bad input is an ``InputError``)."""
    err = error if isinstance(error, dict) else {}
    message = str(err.get("message") or error)[:300]
    if err.get("type") == "exceed_context_size_error":
        return _too_long(int(err.get("n_prompt_tokens", 0)), int(err.get("n_ctx", 0)))
    if int(err.get("code", 500) or 500) >= 500:
        return ModelError(f"the runtime failed: {message}")
    if any(word in message.lower() for word in ("schema", "grammar", "parser")):
        return BadSamplingParameter(f"the response format was refused: {message}")
    if "message" in message.lower():
        return BadMessages(f"the messages were refused: {message}")
    return BadSamplingParameter(f"the request was refused: {message}")


def _too_long(tokens: int, window: int) -> PromptTooLong:
    return PromptTooLong(
        f"the prompt takes {tokens} tokens; the model's context holds {window}: shorten it",
        tokens=tokens,
        limit=window,
    )


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "length" else "stop"


_shared_lock = threading.Lock()
_shared: dict[str, LanguageModel] = {}


def shared_language_model(spec: WeightsSpec = QWEN_CODER_1_5B) -> LanguageModel:
    """One ``LanguageModel`` per model in this process (the weights load once)."""
    with _shared_lock:
        model = _shared.get(spec.model_id)
        if model is None:
            model = _shared[spec.model_id] = LanguageModel(spec)
        return model
