"""CID computation speed beside plain sha256 of the same bytes (goal: ratio >= 0.8).

Prints one JSON line per figure. Run: .venv/bin/python -P benchmarks/data.py [--mib 256] [--trials 5]

- ``cid_file``: ``dag_of_file`` on a file in the page cache (256 KiB raw leaves, the balanced
  174-link UnixFS DAG, CIDv1, the file's stat checked before and after) beside reading the same
  file in 256 KiB reads into one ``hashlib.sha256``.
- ``cid_bytes``: ``cid_of_bytes`` on bytes in memory beside ``hashlib.sha256(data)``.
- ``cid_small_files``: a directory of 1,000 files of 4 KiB (``dag_of_path``) beside sha256 of
  each file read whole (the per-file cost: open, stat twice, one block, the directory node).

Trials alternate ours and the reference; the best of each is reported (least disturbed by other
work on the machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agentbazaar.data.cid import CHUNK_SIZE, cid_of_bytes, dag_of_file, dag_of_path


def _best(
    trials: int, ours: Callable[[], object], ref: Callable[[], object]
) -> tuple[float, float]:
    best_ours = best_ref = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        ours()
        best_ours = min(best_ours, time.perf_counter() - start)
        start = time.perf_counter()
        ref()
        best_ref = min(best_ref, time.perf_counter() - start)
    return best_ours, best_ref


def _emit(name: str, size: int, ours_s: float, ref_s: float, **extra: object) -> None:
    mb = size / 1e6
    print(
        json.dumps(
            {
                "name": name,
                "value": round(mb / ours_s, 1),
                "reference": round(mb / ref_s, 1),
                "unit": "MB/s",
                "ratio": round(ref_s / ours_s, 3),
                "bytes": size,
                **extra,
            }
        ),
        flush=True,
    )


def _sha256_file(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            h.update(chunk)
    return h.digest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    data = os.urandom(args.mib * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.bin"
        path.write_bytes(data)
        ours, ref = _best(args.trials, lambda: dag_of_file(path), lambda: _sha256_file(path))
        _emit("cid_file", len(data), ours, ref, reference_name="sha256 of the file, 256 KiB reads")
        ours, ref = _best(args.trials, lambda: cid_of_bytes(data), lambda: hashlib.sha256(data))
        _emit("cid_bytes", len(data), ours, ref, reference_name="hashlib.sha256(bytes)")
        folder = Path(tmp) / "many"
        folder.mkdir()
        for i in range(1_000):
            (folder / f"row-{i:04d}.json").write_bytes(data[i * 4096 : (i + 1) * 4096])
        files = sorted(folder.iterdir())
        ours, ref = _best(
            args.trials,
            lambda: dag_of_path(folder),
            lambda: [hashlib.sha256(f.read_bytes()).digest() for f in files],
        )
        _emit("cid_small_files", 1_000 * 4096, ours, ref, reference_name="sha256 per file")


if __name__ == "__main__":
    main()
