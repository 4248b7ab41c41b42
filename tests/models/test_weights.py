"""Weights from part packages: joined in order, verified by sha256, refused on a mismatch.

Small fake part distributions (real ``.dist-info`` metadata on ``sys.path``) exercise the same
lookup as the real ones; the pinned specs are checked against the installed real parts.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbazaar.errors import ModelUnavailable, WeightsMismatch
from agentbazaar.models.weights import (
    QWEN_CODER_0_5B,
    QWEN_CODER_1_5B,
    WeightsSpec,
    ensure_weights,
    part_paths,
)

PARTS = [os.urandom(3000 + 17 * i) for i in range(3)]


def _install_fake_parts(root: Path, prefix: str, parts: list[bytes], version: str) -> None:
    for index, data in enumerate(parts, start=1):
        package = f"{prefix.replace('-', '_')}{index}"
        rel = f"{package}/data/part{index:02d}.bin"
        (root / package / "data").mkdir(parents=True)
        (root / rel).write_bytes(data)
        info = root / f"{package}-{version}.dist-info"
        info.mkdir()
        name = f"{prefix}{index}"
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "RECORD").write_text(f"{rel},,\n{package}-{version}.dist-info/METADATA,,\n")


@pytest.fixture
def fake_parts(tmp_path: Path) -> Iterator[WeightsSpec]:
    site = tmp_path / "site"
    _install_fake_parts(site, "fake-weights-part", PARTS, "1.0.0")
    sys.path.insert(0, str(site))
    joined = b"".join(PARTS)
    try:
        yield WeightsSpec(
            model_id="test/fake",
            file_name="fake.gguf",
            part_prefix="fake-weights-part",
            parts=len(PARTS),
            version="1.0.0",
            size=len(joined),
            sha256=hashlib.sha256(joined).hexdigest(),
        )
    finally:
        sys.path.remove(str(site))


def test_parts_join_in_order_into_a_verified_file_once(
    fake_parts: WeightsSpec, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    path = ensure_weights(fake_parts, cache_dir=cache)
    assert path.read_bytes() == b"".join(PARTS)
    first = path.stat().st_mtime_ns
    assert ensure_weights(fake_parts, cache_dir=cache) == path
    assert path.stat().st_mtime_ns == first  # not joined again
    assert ensure_weights(fake_parts, cache_dir=cache, verify=True) == path
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith(".tmp")) == []


def test_a_wrong_hash_is_refused_and_nothing_is_left(
    fake_parts: WeightsSpec, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    bad = WeightsSpec(**{**fake_parts.__dict__, "sha256": "00" * 32})
    with pytest.raises(WeightsMismatch) as caught:
        ensure_weights(bad, cache_dir=cache)
    assert caught.value.fields["sha256"] == fake_parts.sha256
    assert not (cache / bad.file_name).exists()
    assert [p for p in cache.iterdir() if p.suffix == ".tmp"] == []


def test_a_cached_file_changed_after_verification_is_not_used(
    fake_parts: WeightsSpec, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    path = ensure_weights(fake_parts, cache_dir=cache)
    with path.open("r+b") as fh:
        fh.write(b"\xff\xff\xff\xff")
    again = ensure_weights(fake_parts, cache_dir=cache)
    assert again.read_bytes() == b"".join(PARTS)  # re-hashed, refused, joined again


def test_missing_or_other_version_parts_name_the_fix(
    fake_parts: WeightsSpec, tmp_path: Path
) -> None:
    missing = WeightsSpec(**{**fake_parts.__dict__, "parts": 4})
    with pytest.raises(ModelUnavailable, match="make setup"):
        ensure_weights(missing, cache_dir=tmp_path / "cache")
    other = WeightsSpec(**{**fake_parts.__dict__, "version": "2.0.0"})
    with pytest.raises(ModelUnavailable, match=r"is 1\.0\.0, not 2\.0\.0"):
        part_paths(other)


@pytest.mark.parametrize("spec", [QWEN_CODER_1_5B, QWEN_CODER_0_5B], ids=["1.5b", "0.5b"])
def test_the_installed_real_parts_add_up_to_the_pinned_size(spec: WeightsSpec) -> None:
    paths = part_paths(spec)
    assert len(paths) == spec.parts
    assert [p.name for p in paths] == [f"part{i:02d}.bin" for i in range(1, spec.parts + 1)]
    assert sum(p.stat().st_size for p in paths) == spec.size
