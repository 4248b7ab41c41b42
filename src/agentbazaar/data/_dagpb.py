"""The two Protocol Buffers formats of a UnixFS DAG, written and read by hand (they are tiny).

dag-pb (multicodec 0x70), per the IPLD dag-pb spec::

    PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }   (Links are written first)
    PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }

UnixFS ``Data`` (the bytes in ``PBNode.Data``), the subset an importer writes::

    Data { required DataType Type = 1; optional bytes Data = 2; optional uint64 filesize = 3;
           repeated uint64 blocksizes = 4; ... }      DataType: Directory = 1, File = 2

Like go-unixfs (and so kubo), every link carries its ``Name`` even when empty (``12 00``), and
``blocksizes`` are unpacked (one tag per value). Reading is strict about the dag-pb framing (field
order, wire types, no unknown fields) and tolerant about UnixFS fields an importer may add
(hashType, fanout, mode, mtime), which are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentbazaar.data.errors import DagError

DIRECTORY = 1
FILE = 2
_MAX_VARINT_BYTES = 10


def varint(value: int) -> bytes:
    """Unsigned LEB128, as Protocol Buffers and multiformats write it."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; DagError when truncated or too long."""
    value = shift = 0
    for i in range(pos, min(len(buf), pos + _MAX_VARINT_BYTES)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise DagError("truncated or overlong varint in a dag-pb block")


def _bytes_field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + varint(len(payload)) + payload


@dataclass(frozen=True)
class PBLink:
    hash: bytes
    name: bytes
    tsize: int


@dataclass(frozen=True)
class UnixFSData:
    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default_factory=tuple)


def encode_unixfs(node: UnixFSData) -> bytes:
    out = bytearray(b"\x08" + varint(node.type))
    if node.data is not None:
        out += _bytes_field(0x12, node.data)
    if node.filesize is not None:
        out += b"\x18" + varint(node.filesize)
    for size in node.blocksizes:
        out += b"\x20" + varint(size)
    return bytes(out)


def encode_node(links: list[PBLink], data: bytes | None) -> bytes:
    """A dag-pb block: links first (in the order given), then data."""
    out = bytearray()
    for link in links:
        body = _bytes_field(0x0A, link.hash) + _bytes_field(0x12, link.name)
        body += b"\x18" + varint(link.tsize)
        out += _bytes_field(0x12, body)
    if data is not None:
        out += _bytes_field(0x0A, data)
    return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message with varint and bytes fields only."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            out.append((number, wire, value))
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise DagError("a length-delimited field runs past the end of the block")
            out.append((number, wire, bytes(buf[pos : pos + size])))
            pos += size
        else:
            raise DagError(f"unsupported protobuf wire type {wire} in a dag-pb block")
    return out


def decode_node(block: bytes) -> tuple[list[PBLink], bytes | None]:
    """Links and data of a dag-pb block (strict: links before data, no unknown fields)."""
    links: list[PBLink] = []
    data: bytes | None = None
    for number, wire, value in _fields(block):
        if number == 2 and wire == 2 and data is None:
            assert isinstance(value, bytes)
            links.append(_decode_link(value))
        elif number == 1 and wire == 2 and data is None:
            assert isinstance(value, bytes)
            data = value
        else:
            raise DagError(f"unexpected field {number} in a dag-pb node")
    return links, data


def _decode_link(buf: bytes) -> PBLink:
    got: dict[int, int | bytes] = {}
    for number, wire, value in _fields(buf):
        expected_wire = 0 if number == 3 else 2
        if number not in (1, 2, 3) or wire != expected_wire or number in got:
            raise DagError(f"unexpected field {number} in a dag-pb link")
        if got and number < max(got):
            raise DagError("dag-pb link fields out of order")
        got[number] = value
    hash_, name, tsize = got.get(1), got.get(2, b""), got.get(3, 0)
    if not isinstance(hash_, bytes) or not hash_:
        raise DagError("a dag-pb link without a Hash")
    assert isinstance(name, bytes) and isinstance(tsize, int)
    return PBLink(hash_, name, tsize)


def decode_unixfs(buf: bytes) -> UnixFSData:
    """The UnixFS Data message (Type, Data, filesize, blocksizes; other known fields skipped)."""
    kind: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for number, _wire, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
        elif number == 4 and isinstance(value, int):
            blocksizes.append(value)
        elif number not in (5, 6, 7, 8):
            raise DagError(f"unexpected field {number} in UnixFS data")
    if kind is None:
        raise DagError("UnixFS data without a Type")
    return UnixFSData(kind, data, filesize, tuple(blocksizes))
