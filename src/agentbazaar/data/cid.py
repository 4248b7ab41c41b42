"""Content addressing: the CIDv1 of a file or a directory, as IPFS computes it.

Format (what anyone needs to recompute our CIDs):

- **Chunker**: fixed size, ``size-262144`` (256 KiB); the last chunk holds the rest. An empty
  file is one empty chunk.
- **Leaves**: raw blocks (multicodec ``raw`` 0x55), CIDv1, multihash sha2-256 (0x12). A file
  that fits in one chunk *is* its leaf: its CID is ``bafkrei...`` = CIDv1(raw, sha256(bytes)),
  what ``ipfs add --cid-version 1 --raw-leaves`` prints.
- **Larger files**: a balanced UnixFS DAG (dag-pb 0x70, CIDv1, sha2-256), at most 174 links per
  node, as go-unixfs's ``balanced`` layout builds it: leaves are grouped left to right into nodes
  of 174, those nodes into nodes of 174, and so on until one root remains (a tree of depth
  ceil(log174(chunks)); the last node of each level may be partly filled, even with one child).
  Each node is a dag-pb ``PBNode`` whose ``Data`` is UnixFS ``{Type: File, filesize,
  blocksizes[]}`` (the file bytes under each child) and whose links are ``{Hash: child CID,
  Name: "", Tsize: all block bytes under the child}`` (see ``_dagpb``). This equals ``ipfs add
  --cid-version 1 --raw-leaves --chunker=size-262144`` (kubo's defaults for CIDv1); the tests
  check it against CIDs that kubo printed for the same bytes.
- **Directories**: a dag-pb node with UnixFS ``{Type: Directory}`` and one link per entry
  ``{Hash, Name: the entry's file name bytes, Tsize}``, sorted by name bytes; entries are every
  regular file and subdirectory, hidden ones included (``ipfs add -r --hidden --cid-version 1``).
  Symlinks and special files are refused. Directories are never sharded: above kubo's HAMT
  threshold (256 KiB of links, about 5,000 entries) kubo would shard and its CID would differ.

Hashing streams: memory stays at one chunk plus at most 174 links per level, whatever the size.
A file that changes while it is read (size, modification time, inode or the number of bytes
read differ before and after) raises ``ContentChanged``; nothing is returned for it.

``DagVerifier`` checks a DAG arriving block by block in depth-first order against its root CID,
so a downloader can accept each chunk as it comes and refuse the first wrong one.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, Literal

import cid as pycid
import multihash

from agentbazaar.data._dagpb import (
    DIRECTORY,
    FILE,
    PBLink,
    UnixFSData,
    decode_node,
    decode_unixfs,
    encode_node,
    encode_unixfs,
)
from agentbazaar.data.errors import BadCid, CidMismatch, ContentChanged, DagError, PathError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
CHUNK_SIZE = 262_144
MAX_LINKS = 174
MAX_BLOCK_BYTES = 2 * 1024 * 1024  # larger blocks are refused when verifying (bitswap's limit)
_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb"}
_V0_PREFIX = b"\x12\x20"


@dataclass(frozen=True)
class Cid:
    """A CID (v1, or v0 for dag-pb) whose multihash is sha2-256, held in its binary form."""

    binary: bytes

    @classmethod
    def of_block(cls, codec: int, block: bytes | bytearray | memoryview, version: int = 1) -> Cid:
        digest = hashlib.sha256(block).digest()
        if version == 0:
            return cls(_V0_PREFIX + digest)
        return cls(bytes((1, codec)) + _V0_PREFIX + digest)

    @classmethod
    def parse(cls, text: str) -> Cid:
        """A CID from its text form (any multibase py-cid reads, or base58 ``Qm...``)."""
        if not isinstance(text, str) or not text or text != text.strip() or len(text) > 200:
            raise BadCid(f"not a CID: {text!r}")
        try:
            parsed = pycid.make_cid(text)
        except Exception as exc:  # py-cid raises ValueError, DecodingError, KeyError...
            raise BadCid(f"not a CID: {text!r} ({exc})") from exc
        return cls.from_binary(bytes(parsed.buffer))

    @classmethod
    def from_binary(cls, binary: bytes) -> Cid:
        """Checks the layout: v0 (``12 20`` + 32 bytes) or v1 + raw/dag-pb + sha2-256."""
        if len(binary) == 34 and binary.startswith(_V0_PREFIX):
            return cls(bytes(binary))
        if len(binary) != 36 or binary[0] != 1 or binary[2:4] != _V0_PREFIX:
            raise BadCid("only CIDv1/v0 with a sha2-256 multihash are supported")
        if binary[1] not in _CODEC_NAMES:
            raise BadCid(f"unsupported codec 0x{binary[1]:x}: need raw (0x55) or dag-pb (0x70)")
        return cls(bytes(binary))

    @property
    def version(self) -> int:
        return 0 if len(self.binary) == 34 else 1

    @property
    def codec(self) -> int:
        return DAG_PB if self.version == 0 else self.binary[1]

    @property
    def digest(self) -> bytes:
        return self.binary[-32:]

    @cached_property
    def text(self) -> str:
        """base32 ``b...`` for v1 (``bafkrei`` raw, ``bafybei`` dag-pb), base58 ``Qm`` for v0."""
        mh = multihash.encode(self.digest, "sha2-256")
        if self.version == 0:
            return str(pycid.make_cid(0, "dag-pb", mh))
        encoded = pycid.make_cid(1, _CODEC_NAMES[self.codec], mh).encode("base32")
        return bytes(encoded).decode("ascii")

    def __str__(self) -> str:
        return self.text

    def to_v1(self) -> Cid:
        return self if self.version == 1 else Cid(bytes((1, DAG_PB)) + self.binary)

    def check(self, block: bytes | bytearray | memoryview) -> None:
        """Raise CidMismatch unless ``block`` hashes to this CID."""
        if hashlib.sha256(block).digest() != self.digest:
            raise CidMismatch(f"block does not hash to {self}", cid=self.text)


@dataclass(frozen=True)
class DagParams:
    """How a file is cut and linked; the defaults are kubo's for ``--cid-version 1``.

    ``node_cid_version=0`` gives dag-pb nodes CIDv0 (leaves stay CIDv1 raw), which is what
    ``ipfs add --raw-leaves`` without ``--cid-version 1`` builds; only tests use it.
    """

    chunk_size: int = CHUNK_SIZE
    max_links: int = MAX_LINKS
    node_cid_version: Literal[0, 1] = 1

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_BLOCK_BYTES or self.max_links < 2:
            raise DagError("chunk size must be 1 byte to 2 MiB and max links at least 2")


DEFAULT_PARAMS = DagParams()
BlockSink = Callable[[Cid, bytes], None]


@dataclass(frozen=True)
class DagLink:
    """A built DAG (or part of one): its CID, all block bytes under it, and the content bytes."""

    cid: Cid
    tsize: int
    size: int


class FileDag:
    """Streams a file's bytes into its UnixFS DAG; ``finish()`` returns the root.

    Each block is handed to ``on_block(cid, block)`` as soon as it exists (leaves in order,
    every node right after its last child), so a caller can store or serve them.
    """

    def __init__(self, params: DagParams = DEFAULT_PARAMS, on_block: BlockSink | None = None):
        self.params = params
        self._on_block = on_block
        self._buffer = bytearray()
        self._levels: list[list[DagLink]] = [[]]
        self._leaves = 0
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes (any size); ``data`` may be a reused buffer: nothing keeps a reference."""
        size = self.params.chunk_size
        self.size += len(data)
        if not self._buffer and len(data) == size:  # the common case when reading a file
            self._leaf(data)
            return
        self._buffer += data
        while len(self._buffer) >= size:
            with memoryview(self._buffer) as whole, whole[:size] as piece:
                self._leaf(piece)
            del self._buffer[:size]

    def finish(self) -> DagLink:
        if self._buffer or self._leaves == 0:
            self._leaf(self._buffer)
            self._buffer = bytearray()
        level = 0
        while level < len(self._levels) - 1:
            if self._levels[level]:
                pending, self._levels[level] = self._levels[level], []
                self._push(level + 1, self._node(pending))
            level += 1
        top = self._levels[-1]
        return top[0] if len(top) == 1 else self._node(top)

    def _leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        cid = Cid.of_block(RAW, chunk)
        if self._on_block is not None:
            self._on_block(cid, bytes(chunk))
        self._leaves += 1
        self._push(0, DagLink(cid, len(chunk), len(chunk)))

    def _push(self, level: int, link: DagLink) -> None:
        if level == len(self._levels):
            self._levels.append([])
        if len(self._levels[level]) == self.params.max_links:
            full, self._levels[level] = self._levels[level], []
            self._push(level + 1, self._node(full))
        self._levels[level].append(link)

    def _node(self, children: list[DagLink]) -> DagLink:
        sizes = tuple(c.size for c in children)
        data = encode_unixfs(UnixFSData(FILE, filesize=sum(sizes), blocksizes=sizes))
        block = encode_node([PBLink(c.cid.binary, b"", c.tsize) for c in children], data)
        return _emit(block, children, self.params, self._on_block)


def _emit(
    block: bytes, children: list[DagLink], params: DagParams, on_block: BlockSink | None
) -> DagLink:
    cid = Cid.of_block(DAG_PB, block, params.node_cid_version)
    if on_block is not None:
        on_block(cid, block)
    return DagLink(cid, len(block) + sum(c.tsize for c in children), sum(c.size for c in children))


def directory_node(
    entries: Iterable[tuple[bytes, DagLink]],
    params: DagParams = DEFAULT_PARAMS,
    on_block: BlockSink | None = None,
) -> DagLink:
    """The UnixFS directory over ``(name, child)`` entries (sorted by name bytes here)."""
    ordered = sorted(entries, key=lambda e: e[0])
    names = [name for name, _ in ordered]
    if len(set(names)) != len(names) or any(not n or b"/" in n for n in names):
        raise PathError("directory entry names must be unique, non-empty, without '/'")
    links = [PBLink(child.cid.binary, name, child.tsize) for name, child in ordered]
    block = encode_node(links, encode_unixfs(UnixFSData(DIRECTORY)))
    return _emit(block, [child for _, child in ordered], params, on_block)


# ---- bytes, streams, files, directories ------------------------------------------------------
def cid_of_bytes(data: bytes, params: DagParams = DEFAULT_PARAMS) -> Cid:
    dag = FileDag(params)
    view = memoryview(data)
    for start in range(0, len(data), params.chunk_size):
        dag.write(view[start : start + params.chunk_size])  # slices: no copies
    return dag.finish().cid


def dag_of_stream(
    stream: BinaryIO,
    params: DagParams = DEFAULT_PARAMS,
    on_block: BlockSink | None = None,
    *,
    size_hint: int | None = None,
) -> DagLink:
    """The DAG of everything left in ``stream``, read into one reused buffer of at most a chunk
    (``size_hint``, the expected size, keeps the buffer small for small files)."""
    dag = FileDag(params, on_block)
    length = params.chunk_size if size_hint is None else min(params.chunk_size, size_hint + 1)
    view = memoryview(bytearray(length))
    while True:
        filled = _fill(stream, view)
        if filled:
            dag.write(view[:filled])
        if filled < length:
            return dag.finish()


def _fill(stream: BinaryIO, view: memoryview) -> int:
    """Read until ``view`` is full or the stream ends (pipes and sockets return short reads)."""
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return filled


@dataclass(frozen=True)
class _Stamp:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def dag_of_file(
    path: Path | str, params: DagParams = DEFAULT_PARAMS, on_block: BlockSink | None = None
) -> DagLink:
    """The DAG of a regular file; ``ContentChanged`` if it changed while being read."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            first = os.fstat(fh.fileno())
            if not stat.S_ISREG(first.st_mode):
                raise PathError(f"{path} is not a regular file")
            before = _Stamp.of(first)
            link = dag_of_stream(fh, params, on_block, size_hint=first.st_size)
            after = _Stamp.of(os.fstat(fh.fileno()))
        still = _Stamp.of(os.stat(path, follow_symlinks=False))
    except OSError as exc:
        raise PathError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not (before == after == still and link.size == before.size):
        raise ContentChanged(
            f"{path} changed while it was being hashed: hash it again once it is complete",
            path=str(path),
        )
    return link


def dag_of_path(
    path: Path | str, params: DagParams = DEFAULT_PARAMS, on_block: BlockSink | None = None
) -> DagLink:
    """The DAG of a file or, recursively, a directory (see the module docstring)."""
    path = Path(path)
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        raise PathError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISREG(st.st_mode):
        return dag_of_file(path, params, on_block)
    if stat.S_ISDIR(st.st_mode):
        return _dag_of_directory(path, params, on_block)
    kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file or directory"
    raise PathError(f"{path} is {kind}: only regular files and directories can be published")


def _dag_of_directory(path: Path, params: DagParams, on_block: BlockSink | None) -> DagLink:
    before = _Stamp.of(os.stat(path))
    try:
        names = sorted(os.fsencode(entry.name) for entry in os.scandir(path))
    except OSError as exc:
        raise PathError(f"cannot list {path}: {exc.strerror or exc}") from exc
    entries = [(name, dag_of_path(path / os.fsdecode(name), params, on_block)) for name in names]
    if _Stamp.of(os.stat(path)) != before:
        raise ContentChanged(f"{path} changed while it was being hashed", path=str(path))
    return directory_node(entries, params, on_block)


def cid_of_path(path: Path | str, params: DagParams = DEFAULT_PARAMS) -> Cid:
    return dag_of_path(path, params).cid


# ---- verification, block by block ------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """Verified file bytes: ``path`` inside the DAG (empty for a single file) and ``data``."""

    path: str
    data: bytes


@dataclass
class DagVerifier:
    """Accepts the blocks of the DAG under ``root`` in depth-first order, checking each.

    ``accept(block)`` hashes the block against the CID expected next (from the root, then from
    each parent's links, in link order) and returns the verified file bytes it carries (a raw
    leaf, or the inline data of a UnixFS node); a wrong block raises ``CidMismatch`` and
    changes nothing, so the caller can refuse it and stop.
    """

    root: Cid
    _stack: list[tuple[Cid, str]] = field(default_factory=list)
    verified_bytes: int = 0

    def __post_init__(self) -> None:
        self._stack = [(self.root, "")]

    @property
    def done(self) -> bool:
        return not self._stack

    @property
    def expected(self) -> Cid | None:
        return self._stack[-1][0] if self._stack else None

    def accept(self, block: bytes) -> Piece | None:
        if not self._stack:
            raise DagError("the DAG is complete: no more blocks are expected")
        cid, path = self._stack[-1]
        if len(block) > MAX_BLOCK_BYTES:
            raise CidMismatch(f"block of {len(block)} bytes is larger than any we accept")
        cid.check(block)
        if cid.codec == RAW:
            self._stack.pop()
            self.verified_bytes += len(block)
            return Piece(path, block)
        children, inline = _node_children(block, path)
        self._stack.pop()
        self._stack.extend(reversed(children))
        if inline:
            self.verified_bytes += len(inline)
            return Piece(path, inline)
        return None


def _node_children(block: bytes, path: str) -> tuple[list[tuple[Cid, str]], bytes]:
    links, data = decode_node(block)
    if data is None:
        raise DagError("a dag-pb node without UnixFS data")
    unixfs = decode_unixfs(data)
    if unixfs.type == FILE:
        if len(unixfs.blocksizes) != len(links):
            raise DagError("a UnixFS file node whose blocksizes do not match its links")
        return [(Cid.from_binary(link.hash), path) for link in links], unixfs.data or b""
    if unixfs.type == DIRECTORY:
        children = []
        for link in links:
            name = link.name.decode("utf-8", errors="surrogateescape")
            if not name or "/" in name or name in (".", ".."):
                raise DagError(f"unsafe directory entry name {name!r}")
            children.append((Cid.from_binary(link.hash), f"{path}/{name}" if path else name))
        return children, b""
    raise DagError(f"unsupported UnixFS node type {unixfs.type}")


def walk_dfs(root: Cid, get_block: Callable[[Cid], bytes]) -> Iterator[tuple[Cid, bytes]]:
    """The blocks of the DAG under ``root`` in depth-first order (the order ``DagVerifier`` and
    a trustless gateway's ``dag-scope=all`` CAR use); ``get_block`` reads one from a store."""
    stack = [root]
    while stack:
        cid = stack.pop()
        block = get_block(cid)
        yield cid, block
        if cid.codec == DAG_PB:
            links, _ = decode_node(block)
            stack.extend(Cid.from_binary(link.hash) for link in reversed(links))


def iter_verified(root: Cid, blocks: Iterable[bytes]) -> Iterator[Piece]:
    """Verified pieces of ``blocks`` (depth-first); raises at the first wrong or missing block."""
    verifier = DagVerifier(root)
    for block in blocks:
        piece = verifier.accept(block)
        if piece is not None:
            yield piece
    if not verifier.done:
        raise DagError(f"the DAG of {root} is incomplete: {verifier.expected} is missing")
