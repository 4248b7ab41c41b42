"""Helpers for channel tests: ERC-3009 deposit data for the collector, custom-error reverts,
crash images of a seller's store. Worlds, servers, vouchers and payers come from the test kit
(``agentbazaar.testing``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak

from agentbazaar.testing import sign_eip3009


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
    sig = sign_eip3009(
        payer,
        chain_id=chain_id,
        token=token,
        to=collector,
        value=amount,
        nonce=nonce,
        valid_before=valid_before,
        primary="ReceiveWithAuthorization",
        from_=payer_address,
    )
    return abi_encode(["uint256", "uint256", "uint256", "bytes"], [0, valid_before, salt, sig])


def crash_image(store: Any, dest: Path) -> Path:
    """What a kill -9 right now leaves of a `ChannelStore`: its database and WAL as written so
    far (queued, unwritten records are lost). Returns the copy's database path."""
    dest.mkdir(parents=True)
    with store._db.locked():  # no transaction half-way through the copy
        for suffix in ("", "-wal"):
            src = Path(str(store.path) + suffix)
            if src.exists():
                shutil.copyfile(src, dest / (store.path.name + suffix))
    return Path(dest / store.path.name)
