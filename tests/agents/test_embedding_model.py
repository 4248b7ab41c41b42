"""The real MiniLM weights: loading, token counting, pricing, the tolerance against a re-run."""

from __future__ import annotations

import numpy as np
import pytest

from agentbazaar.agents.comparison import compare_embeddings
from agentbazaar.agents.pricing import price_for_tokens
from agentbazaar.errors import InputError
from agentbazaar.models.embedding import (
    EMBEDDING_DIM,
    Embedded,
    check_texts,
    shared_model,
    weights_hash,
)
from agentbazaar.models.errors import InputTooLarge


def test_price_rounds_up_in_base_units() -> None:
    assert price_for_tokens(0, 100) == 0
    assert price_for_tokens(1, 100) == 1
    assert price_for_tokens(1000, 100) == 100
    assert price_for_tokens(1001, 100) == 101
    assert price_for_tokens(10, 3) == 1
    with pytest.raises(InputError):
        price_for_tokens(-1, 100)


@pytest.mark.parametrize("bad", [[], "text", [""], ["  "], [1], ["x" * 5000], ["a"] * 300])
def test_bad_inputs_are_refused_before_any_work(bad: object) -> None:
    with pytest.raises(InputError):
        check_texts(bad)


@pytest.mark.inference
def test_model_embeds_counts_and_hashes() -> None:
    model = shared_model()
    assert shared_model() is model
    texts = ["a cat sat on the mat", "the stock market fell sharply today"]
    out = model.embed(texts)
    assert out.vectors.shape == (2, EMBEDDING_DIM) and out.vectors.dtype == np.float32
    assert out.tokens == model.count_tokens(texts) > 2 * 2  # CLS + SEP + words
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert model.weights_hash == weights_hash(model.path)
    assert len(model.weights_hash) == 66


@pytest.mark.inference
def test_rerun_with_other_batch_size_is_within_tolerance_and_a_lie_is_not() -> None:
    model = shared_model()
    texts = [f"sentence number {i} about {'many ' * (i % 5)}things" for i in range(12)]
    a = model.embed(texts, batch_size=1).vectors
    b = model.embed(texts, batch_size=12).vectors
    assert compare_embeddings(a, b).passed
    rng = np.random.default_rng(1)
    noisy = a + rng.standard_normal(a.shape).astype(np.float32) * 0.01
    assert not compare_embeddings(noisy, b).passed
    stale = np.roll(a, 1, axis=0)
    assert compare_embeddings(stale, b).min_cosine < 0.9
    assert not compare_embeddings(a[:5], b).passed


@pytest.mark.inference
def test_text_longer_than_the_window_is_refused() -> None:
    with pytest.raises(InputTooLarge):
        shared_model().count_tokens(["word " * 600])


@pytest.mark.inference
def test_concurrent_requests_are_embedded_in_one_batch_with_the_same_results() -> None:
    import threading
    import time

    model = shared_model()
    requests = [[f"request {i} sentence {j} about ships" for j in range(3)] for i in range(6)]
    requests[2] = ["word " * 600]  # too long: fails alone, the others still get their rows
    alone = {i: model.embed(r).vectors for i, r in enumerate(requests) if i != 2}
    results: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            results[i] = model.embed(requests[i])
        except InputTooLarge as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    before = model.encode_calls
    with model._lock:  # the model is busy: every request queues up
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(model._queue) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    for t in threads:
        t.join(timeout=30)
    assert model.encode_calls == before + 1
    assert isinstance(results[2], InputTooLarge)
    for i, vectors in alone.items():
        got = results[i]
        assert isinstance(got, Embedded)
        assert compare_embeddings(got.vectors, vectors).passed
        assert got.tokens == model.count_tokens(requests[i])
