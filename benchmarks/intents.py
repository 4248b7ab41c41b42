"""Plain-language intents: accuracy and latency of each path over the phrasing corpus.

The corpus is ``tests/data/intents.jsonl`` and ``tests/data/intents_zh.jsonl``: each sentence
with its exact expected intent, the values to ask for, or the refusal. Measured in the same run:

- the fast path (``understand`` without a model): exact answers, p50/p99 latency, and the share
  of the corpus it answers (an intent, a question or a refusal; the rest would go to the model);
- the model path (``understand(..., fast_path=False)`` with the local model of
  ``agentbazaar.models``): the same sentences forced through the model, its answer held to the
  sentence and validated; only sentences that are not among the prompt's few-shot examples
  (``--model-sample`` of them, spread evenly over the corpus), warm (the fixed prompt read once
  before timing). Refusals are decided in code before the model and are counted too.

A row is exact when the intent equals the expected one field for field, the question names
exactly the expected missing values, or the refusal carries the expected reason.
``ratio`` = model-path p50 / fast-path p50. One JSON line per figure.

    python benchmarks/intents.py --model-sample 40 --model 1.5b
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent

CORPUS = _HERE.parent / "tests" / "data"


def _emit(name: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"name": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def load_rows() -> list[dict[str, Any]]:
    rows = []
    for name in ("intents.jsonl", "intents_zh.jsonl"):
        rows += [json.loads(line) for line in (CORPUS / name).read_text().splitlines() if line]
    return rows


def judge(row: dict[str, Any], run: Callable[[str], Any]) -> tuple[bool, bool, float]:
    """(exact, answered, seconds) of one corpus row; ``answered``: not handed on as unread."""
    from agentbazaar.errors import InputError, NeedsClarification
    from agentbazaar.intents import IntentParseError, IntentRefused

    started = time.perf_counter()
    try:
        got = run(row["text"]).intent.model_dump(exclude_none=True)
        ok = got == row.get("expect")
        answered = True
    except NeedsClarification as asked:
        ok, answered = asked.missing == row.get("ask"), True
    except IntentRefused as refused:
        ok, answered = "refuse" in row and row["refuse"] in str(refused), True
    except IntentParseError as unread:
        ok = "refuse" in row and row["refuse"] in str(unread)
        answered = ok
    except InputError:
        ok, answered = False, True
    return ok, answered, time.perf_counter() - started


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(path: str, rows: Sequence[dict[str, Any]], run: Callable[[str], Any]) -> float:
    """Emit accuracy, p50 and p99 of one path; returns its p50 in seconds."""
    results = [judge(row, run) for row in rows]
    exact = sum(ok for ok, _, _ in results)
    seconds = [s for _, _, s in results]
    _emit(f"intents_{path}_accuracy", 100 * exact / len(rows), "%", exact=exact, rows=len(rows))
    p50, p99 = statistics.median(seconds), _percentile(seconds, 0.99)
    _emit(f"intents_{path}_p50", 1000 * p50, "ms", rows=len(rows))
    _emit(f"intents_{path}_p99", 1000 * p99, "ms", rows=len(rows))
    if path == "fast":
        share = sum(answered for _, answered, _ in results)
        _emit("intents_fast_path_share", 100 * share / len(rows), "%", answered=share)
    return p50


def held_out(rows: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` rows spread evenly over the corpus, none of them a few-shot example."""
    from agentbazaar.intents.prompt import EXAMPLES

    shots = {text.lower() for text, _ in EXAMPLES}
    pool = [row for row in rows if row["text"].lower() not in shots]
    step = max(1, len(pool) // max(n, 1))
    return pool[::step][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-sample", type=int, default=30, help="0: the fast path only")
    parser.add_argument("--model", default="1.5b", choices=["0.5b", "1.5b"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    from agentbazaar.intents import understand

    rows = load_rows()
    fast = measure("fast", rows, lambda text: understand(text))
    if args.model_sample <= 0:
        return
    from agentbazaar.intents.llm import LocalModel

    model = LocalModel(args.model, threads=args.threads)
    started = time.perf_counter()
    model.load()
    _emit("intents_model_load", time.perf_counter() - started, "s", model=args.model)
    sample = held_out(rows, args.model_sample)
    slow = measure("model", sample, lambda text: understand(text, extractor=model, fast_path=False))
    _emit("intents_model_vs_fast_p50", slow / fast, "ratio", model=args.model)


if __name__ == "__main__":
    main()
