"""Helpers for channel tests: sign deposits (EIP-3009) and vouchers, decode custom errors."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boa
import pytest
import uvicorn
from eth_abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import free_port
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels import install

CONTRACTS = Path(__file__).resolve().parents[2] / "src" / "agentbazaar" / "contracts"
USDC_ARGS = ("USD Coin", "USDC", "USD Coin", "2")

_AUTH_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def selector(error: str) -> bytes:
    return keccak(error.encode())[:4]


@contextmanager
def reverts_with(error: str) -> Iterator[None]:
    """Expect a titanoboa call to revert with the custom error ``error`` (e.g. "ZeroDeposit()")."""
    with pytest.raises(boa.BoaError) as info:
        yield
    data = info.value.stack_trace.last_frame.vm_error.args[0]
    assert bytes(data)[:4] == selector(error), f"reverted with {bytes(data)!r}, not {error}"


def collector_data(
    payer: LocalAccount,
    *,
    token: str,
    chain_id: int,
    collector: str,
    channel_id: bytes,
    amount: int,
    valid_before: int,
    salt: int | None = None,
    payer_address: str | None = None,
) -> bytes:
    """`collectorData` for ERC3009DepositCollector: a ReceiveWithAuthorization to the collector."""
    salt = int.from_bytes(os.urandom(32), "big") if salt is None else salt
    nonce = keccak(abi_encode(["bytes32", "uint256"], [channel_id, salt]))
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": _DOMAIN_FIELDS, "ReceiveWithAuthorization": _AUTH_FIELDS},
            "primaryType": "ReceiveWithAuthorization",
            "domain": {
                "name": "USD Coin",
                "version": "2",
                "chainId": chain_id,
                "verifyingContract": token,
            },
            "message": {
                "from": payer_address or payer.address,
                "to": collector,
                "value": amount,
                "validAfter": 0,
                "validBefore": valid_before,
                "nonce": nonce,
            },
        }
    )
    sig = payer.sign_message(signable).signature
    return abi_encode(
        ["uint256", "uint256", "uint256", "bytes"], [0, valid_before, salt, bytes(sig)]
    )


def voucher_sig(key: LocalAccount, domain: bytes, channel_id: bytes, ceiling: int) -> bytes:
    return cx.sign(bytes(key.key), cx.voucher_digest(domain, channel_id, ceiling))


def config_tuple(config: cx.ChannelConfig) -> tuple[Any, ...]:
    return config.as_tuple()


@dataclass
class Deployed:
    chain: Chain
    usdc: Contract
    deployer: LocalAccount

    @property
    def token(self) -> str:
        return str(self.usdc.address)

    def mint(self, to: str, amount: int) -> None:
        self.chain.transact(self.deployer, self.usdc.functions.mint(to, amount))

    def balance(self, who: str) -> int:
        return int(self.usdc.functions.balanceOf(who).call())


def deploy_channels(chain: Chain) -> Deployed:
    deployer = dev_account(0)
    for i in range(6):
        chain.fund_native(dev_account(i).address, 10**21)
    art = compile_contract("Stablecoin")
    usdc, _ = chain.deploy(deployer, art.abi, art.bytecode, *USDC_ARGS, name="Stablecoin")
    install(chain, deployer)
    return Deployed(chain, usdc, deployer)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; always stopped."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class Payer:
    """A buyer's view of one channel, for driving a seller in tests: builds signed payloads."""

    def __init__(
        self, account: LocalAccount, terms: Any, *, salt: bytes | None = None, chain: Any = None
    ) -> None:
        self.account = account
        self.terms = terms
        self.domain = cx.domain_separator(terms.chain_id, terms.contract)
        self.config = cx.ChannelConfig(
            payer=account.address,
            payer_authorizer=account.address,
            receiver=terms.receiver,
            receiver_authorizer=terms.receiver_authorizer,
            token=terms.token,
            withdraw_delay=terms.withdraw_delay,
            salt=salt or os.urandom(32),
        )
        self.cid = cx.channel_id(self.domain, self.config)
        self.charged = 0  # acknowledged by the seller

    def voucher(self, ceiling: int, *, key: LocalAccount | None = None) -> dict[str, Any]:
        sig = voucher_sig(key or self.account, self.domain, self.cid, ceiling)
        return {
            "type": "voucher",
            "channelConfig": self.config.to_wire(),
            "voucher": {
                "channelId": "0x" + self.cid.hex(),
                "maxClaimableAmount": str(ceiling),
                "signature": "0x" + sig.hex(),
            },
        }

    def next_voucher(self, price: int) -> dict[str, Any]:
        return self.voucher(self.charged + price)

    def deposit(self, price: int, amount: int, *, valid_before: int) -> dict[str, Any]:
        payload = self.next_voucher(price)
        payload["type"] = "deposit"
        salt = os.urandom(32)
        data = collector_data(
            self.account,
            token=self.terms.token,
            chain_id=self.terms.chain_id,
            collector=ERC3009_COLLECTOR,
            channel_id=self.cid,
            amount=amount,
            valid_before=valid_before,
            salt=int.from_bytes(salt, "big"),
        )
        signature = data[128 + 32 : 128 + 32 + 65]
        payload["deposit"] = {
            "amount": str(amount),
            "authorization": {
                "erc3009Authorization": {
                    "validAfter": "0",
                    "validBefore": str(valid_before),
                    "salt": "0x" + salt.hex(),
                    "signature": "0x" + signature.hex(),
                }
            },
        }
        return payload


ERC3009_COLLECTOR = "0x4020806089470a89826cB9fB1f4059150b550004"


def crash_image(store: Any, dest: Path) -> Path:
    """What a kill -9 right now leaves of a `ChannelStore`: its database and WAL as written so
    far (queued, unwritten records are lost). Returns the copy's database path."""
    dest.mkdir(parents=True)
    with store._db_lock:  # no transaction half-way through the copy
        for suffix in ("", "-wal"):
            src = Path(str(store.path) + suffix)
            if src.exists():
                shutil.copyfile(src, dest / (store.path.name + suffix))
    return Path(dest / store.path.name)
