"""CIDs against values other implementations published, and properties of the chunked DAG.

Every expected CID below was printed by another implementation (kubo / go-unixfs), with its
source named beside it; none was computed by our code.
"""

from __future__ import annotations

import lzma
import math
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentbazaar.data._dagpb import FILE, decode_node, decode_unixfs
from agentbazaar.data.cid import (
    DAG_PB,
    RAW,
    Cid,
    DagParams,
    DagVerifier,
    FileDag,
    cid_of_bytes,
    cid_of_path,
    dag_of_file,
    dag_of_path,
    dag_of_stream,
    directory_node,
    iter_verified,
    walk_dfs,
)
from agentbazaar.data.errors import BadCid, CidMismatch, ContentChanged, DagError, PathError

FIXTURE = Path(__file__).parent / "fixtures" / "repeat_0.04GiB_175.xz"
CHUNK = 262_144

# ---- single blocks: `ipfs add --cid-version 1 --raw-leaves` ----------------------------------
SINGLE_BLOCK = [
    # ipld/js-unixfs test/dataset/convergence_rawdata.tsv, Impl:go, zero_0B / uicro_* files
    (b"", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (b"A", "bafkreicvtlvnbate2v4v2oijoggn2bnl2skxf2cp4vkzb3xtdkekbd677u"),
    (
        b"4038235842382358453823584738235849",
        "bafkreiayys52porsjmbedhkuirubhexv6gwmmjgwlo7ubl5klqqiyssr34",
    ),
    (
        b"40382358423823" + b" " * 16 + b"58453823584738235849",
        "bafkreicwt2bwa5vqhg45qei5hmnxsgtzjzud5yd2dxzcmuy4gdb6prrgzq",
    ),
    # ipfs/boxo examples/gateway/car/main_test.go (TestFile serves "hello world\n")
    (b"hello world\n", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
    # ipfs/kubo test/sharness/t0114-gateway-subdomains/README.md (`echo hello | ipfs add`)
    (b"hello\n", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"),
]


@pytest.mark.parametrize(("data", "expected"), SINGLE_BLOCK)
def test_single_block_cids_equal_kubo(data: bytes, expected: str) -> None:
    assert str(cid_of_bytes(data)) == expected
    assert Cid.parse(expected) == cid_of_bytes(data)


# ---- go-unixfs balanced layout with small chunks and few links -------------------------------
# filecoin-project/cpp-filecoin test/core/storage/unixfs/go/unixfs_test.go: go-unixfs
# `balanced.Layout` with RawLeaves and the default (CIDv0) nodes, chunk size and max links given.
GO_UNIXFS = [
    ("[0     9)", 10, 2, "bafkreieqjdswwovkokzitxxsn4ppswzzsy2qs623duz5ivjhplglbygbou"),
    ("[0     10)", 10, 2, "bafkreiaymswyg525nktwb75n53rcwdqvjbfjgi5nu4glriglylthbnuxnu"),
    ("[0     10)[10   19)", 10, 2, "QmUyaoLFxpUpZra4qs65dMbrBMEERJt91JL3kdyKEXqLxN"),
    ("[0     10)[10     21)", 10, 2, "QmZ9KupPPphsds2Cbu7Ntb73tUHbyrZEgJisHMmw9AUfQP"),
    ("[0     10)[10    20)[10    30)", 10, 2, "QmSYvtzqeJY6zCRk31SdRweDD6z1bwP9GJY5bmKQ55XwWp"),
    ("[0     10)[10    20)[10     31)", 10, 2, "QmZ2Be9hJQhifpgASmQTGkL7j9KUaJC5W9siL6MnFSkLhd"),
    ("[0     10)[10    20)[10    30)", 5, 3, "QmYb4gZGCAkRdNZbc5npDzLJA34ZzPtdVDmESb9Xk76Ws2"),
]


@pytest.mark.parametrize(("data", "chunk", "links", "expected"), GO_UNIXFS)
def test_balanced_layout_equals_go_unixfs(data: str, chunk: int, links: int, expected: str) -> None:
    params = DagParams(chunk_size=chunk, max_links=links, node_cid_version=0)
    assert cid_of_bytes(data.encode(), params) == Cid.parse(expected)


# ---- kubo, CIDv1, 174 links: one level, and the first byte that needs a second ---------------
@pytest.fixture(scope="module")
def repeat_175() -> bytes:
    return lzma.decompress(FIXTURE.read_bytes())


# ipld/js-unixfs test/dataset/convergence_rawdata.tsv, Impl:go, Trickle:false, RawLeaves:true,
# CidVer:1 (`ipfs add --chunker=size-N --raw-leaves=true --cid-version=1`).
KUBO_174 = [
    ("174", CHUNK, "bafybeibzhntdcjvtchx5f3o6a2cpghfgsvd7n2nrbb7i6xs6jbytsprysa"),
    ("174_1", CHUNK, "bafybeiew6fbjstpum5e2h3hdnmgoj2alduuxc557ndc66fsvu7ozb6ykj4"),
    ("175", CHUNK, "bafybeigfj4x3diznwfcblarkwl2f5mk25m7zc62duf2xbharmy4pv5lxe4"),
    ("175_1", CHUNK, "bafybeigdosbtqahmfa4v3l2w4d66ayijgl3l4nby2siz6vewx7wkslgb5i"),
    ("174", 65_535, "bafybeiesrtc3gdmjkppt3odruh4cgpiy64zs36x42bomd3y6ldzljijauy"),
    ("175_1", 65_535, "bafybeiemqorrzhvpu27r33c65mpxtwt2cl7bja3wgmifq7mpdqqdr3l3mi"),
    ("174", 1_048_576, "bafybeiff6k22jrlyyjuxc6aalah4om6cmpszu7uez5mdnybfqgtlmnx5su"),
]


def _variant(base: bytes, name: str) -> bytes:
    return {
        "174": base[: 174 * CHUNK],
        "174_1": base[: 174 * CHUNK + 1],
        "175": base,
        "175_1": base + b"4",
    }[name]


@pytest.mark.parametrize(("name", "chunk", "expected"), KUBO_174)
def test_chunked_files_equal_kubo(repeat_175: bytes, name: str, chunk: int, expected: str) -> None:
    data = _variant(repeat_175, name)
    assert str(cid_of_bytes(data, DagParams(chunk_size=chunk))) == expected


def test_streaming_memory_stays_bounded(repeat_175: bytes, tmp_path: Path) -> None:
    """45 MB streamed from disk: the peak is a few chunks, not the file."""
    path = tmp_path / "data.bin"
    path.write_bytes(repeat_175)
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            link = dag_of_stream(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(link.cid) == "bafybeigfj4x3diznwfcblarkwl2f5mk25m7zc62duf2xbharmy4pv5lxe4"
    assert link.size == 175 * CHUNK
    assert peak < 8 * CHUNK


# ---- directories: `ipfs add -r --cid-version 1` ----------------------------------------------
def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_directory_equals_kubo_t0114(tmp_path: Path) -> None:
    # ipfs/kubo test/sharness/t0114-gateway-subdomains/README.md (DIR_CID, ./testdirlisting)
    root = _tree(
        tmp_path / "testdirlisting",
        {
            "hello": b"hello\n",
            "ipfs/ipns/bar": b"text-file-content\n",
            "api/file.txt": b"I am a txt file\n",
            "ipfs/file.txt": b"I am a txt file\n",
        },
    )
    assert str(cid_of_path(root)) == "bafybeiht6dtwk3les7vqm6ibpvz6qpohidvlshsfyr7l5mpysdw2vmbbhe"


def test_nested_directories_equal_kubo_t0116(tmp_path: Path) -> None:
    # ipfs/kubo test/sharness/t0116-gateway-cache/README.md (ROOT1 is `-w`, the wrapping dir)
    root = _tree(tmp_path / "root2", {"root3/root4/index.html": b"hello\n"})
    expected = {
        "root2": "bafybeih2w7hjocxjg6g2ku25hvmd53zj7og4txpby3vsusfefw5rrg5sii",
        "root2/root3": "bafybeiawdvhmjcz65x5egzx4iukxc72hg4woks6v6fvgyupiyt3oczk5ja",
        "root2/root3/root4": "bafybeifq2rzpqnqrsdupncmkmhs3ckxxjhuvdcbvydkgvch3ms24k5lo7q",
    }
    for rel, cid in expected.items():
        assert str(cid_of_path(tmp_path / rel)) == cid
    wrapped = directory_node([(b"root2", dag_of_path(root))])
    assert str(wrapped.cid) == "bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui"


def test_utf8_names_equal_kubo_t0123(tmp_path: Path) -> None:
    # ipfs/kubo test/sharness/t0123-gateway-json-cbor/README.md (DIR_CID, FILE_JSON_CID)
    root = _tree(
        tmp_path / "rootDir",
        {
            "ą/ę/t.json": b'{ "test": "i am a plain json file" }\n',
            "ą/ę/file-źł.txt": b"I am a txt file on path with utf8\n",
            "api/file.txt": b"I am a txt file in confusing /api dir\n",
            "ipfs/file.txt": b"I am a txt file in confusing /ipfs dir\n",
            "ipns/file.txt": b"I am a txt file in confusing /ipns dir\n",
        },
    )
    assert str(cid_of_path(root)) == "bafybeiafyvqlazbbbtjnn6how5d6h6l6rxbqc4qgpbmteaiskjrffmyy4a"
    json_file = root / "ą" / "ę" / "t.json"
    assert str(cid_of_path(json_file)) == (
        "bafkreibrppizs3g7axs2jdlnjua6vgpmltv7k72l7v7sa6mmht6mne3qqe"
    )


def test_empty_directory_is_kubos_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    # the empty UnixFS directory every kubo node knows (`ipfs object new unixfs-dir`)
    assert (
        cid_of_path(tmp_path / "empty")
        == Cid.parse("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn").to_v1()
    )


# ---- bad input -------------------------------------------------------------------------------
def test_file_that_grows_while_hashed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(os.urandom(3 * 1024))
    params = DagParams(chunk_size=1024)

    def append(cid: Cid, block: bytes) -> None:
        with path.open("ab") as fh:
            fh.write(b"more")

    with pytest.raises(ContentChanged):
        dag_of_file(path, params, on_block=append)


def test_file_rewritten_in_place_while_hashed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rewritten.bin"
    path.write_bytes(b"a" * 4096)
    params = DagParams(chunk_size=1024)
    calls = []

    def rewrite(cid: Cid, block: bytes) -> None:
        calls.append(cid)
        if len(calls) == 1:
            with path.open("r+b") as fh:
                fh.write(b"b" * 1024)
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    with pytest.raises(ContentChanged):
        dag_of_file(path, params, on_block=rewrite)


def test_directory_that_changes_while_hashed_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"a": b"1", "b": b"2"})

    def add_file(cid: Cid, block: bytes) -> None:
        if not (root / "late").exists():
            (root / "late").write_bytes(b"3")

    with pytest.raises(ContentChanged):
        dag_of_path(root, on_block=add_file)


def test_symlinks_and_missing_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(PathError, match="symlink"):
        cid_of_path(tmp_path / "link")
    with pytest.raises(PathError):
        cid_of_path(tmp_path / "missing")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bafyxyz",
        "not a cid",
        " bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
        # a dag-cbor CID (ipld/ipld specs/codecs/dag-cbor/fixtures/cross-codec, array-2)
        "bafyreihdb57fdysx5h35urvxz64ros7zvywshber7id6t6c6fek37jgyfe",
    ],
)
def test_bad_cids_are_refused(text: str) -> None:
    with pytest.raises(BadCid):
        Cid.parse(text)


# ---- verification block by block -------------------------------------------------------------
def _build(data: bytes, params: DagParams) -> tuple[Cid, dict[Cid, bytes]]:
    store: dict[Cid, bytes] = {}
    dag = FileDag(params, on_block=lambda cid, block: store.__setitem__(cid, block))
    dag.write(data)
    return dag.finish().cid, store


def _dfs(root: Cid, store: dict[Cid, bytes]) -> list[bytes]:
    return [block for _, block in walk_dfs(root, store.__getitem__)]


def test_verifier_refuses_a_wrong_block_and_keeps_what_came_before() -> None:
    data = os.urandom(10 * 100 + 7)
    root, store = _build(data, DagParams(chunk_size=100, max_links=3))
    blocks = _dfs(root, store)
    leaf_positions = [i for i, b in enumerate(blocks) if Cid.of_block(RAW, b) in store]
    bad = leaf_positions[4]
    verifier = DagVerifier(root)
    received = b""
    for block in blocks[:bad]:
        piece = verifier.accept(block)
        received += piece.data if piece else b""
    corrupted = bytes([blocks[bad][0] ^ 1]) + blocks[bad][1:]
    with pytest.raises(CidMismatch):
        verifier.accept(corrupted)
    assert received == data[:400]
    assert verifier.verified_bytes == 400
    assert verifier.accept(blocks[bad]) is not None  # the right block still fits


def test_incomplete_and_overlong_dags_are_refused() -> None:
    root, store = _build(os.urandom(1000), DagParams(chunk_size=100, max_links=4))
    blocks = _dfs(root, store)
    with pytest.raises(DagError, match="incomplete"):
        list(iter_verified(root, blocks[:-1]))
    with pytest.raises(DagError, match="complete"):
        list(iter_verified(root, [*blocks, blocks[-1]]))


def test_directory_dag_verifies_with_paths(tmp_path: Path) -> None:
    root_dir = _tree(tmp_path / "ds", {"a.txt": b"alpha", "sub/b.bin": os.urandom(3000)})
    store: dict[Cid, bytes] = {}
    link = dag_of_path(root_dir, DagParams(chunk_size=1000), on_block=store.__setitem__)
    pieces = list(iter_verified(link.cid, _dfs(link.cid, store)))
    by_path: dict[str, bytes] = {}
    for piece in pieces:
        by_path[piece.path] = by_path.get(piece.path, b"") + piece.data
    assert by_path == {
        "a.txt": b"alpha",
        "sub/b.bin": (root_dir / "sub" / "b.bin").read_bytes(),
    }


# ---- properties ------------------------------------------------------------------------------
params_strategy = st.builds(
    DagParams,
    chunk_size=st.integers(1, 64),
    max_links=st.integers(2, 6),
    node_cid_version=st.sampled_from([0, 1]),
)


def _pieces(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        yield data[start:cut]
        start = cut
    yield data[start:]


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), params=params_strategy, cuts=st.lists(st.integers(0, 3000)))
def test_cid_does_not_depend_on_how_the_bytes_arrive(
    data: bytes, params: DagParams, cuts: list[int]
) -> None:
    dag = FileDag(params)
    for piece in _pieces(data, cuts):
        dag.write(piece)
    link = dag.finish()
    assert link.cid == cid_of_bytes(data, params)
    assert link.size == len(data)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), params=params_strategy)
def test_dag_shape_is_balanced_and_chunks_are_fixed(data: bytes, params: DagParams) -> None:
    root, store = _build(data, params)
    chunks = [data[i : i + params.chunk_size] for i in range(0, len(data), params.chunk_size)]
    chunks = chunks or [b""]
    depth_of_leaves: set[int] = set()
    leaves: list[bytes] = []

    def visit(cid: Cid, depth: int) -> int:
        block = store[cid]
        if cid.codec == RAW:
            depth_of_leaves.add(depth)
            leaves.append(block)
            return len(block)
        assert cid.codec == DAG_PB
        links, raw = decode_node(block)
        assert raw is not None and 1 <= len(links) <= params.max_links
        unixfs = decode_unixfs(raw)
        sizes = [visit(Cid.from_binary(link.hash), depth + 1) for link in links]
        assert unixfs.type == FILE and list(unixfs.blocksizes) == sizes
        assert unixfs.filesize == sum(sizes)
        return sum(sizes)

    assert visit(root, 0) == len(data)
    assert leaves == chunks
    expected_depth = math.ceil(round(math.log(len(chunks), params.max_links), 9))
    assert depth_of_leaves == {expected_depth}


@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000), params=params_strategy, pick=st.data())
def test_every_chunk_is_checked_against_the_dag(
    data: bytes, params: DagParams, pick: st.DataObject
) -> None:
    root, store = _build(data, params)
    blocks = _dfs(root, store)
    assert b"".join(p.data for p in iter_verified(root, blocks)) == data
    bad = pick.draw(st.integers(0, len(blocks) - 1), label="corrupted block")
    flip = pick.draw(st.integers(0, max(len(blocks[bad]) - 1, 0)), label="byte")
    tampered = bytearray(blocks[bad]) or bytearray(b"\x00")
    tampered[min(flip, len(tampered) - 1)] ^= 0xFF
    verifier = DagVerifier(root)
    received = b""
    for block in blocks[:bad]:
        piece = verifier.accept(block)
        received += piece.data if piece else b""
    with pytest.raises(CidMismatch):
        verifier.accept(bytes(tampered))
    assert data.startswith(received)
    assert len(received) == verifier.verified_bytes
