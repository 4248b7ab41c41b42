"""Re-running paid inference to check it: the comparison rule and the validator's decision.

Tolerance, and why. The same model on the same input on CPU does not give bit-identical floats
across batch sizes and thread counts: batching changes padding and the order of reductions in
the matrix products, and torch's intra-op threads split sums differently. Measured on this
project's 2-core machine with torch 2.13 CPU over 50 sentences of 5-60 tokens, batch sizes 1, 2,
8, 32, 50 and 1 or 2 threads: the largest element-wise difference against batch size 1 was
1.4e-7 and the smallest cosine similarity 0.9999999 (the vectors are L2-normalised). A result is
therefore accepted when, for every row, the cosine similarity to the re-run is at least
``MIN_COSINE = 0.9999`` and every element differs by at most ``MAX_ABS_DIFF = 1e-4``: about 700
times the observed noise, and far below what a cheaper model, a perturbation or a stale answer
produces (a perturbation of 1% of the vector's norm already drops the cosine to ~0.99995; the
dishonest modes used in the tests and the demo drop it below 0.99, stale answers far lower).

The verdict is a validation score on ERC-8004's 0-100 scale: 100 when every row is within the
tolerance, 0 when any row is not (or when the shape, the model or the weights differ).

Generated text is compared exactly instead (``compare_tokens``): a language model's output is a
list of token ids, and re-running it under the receipt's settings reproduces them exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from agentbazaar.models.embedding import Matrix

MIN_COSINE = 0.9999
MAX_ABS_DIFF = 1e-4
PASS, FAIL = 100, 0


@dataclass(frozen=True)
class Comparison:
    score: int
    max_abs_diff: float
    min_cosine: float
    reason: str

    @property
    def passed(self) -> bool:
        return self.score == PASS


def compare_embeddings(claimed: Matrix, recomputed: Matrix) -> Comparison:
    """Compare a provider's output with a re-run, within the documented tolerance."""
    a = np.asarray(claimed, dtype=np.float64)
    b = np.asarray(recomputed, dtype=np.float64)
    if a.shape != b.shape:
        return Comparison(FAIL, float("inf"), -1.0, f"shape {a.shape} != re-run {b.shape}")
    diff = float(np.abs(a - b).max())
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.divide((a * b).sum(axis=1), norms, out=np.zeros(len(a)), where=norms > 0)
    min_cos = float(cos.min())
    if min_cos >= MIN_COSINE and diff <= MAX_ABS_DIFF:
        return Comparison(PASS, diff, min_cos, "within tolerance")
    row = int(cos.argmin())
    return Comparison(
        FAIL, diff, min_cos, f"row {row}: cosine {min_cos:.6f}, max abs diff {diff:.3g}"
    )


def should_sample(rate: float, rng: random.Random) -> bool:
    """Sample a receipt with probability ``rate`` (0 never, 1 always)."""
    if rate >= 1.0:
        return True
    return rate > 0.0 and rng.random() < rate


def compare_tokens(
    claimed: list[int], rerun: list[int], *, claimed_finish: str, rerun_finish: str
) -> Comparison:
    """A completion against its re-run: identical token ids (and the same finish) or it fails.

    Exact equality is the rule because it holds (BENCHMARKS.md, determinism): the same weights,
    runtime, settings and seed, evaluated from an empty prompt cache in one slot, give the same
    token ids in any process and with 1 or 2 threads. The distance reported is 0 when identical
    and 1 otherwise; the reason says how they differ."""
    if claimed == rerun and claimed_finish == rerun_finish:
        return Comparison(PASS, 0.0, 1.0, "identical token ids")
    n = len(claimed)
    if claimed == rerun:
        reason = f"finish reason {claimed_finish!r}, re-run {rerun_finish!r}"
    elif n < len(rerun) and rerun[:n] == claimed:
        reason = f"truncated: {n} tokens delivered, the model produces {len(rerun)}"
    elif len(rerun) < n and claimed[: len(rerun)] == rerun:
        reason = f"token count overstated: {n} claimed, the model produces {len(rerun)}"
    else:
        first = next(i for i, (a, b) in enumerate(zip(claimed, rerun, strict=False)) if a != b)
        reason = f"different tokens from token {first}: another model or an altered output"
    return Comparison(FAIL, 1.0, 0.0, reason)
