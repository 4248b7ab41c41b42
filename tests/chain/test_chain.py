"""The Chain layer, same suite on the embedded chain and on anvil."""

from __future__ import annotations

import threading

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.errors import (
    AddressError,
    ChainError,
    ChainUnavailable,
    InsufficientFunds,
    TransactionReverted,
    TransactionTimeout,
    WrongChain,
)
from agentbazaar.testing import free_port

REVERTER = bytes.fromhex("60006000fd")  # runtime code: revert(0, 0)


def funded(chain: Chain, wei: int = 10**18) -> LocalAccount:
    acct = Account.create()
    chain.fund_native(acct.address, wei)
    return acct


def test_send_native_moves_exact_value(chain: Chain) -> None:
    a, b = funded(chain), Account.create()
    receipt = chain.send(a, {"to": b.address, "value": 12345})
    assert receipt["status"] == 1
    assert chain.native_balance(b.address) == 12345
    assert chain.w3.eth.get_transaction_count(a.address) == 1


def test_concurrent_sends_from_one_wallet_never_collide(chain: Chain) -> None:
    a, b = funded(chain), Account.create()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                chain.send(a, {"to": b.address, "value": 1})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert chain.native_balance(b.address) == 30
    assert chain.w3.eth.get_transaction_count(a.address) == 30


def test_reverting_call_raises_and_signs_nothing(chain: Chain) -> None:
    a = funded(chain)
    target = Account.create().address
    chain.set_code(target, REVERTER)
    with pytest.raises(TransactionReverted):
        chain.send(a, {"to": target, "data": "0x01"})
    assert chain.w3.eth.get_transaction_count(a.address) == 0
    # the next send still uses nonce 0: nothing was consumed
    chain.send(a, {"to": Account.create().address, "value": 1})
    assert chain.w3.eth.get_transaction_count(a.address) == 1


def test_on_chain_revert_with_fixed_gas_is_reported_with_tx_hash(chain: Chain) -> None:
    a = funded(chain)
    target = Account.create().address
    chain.set_code(target, REVERTER)
    with pytest.raises(TransactionReverted) as info:
        chain.send(a, {"to": target, "data": "0x01", "gas": 50_000})
    assert info.value.fields["tx_hash"].startswith("0x")
    assert chain.w3.eth.get_transaction_count(a.address) == 1


def test_insufficient_funds_is_typed(chain: Chain) -> None:
    a = funded(chain, 10**15)
    with pytest.raises(InsufficientFunds):
        chain.send(a, {"to": Account.create().address, "value": 10**18, "gas": 21_000})


def test_unfunded_sender_is_told_it_has_no_eth_and_how_to_fund_it(chain: Chain) -> None:
    """A sender without ETH calling a contract: not "Out of gas: gas required exceeds
    allowance: 0" but whose account it is, that it has no ETH for gas, and the faucet line."""
    empty, target = Account.create(), funded(chain)
    chain.set_code(target.address, bytes.fromhex("600160005500"))  # sstore(0, 1): needs gas
    with pytest.raises(InsufficientFunds) as info:
        chain.send(empty, {"to": target.address, "data": b"\x01"})
    text = str(info.value)
    assert empty.address in text and "no ETH" in text
    assert f"bazaar faucet {empty.address} 1 ETH" in text
    assert info.value.fields["sender"] == empty.address
    assert chain.w3.eth.get_transaction_count(empty.address) == 0


def test_receipt_timeout_is_typed(chain: Chain) -> None:
    with pytest.raises(TransactionTimeout):
        chain.wait_for_receipt(HexBytes(b"\x11" * 32), timeout=0.05)


def test_set_code_places_runtime_code(chain: Chain) -> None:
    addr = Account.create().address
    chain.set_code(addr, REVERTER)
    assert chain.code_at(addr) == REVERTER


def test_network_is_caip2(chain: Chain) -> None:
    assert chain.network == f"eip155:{chain.chain_id}"
    assert chain.is_dev


def test_unreachable_node_is_chain_unavailable() -> None:
    with pytest.raises(ChainUnavailable):
        Chain.rpc(f"http://127.0.0.1:{free_port()}", timeout=1.0)


def test_bad_rpc_scheme_is_refused() -> None:
    with pytest.raises(ChainUnavailable):
        Chain.rpc("ftp://example")


@pytest.mark.anvil
def test_wrong_chain_id_is_refused(shared_anvil: AnvilNode) -> None:
    with pytest.raises(WrongChain):
        Chain.rpc(shared_anvil.running_url(), expected_chain_id=1)


@pytest.mark.anvil
def test_dev_only_operations_refused_on_real_chains(shared_anvil: AnvilNode) -> None:
    real = Chain.rpc(shared_anvil.running_url(), backend="rpc")
    real.chain_id = 8453  # what a Base mainnet rpc reports
    with pytest.raises(ChainError):
        real.fund_native(Account.create().address, 1)


@pytest.mark.anvil
def test_anvil_state_survives_restart(anvil_node: AnvilNode) -> None:  # stops its own node
    chain = Chain.rpc(anvil_node.running_url(), backend="local")
    a, b = funded(chain), Account.create()
    chain.send(a, {"to": b.address, "value": 777})
    anvil_node.stop()
    assert not anvil_node.status().running
    anvil_node.start()
    again = Chain.rpc(anvil_node.running_url(), backend="local")
    assert again.native_balance(b.address) == 777


@pytest.mark.anvil
def test_not_running_local_chain_says_what_to_do(anvil_node: AnvilNode) -> None:
    anvil_node.stop()
    with pytest.raises(ChainUnavailable, match="bazaar chain up"):
        anvil_node.running_url()


@pytest.mark.parametrize(
    "bad",
    [
        "0x123",
        "hello",
        "",
        "0xZZ3bD5e7b0a8B1b1B8f6D1e3C9B4e1a1d5c1D0aB",
        "0x52908400098527886e0F7030069857D2E4169EE7",
    ],  # last: valid hex, wrong checksum
)
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        to_address(bad)


def test_lowercase_address_is_accepted_and_checksummed() -> None:
    assert to_address("0x52908400098527886e0f7030069857d2e4169ee7") == (
        "0x52908400098527886E0F7030069857D2E4169EE7"
    )
