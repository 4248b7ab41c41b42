"""lib/signature_checker.vy, the one signature check of our contracts, on titanoboa.

Properties with random keys and digests: a low-s signature with v in {0, 1, 27, 28} recovers
its signer; the malleable high-s twin, any other v, another length, a wrong key do not. An
ERC-1271 wallet is believed when it answers the bytes4 magic value (extra returndata ignored)
and not when it answers anything else, reverts, answers with dirty padding, too little, or burns
its gas (the check stays within its gas bound)."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from coincurve import PrivateKey
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentbazaar.chain.compiler import CONTRACTS_DIR

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 order
MAGIC = bytes.fromhex("1626ba7e")
ERC1271_GAS = 500_000

HARNESS = """
# pragma version ~=0.4.3
from lib import signature_checker

@external
@view
def recover(digest: bytes32, signature: Bytes[1024]) -> address:
    return signature_checker._recover(digest, signature)

@external
@view
def is_valid(signer: address, digest: bytes32, signature: Bytes[1024]) -> bool:
    return signature_checker._is_valid_signature(signer, digest, signature)
"""

# A smart wallet whose `isValidSignature` answers as its `mode` says (raw returndata).
WALLET = """
# pragma version ~=0.4.3
RIGHT: constant(uint256) = 0      # magic iff `owner` signed the digest (ECDSA), else 0xffffffff
WRONG: constant(uint256) = 1      # always a bytes4 that is not the magic value
REVERT: constant(uint256) = 2
HUGE: constant(uint256) = 3       # like RIGHT, then 64 KiB more returndata
GARBAGE: constant(uint256) = 4    # 64 KiB of non-magic returndata
DIRTY: constant(uint256) = 5      # the magic value with non-zero padding
SHORT: constant(uint256) = 6      # the 4 magic bytes alone
BURN: constant(uint256) = 7       # spends all the gas it is given
ECHO: constant(uint256) = 8       # answers with its own calldata
MAGIC: constant(bytes4) = 0x1626ba7e

owner: public(address)
mode: public(uint256)

@deploy
def __init__(owner: address, mode: uint256):
    self.owner = owner
    self.mode = mode

@internal
@view
def _answer(digest: bytes32, signature: Bytes[1024]) -> bytes4:
    if len(signature) == 65:
        r: uint256 = extract32(signature, 0, output_type=uint256)
        s: uint256 = extract32(signature, 32, output_type=uint256)
        v: uint256 = convert(slice(signature, 64, 1), uint256)
        if ecrecover(digest, v, r, s) == self.owner:
            return MAGIC
    return 0xffffffff

@external
@view
@raw_return
def isValidSignature(digest: bytes32, signature: Bytes[1024]) -> Bytes[65600]:
    m: uint256 = self.mode
    word: Bytes[32] = abi_encode(self._answer(digest, signature))
    if m == RIGHT:
        return word
    if m == WRONG:
        return abi_encode(0xdeadbeef)
    if m == REVERT:
        raise "no"
    if m == HUGE:
        return concat(word, abi_encode(empty(uint256[2048])))
    if m == GARBAGE:
        return concat(b"\\x16\\x26\\xba\\x7f", abi_encode(empty(uint256[2048])))
    if m == DIRTY:
        return concat(slice(word, 0, 4), b"\\x01", slice(word, 5, 27))
    if m == SHORT:
        return slice(word, 0, 4)
    if m == BURN:
        x: bytes32 = digest
        for i: uint256 in range(10000000):
            x = keccak256(x)
        return abi_encode(x)
    return slice(msg.data, 0, 100)
"""
MODES = {"right": 0, "wrong": 1, "revert": 2, "huge": 3, "garbage": 4, "dirty": 5, "short": 6}
MODES |= {"burn": 7, "echo": 8}

keys = st.integers(min_value=1, max_value=N - 1)
digests = st.binary(min_size=32, max_size=32)
settings_ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def checker() -> Any:
    path = CONTRACTS_DIR / "SignatureCheckerHarness.vy"  # imports resolve from contracts/
    return boa.loads_partial(HARNESS, name="SignatureCheckerHarness", filename=str(path)).deploy()


@pytest.fixture(scope="module")
def wallet_deployer() -> Any:
    return boa.loads_partial(WALLET, name="Erc1271Wallet")


def _sign(key: int, digest: bytes) -> tuple[bytes, bytes, int, str]:
    """(r, s, recovery id, address) of libsecp256k1's (low-s) signature of ``digest``."""
    secret = PrivateKey(key.to_bytes(32, "big"))
    raw = secret.sign_recoverable(digest, hasher=None)
    address = to_checksum_address(keccak(secret.public_key.format(compressed=False)[1:])[-20:])
    return raw[:32], raw[32:64], raw[64], address


@settings_
@given(key=keys, digest=digests, legacy_v=st.booleans())
def test_low_s_signature_recovers_its_signer_with_v_0_1_27_28(
    checker: Any, key: int, digest: bytes, legacy_v: bool
) -> None:
    r, s, recid, signer = _sign(key, digest)
    v = recid + 27 if legacy_v else recid
    signature = r + s + bytes([v])
    assert checker.recover(digest, signature) == signer
    assert checker.is_valid(signer, digest, signature)
    other = Account.create().address
    assert not checker.is_valid(other, digest, signature)
    flipped = r + s + bytes([(1 - recid) + (27 if legacy_v else 0)])
    assert checker.recover(digest, flipped) != signer  # the other parity is another key


@settings_
@given(key=keys, digest=digests)
def test_high_s_twin_is_refused(checker: Any, key: int, digest: bytes) -> None:
    r, s, recid, signer = _sign(key, digest)
    twin = r + (N - int.from_bytes(s, "big")).to_bytes(32, "big") + bytes([28 - recid])
    assert checker.recover(digest, twin) == "0x" + "00" * 20
    assert not checker.is_valid(signer, digest, twin)


@settings_
@given(key=keys, digest=digests, v=st.integers(0, 255).filter(lambda v: v not in (0, 1, 27, 28)))
def test_any_other_v_is_refused(checker: Any, key: int, digest: bytes, v: int) -> None:
    r, s, _, signer = _sign(key, digest)
    assert not checker.is_valid(signer, digest, r + s + bytes([v]))


@settings_
@given(key=keys, digest=digests, cut=st.sampled_from([0, 1, 64, 66, 130]))
def test_other_lengths_are_refused(checker: Any, key: int, digest: bytes, cut: int) -> None:
    r, s, recid, signer = _sign(key, digest)
    signature = (r + s + bytes([recid + 27]) + b"\x00" * 65)[:cut]
    assert not checker.is_valid(signer, digest, signature)


def test_zero_signer_never_validates_by_ecdsa(checker: Any) -> None:
    digest = keccak(b"anything")
    garbage = b"\x00" * 32 + b"\x02" * 32 + b"\x1b"  # r = 0 recovers nothing: ecrecover gives 0
    assert checker.recover(digest, garbage) == "0x" + "00" * 20
    assert not checker.is_valid("0x" + "00" * 20, digest, garbage)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, digest=digests, mode=st.sampled_from(sorted(MODES)))
def test_erc1271_wallet_is_believed_only_for_the_bytes4_magic_value(
    checker: Any, wallet_deployer: Any, key: int, digest: bytes, mode: str
) -> None:
    r, s, recid, owner = _sign(key, digest)
    wallet = wallet_deployer.deploy(owner, MODES[mode])
    signature = r + s + bytes([recid + 27])
    expected = mode in ("right", "huge")  # magic word first; extra returndata is ignored
    assert checker.is_valid(str(wallet.address), digest, signature) is expected
    stranger_r, stranger_s, stranger_id, _ = _sign(key % (N - 1) + 1, digest)  # another key
    stranger = stranger_r + stranger_s + bytes([stranger_id + 27])
    assert not checker.is_valid(str(wallet.address), digest, stranger)  # the wallet says no


def test_erc1271_check_stays_within_its_gas_bound(checker: Any, wallet_deployer: Any) -> None:
    owner: Any = Account.create()
    wallet = wallet_deployer.deploy(owner.address, MODES["burn"])
    digest = keccak(b"burn")
    assert checker.is_valid(str(wallet.address), digest, b"\x00" * 65, gas=5_000_000) is False
    used = checker._computation.get_gas_used()
    assert ERC1271_GAS <= used < ERC1271_GAS + 100_000  # the wallet got its bound, no more
