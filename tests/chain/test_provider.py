"""The JSON-RPC transport: kept-alive connections to a node on loopback, and the one-round-trip
send (EIP-7966 ``eth_sendRawTransactionSync``) with its fallbacks."""

from __future__ import annotations

import gc
import json
import multiprocessing
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from eth_account import Account

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.provider import is_loopback_http
from agentbazaar.errors import ChainUnavailable, InsufficientFunds

Behaviour = Callable[[dict[str, Any]], dict[str, Any] | None]


class _Proxy:
    """A JSON-RPC node on loopback in front of anvil: counts connections and methods, and can
    answer some calls itself (``behaviour`` returns a response, or None to forward)."""

    def __init__(self, upstream: str, behaviour: Behaviour | None = None) -> None:
        self.connections = 0
        self.methods: Counter[str] = Counter()
        self.close_after_next = False
        proxy = self
        session = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                proxy.connections += 1

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                proxy.methods[body["method"]] += 1
                answer = behaviour(body) if behaviour is not None else None
                if answer is None:
                    raw = session.post(upstream, json=body, timeout=30).content
                else:
                    raw = json.dumps({"jsonrpc": "2.0", "id": body["id"], **answer}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                if proxy.close_after_next:  # drop the kept-alive connection, as idle nodes do
                    proxy.close_after_next = False
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def proxy_to(node: AnvilNode, behaviour: Behaviour | None = None) -> Iterator[_Proxy]:
    proxy = _Proxy(node.running_url(), behaviour)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
        thread.join(5)


def _funded(chain: Chain) -> Any:
    account = Account.create()
    chain.fund_native(account.address, 10**18)
    return account


def _transfer(to: str) -> Any:
    return {"to": to, "value": 1, "gas": 21_000}


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8545", True),
        ("http://localhost:8545/rpc", True),
        ("http://127.3.4.5", True),
        ("http://[::1]:8545", True),
        ("https://127.0.0.1:8545", False),  # TLS: web3's own transport
        ("http://10.0.0.1:8545", False),
        ("http://example.com", False),
        ("http://localhost.example.com", False),
    ],
)
def test_only_plain_http_to_this_machine_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback_http(url) is loopback


@pytest.mark.anvil
def test_calls_share_one_kept_alive_connection(shared_anvil: AnvilNode) -> None:
    with proxy_to(shared_anvil) as proxy:
        chain = Chain.rpc(proxy.url, backend="local")
        numbers = [chain.w3.eth.block_number for _ in range(20)]
        assert numbers == sorted(numbers)
        assert proxy.connections == 1
        assert proxy.methods["eth_blockNumber"] == 20


@pytest.mark.anvil
def test_a_connection_the_node_closed_is_replaced_and_nothing_is_sent_twice(
    shared_anvil: AnvilNode,
) -> None:
    with proxy_to(shared_anvil) as proxy:
        chain = Chain.rpc(proxy.url, backend="local")
        sender = _funded(chain)
        proxy.close_after_next = True
        assert chain.w3.eth.block_number >= 0  # answered, then the node closes the connection
        time.sleep(0.05)
        receipt = chain.send(sender, _transfer(sender.address))
        assert receipt["status"] == 1
        sends = (
            proxy.methods["eth_sendRawTransactionSync"] + proxy.methods["eth_sendRawTransaction"]
        )
        assert sends == 1  # one broadcast of the one transaction
        assert proxy.connections == 2


@pytest.mark.anvil
def test_a_forked_process_opens_its_own_connection(shared_anvil: AnvilNode) -> None:
    chain = Chain.rpc(shared_anvil.running_url(), backend="local")
    parent_block = chain.w3.eth.block_number  # the parent's connection is open
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[int] = ctx.Queue()
    child = ctx.Process(target=lambda: out.put(chain.w3.eth.block_number))
    child.start()
    try:
        assert out.get(timeout=30) >= parent_block
    finally:
        child.join(10)
    assert child.exitcode == 0
    assert chain.w3.eth.block_number >= parent_block  # and the parent's still answers


def test_a_node_that_is_gone_is_chain_unavailable() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()  # nothing listens there any more
    with pytest.raises(ChainUnavailable):
        Chain.rpc(url, backend="local")


@pytest.mark.anvil
def test_send_for_receipt_brings_the_receipt_in_one_round_trip(shared_anvil: AnvilNode) -> None:
    with proxy_to(shared_anvil) as proxy:
        chain = Chain.rpc(proxy.url, backend="local")
        sender = _funded(chain)
        tx_hash, receipt = chain.send_for_receipt(sender, _transfer(sender.address), wait_s=5)
        assert receipt is not None and int(receipt["status"], 16) == 1
        assert receipt["transactionHash"] == tx_hash.to_0x_hex()
        assert proxy.methods["eth_sendRawTransactionSync"] == 1
        assert proxy.methods["eth_getTransactionReceipt"] == 0


def test_send_for_receipt_on_the_embedded_chain_leaves_the_receipt_to_a_poll() -> None:
    chain = Chain.embedded()
    sender = _funded(chain)
    tx_hash, receipt = chain.send_for_receipt(sender, _transfer(sender.address), wait_s=5)
    assert receipt is None
    mined = chain.receipt(tx_hash)
    assert mined is not None and mined["status"] == 1


def _unknown_sync(body: dict[str, Any]) -> dict[str, Any] | None:
    if body["method"] == "eth_sendRawTransactionSync":
        return {"error": {"code": -32601, "message": "Method not found"}}
    return None


@pytest.mark.anvil
def test_a_node_without_the_sync_send_is_asked_once_then_sent_plainly(
    shared_anvil: AnvilNode,
) -> None:
    with proxy_to(shared_anvil, _unknown_sync) as proxy:
        chain = Chain.rpc(proxy.url, backend="local")
        sender = _funded(chain)
        for _ in range(3):
            tx_hash, receipt = chain.send_for_receipt(sender, _transfer(sender.address), wait_s=5)
            assert receipt is None
            mined = chain.wait_for_receipt(tx_hash)
            assert mined["status"] == 1
        assert proxy.methods["eth_sendRawTransactionSync"] == 1
        assert proxy.methods["eth_sendRawTransaction"] == 3
        assert chain.w3.eth.get_transaction_count(sender.address) == 3  # each mined once


@pytest.mark.anvil
def test_a_node_slower_than_the_wait_is_not_asked_to_wait_again(shared_anvil: AnvilNode) -> None:
    def slow(body: dict[str, Any]) -> dict[str, Any] | None:
        if body["method"] == "eth_sendRawTransactionSync":
            time.sleep(0.3)  # a node with block times: the nonce lock would wait with it
        return None

    with proxy_to(shared_anvil, slow) as proxy:
        chain = Chain.rpc(proxy.url, backend="local")
        sender = _funded(chain)
        first = chain.send_for_receipt(sender, _transfer(sender.address), wait_s=0.1)
        assert first[1] is not None  # this one's receipt came back, late
        second_hash, second = chain.send_for_receipt(sender, _transfer(sender.address), wait_s=0.1)
        assert second is None
        assert chain.wait_for_receipt(second_hash)["status"] == 1
        assert proxy.methods["eth_sendRawTransactionSync"] == 1


@pytest.mark.anvil
def test_a_refused_sync_send_is_a_typed_error_and_nothing_is_mined(
    shared_anvil: AnvilNode,
) -> None:
    with proxy_to(shared_anvil) as proxy:
        chain = Chain.rpc(proxy.url, backend="local")
        poor = Account.create()  # no ETH: the node refuses the transaction

        before = chain.w3.eth.block_number
        with pytest.raises(InsufficientFunds):
            chain.send_for_receipt(poor, _transfer(poor.address), wait_s=5)
        assert chain.w3.eth.get_transaction_count(poor.address) == 0
        assert chain.w3.eth.block_number == before
        assert proxy.methods["eth_sendRawTransactionSync"] == 1


@pytest.mark.anvil
def test_connections_are_closed_when_their_thread_ends_or_the_provider_closes(
    shared_anvil: AnvilNode,
) -> None:
    """A thread's connection is closed when the thread ends and every one when the transport
    is closed (no socket left for the garbage collector: no ResourceWarning); a call after
    ``close`` reconnects."""
    chain = Chain.rpc(shared_anvil.running_url(), backend="local")
    poster = chain.w3.provider._request_session_manager  # type: ignore[attr-defined]
    seen: list[Any] = []

    def call() -> None:
        assert chain.w3.eth.block_number >= 0
        seen.append(poster._local.held.conn)

    port = shared_anvil.running_url().rsplit(":", 1)[1].strip("/")
    gc.collect()  # what earlier tests left is not this test's to count
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gc.collect()
        assert len(seen) == 4 and all(conn.sock is None for conn in seen)  # closed at exit
        assert chain.w3.eth.block_number >= 0
        mine = poster._local.held.conn
        assert mine.sock is not None
        poster.close()
        assert mine.sock is None
        assert chain.w3.eth.block_number >= 0  # reconnects
        assert poster._local.held.conn.sock is not None
    leaked = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not [w for w in leaked if f", {port})" in str(w.message)]  # none to this node
