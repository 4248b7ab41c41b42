"""Stablecoin.vy on titanoboa: ERC-20 + minter, EIP-2612 permit, EIP-3009 (both overloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boa
import pytest
from eth.exceptions import Revert
from eth_utils import function_signature_to_4byte_selector, keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from token_helpers import (
    Authorization,
    authorize,
    bytes_overloads,
    deploy_stablecoin,
    domain_of,
    new_account,
    random_nonce,
    sign_cancel,
    sign_permit,
    split,
)
from x402.mechanisms.evm import constants as evm_constants

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.deployment import deploy_suite
from agentbazaar.suite import Suite

MILLION = 10**6 * 10**6  # one million USDC in base units
ACCOUNT = st.integers(min_value=0, max_value=2)
AMOUNT = st.integers(min_value=0, max_value=10**12)


def fund(usdc: Any, minter: str, to: str, amount: int = MILLION) -> None:
    usdc.mint(to, amount, sender=minter)


# ---- metadata, ERC-20, minter ----------------------------------------------------------------


def test_metadata_and_domain(usdc: Any, minter: str) -> None:
    assert usdc.name() == "USD Coin"
    assert usdc.symbol() == "USDC"
    assert usdc.decimals() == 6
    assert usdc.version() == "2"
    assert usdc.owner() == minter
    assert usdc.is_minter(minter)
    domain = domain_of(usdc)
    assert domain["name"] == "USD Coin" and domain["version"] == "2"
    assert domain["verifyingContract"] == str(usdc.address)
    type_hash = keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = keccak(
        type_hash
        + keccak(b"USD Coin")
        + keccak(b"2")
        + domain["chainId"].to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(str(usdc.address)[2:])
    )
    assert usdc.DOMAIN_SEPARATOR() == expected


def test_only_minter_can_mint(usdc: Any, minter: str) -> None:
    stranger = new_account().address
    with boa.reverts("erc20: access is denied"):
        usdc.mint(stranger, 1, sender=stranger)
    usdc.mint(stranger, 5, sender=minter)
    assert usdc.balanceOf(stranger) == 5 and usdc.totalSupply() == 5


def test_owner_can_add_a_minter(usdc: Any, minter: str) -> None:
    faucet = new_account().address
    usdc.set_minter(faucet, True, sender=minter)
    usdc.mint(faucet, 7, sender=faucet)
    usdc.set_minter(faucet, False, sender=minter)
    with boa.reverts("erc20: access is denied"):
        usdc.mint(faucet, 1, sender=faucet)
    with boa.reverts("ownable: caller is not the owner"):
        usdc.set_minter(faucet, True, sender=faucet)


def test_transfer_approve_transfer_from_burn(usdc: Any, minter: str) -> None:
    a, b, c = (new_account().address for _ in range(3))
    fund(usdc, minter, a, 100)
    assert usdc.transfer(b, 30, sender=a)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        usdc.transfer(b, 71, sender=a)
    usdc.approve(c, 50, sender=a)
    usdc.transferFrom(a, c, 50, sender=c)
    with boa.reverts("erc20: insufficient allowance"):
        usdc.transferFrom(a, c, 1, sender=c)
    usdc.burn(10, sender=b)
    assert (usdc.balanceOf(a), usdc.balanceOf(b), usdc.balanceOf(c)) == (20, 20, 50)
    assert usdc.totalSupply() == 90


def test_plain_value_and_unknown_calls_revert(usdc: Any) -> None:
    sender = new_account().address
    boa.env.set_balance(sender, 10**18)
    with pytest.raises(Revert):
        boa.env.raw_call(str(usdc.address), sender=sender, value=1)
    with pytest.raises(Revert, match="unknown function"):
        boa.env.raw_call(str(usdc.address), sender=sender, data=b"\x12\x34\x56\x78")
    with pytest.raises(Revert, match="unknown function"):
        boa.env.raw_call(str(usdc.address), sender=sender, data=b"\x12")
    assert boa.env.get_balance(str(usdc.address)) == 0


# ---- EIP-3009 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overload", ["vrs", "bytes"])
def test_transfer_with_authorization_works_once(usdc: Any, minter: str, overload: str) -> None:
    payer, payee, relayer = new_account(), new_account().address, new_account().address
    fund(usdc, minter, payer.address, 1_000_000)
    auth = authorize(usdc, payer, payee, 250_000)
    assert not usdc.authorizationState(payer.address, auth.nonce)
    if overload == "vrs":
        usdc.transferWithAuthorization(*auth.vrs_args, sender=relayer)
        used = [e for e in usdc.get_logs() if type(e).__name__ == "AuthorizationUsed"]
        assert [(e.authorizer, e.nonce) for e in used] == [(payer.address, auth.nonce)]
    else:
        bytes_overloads(usdc).transferWithAuthorization(*auth.bytes_args, sender=relayer)
    assert usdc.balanceOf(payee) == 250_000
    assert usdc.balanceOf(payer.address) == 750_000
    assert usdc.authorizationState(payer.address, auth.nonce)
    with boa.reverts("authorization is used or canceled"):
        usdc.transferWithAuthorization(*auth.vrs_args, sender=relayer)
    with boa.reverts("authorization is used or canceled"):
        bytes_overloads(usdc).transferWithAuthorization(*auth.bytes_args, sender=relayer)
    assert usdc.balanceOf(payee) == 250_000


@pytest.mark.parametrize("overload", ["vrs", "bytes"])
def test_receive_with_authorization_only_by_payee(usdc: Any, minter: str, overload: str) -> None:
    payer, payee = new_account(), new_account().address
    fund(usdc, minter, payer.address, 100)
    auth = authorize(usdc, payer, payee, 60, primary="ReceiveWithAuthorization")
    call = (
        usdc.receiveWithAuthorization
        if overload == "vrs"
        else bytes_overloads(usdc).receiveWithAuthorization
    )
    args = auth.vrs_args if overload == "vrs" else auth.bytes_args
    with boa.reverts("caller must be the payee"):
        call(*args, sender=new_account().address)
    call(*args, sender=payee)
    assert usdc.balanceOf(payee) == 60
    with boa.reverts("authorization is used or canceled"):
        call(*args, sender=payee)


def test_receive_signature_is_not_a_transfer_signature(usdc: Any, minter: str) -> None:
    """The type hash is part of the signed message: the two kinds are not interchangeable."""
    payer, payee = new_account(), new_account().address
    fund(usdc, minter, payer.address, 100)
    transfer_auth = authorize(usdc, payer, payee, 10)
    with boa.reverts("invalid signature"):
        usdc.receiveWithAuthorization(*transfer_auth.vrs_args, sender=payee)
    receive_auth = authorize(usdc, payer, payee, 10, primary="ReceiveWithAuthorization")
    with boa.reverts("invalid signature"):
        usdc.transferWithAuthorization(*receive_auth.vrs_args, sender=payee)


@pytest.mark.parametrize("overload", ["vrs", "bytes"])
def test_cancel_then_use_reverts(usdc: Any, minter: str, overload: str) -> None:
    payer, payee = new_account(), new_account().address
    fund(usdc, minter, payer.address, 100)
    auth = authorize(usdc, payer, payee, 10)
    cancel_sig = sign_cancel(usdc, payer, auth.nonce)
    relayer = new_account().address
    if overload == "vrs":
        usdc.cancelAuthorization(payer.address, auth.nonce, *split(cancel_sig), sender=relayer)
    else:
        bytes_overloads(usdc).cancelAuthorization(
            payer.address, auth.nonce, cancel_sig, sender=relayer
        )
    assert usdc.authorizationState(payer.address, auth.nonce)
    with boa.reverts("authorization is used or canceled"):
        usdc.transferWithAuthorization(*auth.vrs_args, sender=relayer)
    with boa.reverts("authorization is used or canceled"):
        usdc.cancelAuthorization(payer.address, auth.nonce, *split(cancel_sig), sender=relayer)
    assert usdc.balanceOf(payee) == 0


def test_cancel_needs_the_authorizers_signature(usdc: Any) -> None:
    payer, other = new_account(), new_account()
    nonce = random_nonce()
    forged = sign_cancel(usdc, other, nonce)
    with boa.reverts("invalid signature"):
        usdc.cancelAuthorization(payer.address, nonce, *split(forged))
    assert not usdc.authorizationState(payer.address, nonce)


def test_expired_and_not_yet_valid(usdc: Any, minter: str) -> None:
    payer, payee = new_account(), new_account().address
    fund(usdc, minter, payer.address, 100)
    now = boa.env.evm.patch.timestamp
    expired = authorize(usdc, payer, payee, 1, valid_after=0, valid_before=now)
    with boa.reverts("authorization is expired"):
        usdc.transferWithAuthorization(*expired.vrs_args)
    early = authorize(usdc, payer, payee, 1, valid_after=now, valid_before=now + 100)
    with boa.reverts("authorization is not yet valid"):  # validAfter must be strictly earlier
        usdc.transferWithAuthorization(*early.vrs_args)
    boa.env.time_travel(seconds=1)
    usdc.transferWithAuthorization(*early.vrs_args)
    assert usdc.balanceOf(payee) == 1
    late = authorize(usdc, payer, payee, 1, valid_after=0, valid_before=now + 50)
    boa.env.time_travel(seconds=60)
    with boa.reverts("authorization is expired"):
        bytes_overloads(usdc).transferWithAuthorization(*late.bytes_args)


def test_wrong_signer_wrong_amount_wrong_payee(usdc: Any, minter: str) -> None:
    payer, thief = new_account(), new_account()
    payee = new_account().address
    fund(usdc, minter, payer.address, 100)
    forged = authorize(usdc, thief, payee, 50, from_=payer.address)
    with boa.reverts("invalid signature"):
        usdc.transferWithAuthorization(*forged.vrs_args)
    with boa.reverts("invalid signature"):
        bytes_overloads(usdc).transferWithAuthorization(*forged.bytes_args)
    auth = authorize(usdc, payer, payee, 50)
    more = (auth.from_, auth.to, 51, auth.valid_after, auth.valid_before, auth.nonce)
    with boa.reverts("invalid signature"):
        usdc.transferWithAuthorization(*more, *split(auth.signature))
    elsewhere = (auth.from_, thief.address, *auth.args[2:])
    with boa.reverts("invalid signature"):
        usdc.transferWithAuthorization(*elsewhere, *split(auth.signature))
    usdc.transferWithAuthorization(*auth.vrs_args)
    assert usdc.balanceOf(payee) == 50 and usdc.balanceOf(thief.address) == 0


def test_malformed_signatures_revert(usdc: Any, minter: str) -> None:
    payer, payee = new_account(), new_account().address
    fund(usdc, minter, payer.address, 100)
    auth = authorize(usdc, payer, payee, 5)
    v, r, s = split(auth.signature)
    secp256k1_n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (secp256k1_n - int.from_bytes(s, "big")).to_bytes(32, "big")
    with boa.reverts("invalid signature"):  # the malleable twin of a valid signature
        usdc.transferWithAuthorization(*auth.args, 55 - v, r, high_s)
    # v must be 27/28 or the recovery id 0/1 itself (lib/signature_checker.vy): anything else,
    # or the other parity, is refused
    for bad_v in (v - 25, 28 - v):
        with boa.reverts("invalid signature"):
            usdc.transferWithAuthorization(*auth.args, bad_v, r, s)
    overloads = bytes_overloads(usdc)
    for bad in (b"", auth.signature[:64], auth.signature + b"\x00", bytes(65)):
        with boa.reverts("invalid signature"):
            overloads.transferWithAuthorization(*auth.args, bad)
    usdc.transferWithAuthorization(*auth.vrs_args)
    assert usdc.balanceOf(payee) == 5


def test_zero_address_cannot_authorize(usdc: Any) -> None:
    """ecrecover yields the zero address for garbage; that must never count as its signature."""
    zero = "0x" + "00" * 20
    args = (zero, new_account().address, 0, 0, boa.env.evm.patch.timestamp + 60, random_nonce())
    with boa.reverts("invalid signature"):
        usdc.transferWithAuthorization(*args, 27, bytes(32), bytes(32))
    with boa.reverts("invalid signature"):
        bytes_overloads(usdc).transferWithAuthorization(*args, bytes(65))
    with boa.reverts("invalid signature"):
        usdc.cancelAuthorization(zero, args[5], 28, b"\x01" * 32, b"\x01" * 32)


def test_authorization_over_balance_reverts_and_keeps_nonce(usdc: Any, minter: str) -> None:
    payer, payee = new_account(), new_account().address
    fund(usdc, minter, payer.address, 10)
    auth = authorize(usdc, payer, payee, 11)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        usdc.transferWithAuthorization(*auth.vrs_args)
    assert not usdc.authorizationState(payer.address, auth.nonce)
    fund(usdc, minter, payer.address, 1)
    usdc.transferWithAuthorization(*auth.vrs_args)
    assert usdc.balanceOf(payee) == 11


def test_nonces_are_per_authorizer(usdc: Any, minter: str) -> None:
    alice, bob, payee = new_account(), new_account(), new_account().address
    fund(usdc, minter, alice.address, 10)
    fund(usdc, minter, bob.address, 10)
    nonce = random_nonce()
    usdc.transferWithAuthorization(*authorize(usdc, alice, payee, 3, nonce=nonce).vrs_args)
    usdc.transferWithAuthorization(*authorize(usdc, bob, payee, 4, nonce=nonce).vrs_args)
    assert usdc.balanceOf(payee) == 7


ERC1271_WALLET = """
# pragma version ~=0.4.3
owner: public(address)

@deploy
def __init__(owner_: address):
    self.owner = owner_

@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[1024]) -> bytes4:
    # The owner's 65-byte signature, optionally followed by opaque wallet data.
    if len(signature) < 65:
        return 0xffffffff
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if ecrecover(digest, v, r, s) == self.owner:
        return 0x1626ba7e
    return 0xffffffff
"""


def test_contract_signer_via_erc1271(usdc: Any, minter: str) -> None:
    """A smart wallet authorises through `isValidSignature`, reached by the bytes overload."""
    owner, payee = new_account(), new_account().address
    wallet = boa.loads(ERC1271_WALLET, owner.address)
    fund(usdc, minter, str(wallet.address), 100)
    auth = authorize(usdc, owner, payee, 40, from_=str(wallet.address))
    bytes_overloads(usdc).transferWithAuthorization(*auth.bytes_args)
    assert usdc.balanceOf(payee) == 40
    stranger = authorize(usdc, new_account(), payee, 40, from_=str(wallet.address))
    with boa.reverts("invalid signature"):
        bytes_overloads(usdc).transferWithAuthorization(*stranger.bytes_args)


@pytest.mark.parametrize("extra", [1, 31, 32, 63, 100, 191])
def test_long_contract_signatures_up_to_256_bytes(usdc: Any, minter: str, extra: int) -> None:
    """Every ABI length of the bytes overloads decodes (the calldata is sliced per length)."""
    owner, payee = new_account(), new_account().address
    wallet = boa.loads(ERC1271_WALLET, owner.address)
    fund(usdc, minter, str(wallet.address), 100)
    auth = authorize(usdc, owner, payee, 10, from_=str(wallet.address))
    long_sig = auth.signature + b"\xee" * extra
    bytes_overloads(usdc).transferWithAuthorization(*auth.args, long_sig)
    assert usdc.balanceOf(payee) == 10
    nonce = random_nonce()
    cancel = sign_cancel(usdc, owner, nonce, authorizer=str(wallet.address))
    bytes_overloads(usdc).cancelAuthorization(str(wallet.address), nonce, cancel + b"\xee" * extra)
    assert usdc.authorizationState(str(wallet.address), nonce)


def test_signature_longer_than_256_bytes_is_refused(usdc: Any, minter: str) -> None:
    owner, payee = new_account(), new_account().address
    wallet = boa.loads(ERC1271_WALLET, owner.address)
    fund(usdc, minter, str(wallet.address), 100)
    auth = authorize(usdc, owner, payee, 10, from_=str(wallet.address))
    with boa.reverts():
        bytes_overloads(usdc).transferWithAuthorization(*auth.args, auth.signature + bytes(192))
    assert usdc.balanceOf(payee) == 0


# ---- EIP-2612 permit ---------------------------------------------------------------------------


def test_permit_sets_allowance_once(usdc: Any, minter: str) -> None:
    owner, spender = new_account(), new_account().address
    fund(usdc, minter, owner.address, 100)
    deadline = boa.env.evm.patch.timestamp + 600
    sig = sign_permit(usdc, owner, spender, 70, usdc.nonces(owner.address), deadline)
    usdc.permit(owner.address, spender, 70, deadline, *split(sig), sender=spender)
    assert usdc.allowance(owner.address, spender) == 70
    assert usdc.nonces(owner.address) == 1
    usdc.transferFrom(owner.address, spender, 70, sender=spender)
    with boa.reverts("erc20: invalid signature"):  # replay: the nonce has moved on
        usdc.permit(owner.address, spender, 70, deadline, *split(sig), sender=spender)
    assert usdc.allowance(owner.address, spender) == 0


def test_permit_expired_and_wrong_signer(usdc: Any) -> None:
    owner, other, spender = new_account(), new_account(), new_account().address
    now = boa.env.evm.patch.timestamp
    expired = sign_permit(usdc, owner, spender, 1, 0, now - 1)
    with boa.reverts("erc20: expired deadline"):
        usdc.permit(owner.address, spender, 1, now - 1, *split(expired))
    forged = sign_permit(usdc, other, spender, 1, 0, now + 60)
    with boa.reverts("erc20: invalid signature"):
        usdc.permit(owner.address, spender, 1, now + 60, *split(forged))
    assert usdc.allowance(owner.address, spender) == 0


# ---- the compiled artifact, the x402 SDK and the local suite ---------------------------------


def _selectors(abi: list[dict[str, Any]]) -> dict[str, str]:
    """'name(type,...)' -> 4-byte selector hex for every function of ``abi``."""
    found = {}
    for entry in abi:
        if entry.get("type") == "function":
            signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
            found[signature] = function_signature_to_4byte_selector(signature).hex()
    return found


def test_compiled_abi_has_the_x402_sdk_selectors() -> None:
    ours = _selectors(compile_contract("Stablecoin").abi)
    sdk_abis = (
        evm_constants.TRANSFER_WITH_AUTHORIZATION_VRS_ABI,
        evm_constants.TRANSFER_WITH_AUTHORIZATION_BYTES_ABI,
        evm_constants.AUTHORIZATION_STATE_ABI,
        evm_constants.BALANCE_OF_ABI,
        evm_constants.NAME_ABI,
        evm_constants.VERSION_ABI,
    )
    for abi in sdk_abis:
        for signature, selector in _selectors(abi).items():
            assert ours.get(signature) == selector, signature
    expected = {
        "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)": "e3ee160e",
        "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)": "cf092995",
        "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)": "ef55bec6",
        "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)": "88b7ab63",
        "cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)": "5a049a70",
        "cancelAuthorization(address,bytes32,bytes)": "b7b72899",
        "authorizationState(address,bytes32)": "e94a0102",
        "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)": "d505accf",
        "nonces(address)": "7ecebe00",
        "DOMAIN_SEPARATOR()": "3644e515",
        "eip712Domain()": "84b0196e",
    }
    assert {sig: ours.get(sig) for sig in expected} == expected


def test_deploy_suite_deploys_both_tokens(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={})
    chain = Chain.embedded()
    ctx = deploy_suite(chain, cfg)
    assert ctx.statuses["USDC"] == "deployed" and ctx.statuses["WETH"] == "deployed"
    suite = Suite.from_context(ctx)
    usdc = suite.token_contract("USDC")
    assert usdc.functions.name().call() == "USD Coin"
    assert usdc.functions.decimals().call() == 6
    assert usdc.functions.version().call() == cfg.stablecoin_version
    domain = usdc.functions.eip712Domain().call()
    assert (domain[1], domain[2], domain[3]) == (
        cfg.stablecoin_name,
        cfg.stablecoin_version,
        chain.chain_id,
    )
    assert usdc.functions.is_minter(ctx.deployer.address).call()
    weth = suite.contract("WETH")
    assert weth.functions.symbol().call() == "WETH" and weth.functions.decimals().call() == 18
    depositor = dev_account(1)
    chain.fund_native(depositor.address, 10**18)
    chain.transact(depositor, weth.functions.deposit(), value=4 * 10**17)
    assert weth.functions.balanceOf(depositor.address).call() == 4 * 10**17
    assert chain.native_balance(weth.address) == weth.functions.totalSupply().call()


# ---- conservation, stateful --------------------------------------------------------------------


class StablecoinMachine(RuleBasedStateMachine):
    """Mints, transfers, transferFrom, EIP-3009 transfers (both overloads, plus replays) and
    burns in random order: balances follow the model, and totalSupply == sum of balances."""

    @initialize()
    def setup(self) -> None:
        self.minter = str(boa.env.generate_address("machine-minter"))
        self.usdc = deploy_stablecoin(self.minter)
        self.accounts = [new_account() for _ in range(3)]
        self.model = {a.address: 0 for a in self.accounts}
        self.used: list[Authorization] = []

    def _addr(self, i: int) -> str:
        return str(self.accounts[i].address)

    @rule(who=ACCOUNT, amount=AMOUNT)
    def mint(self, who: int, amount: int) -> None:
        self.usdc.mint(self._addr(who), amount, sender=self.minter)
        self.model[self._addr(who)] += amount

    @rule(src=ACCOUNT, dst=ACCOUNT, amount=AMOUNT)
    def transfer(self, src: int, dst: int, amount: int) -> None:
        a, b = self._addr(src), self._addr(dst)
        if amount > self.model[a]:
            with boa.reverts("erc20: transfer amount exceeds balance"):
                self.usdc.transfer(b, amount, sender=a)
            return
        self.usdc.transfer(b, amount, sender=a)
        self.model[a] -= amount
        self.model[b] += amount

    @rule(src=ACCOUNT, dst=ACCOUNT, allowance=AMOUNT, amount=AMOUNT)
    def transfer_from(self, src: int, dst: int, allowance: int, amount: int) -> None:
        a, b = self._addr(src), self._addr(dst)
        self.usdc.approve(b, allowance, sender=a)
        if amount > allowance:
            with boa.reverts("erc20: insufficient allowance"):
                self.usdc.transferFrom(a, b, amount, sender=b)
        elif amount > self.model[a]:
            with boa.reverts("erc20: transfer amount exceeds balance"):
                self.usdc.transferFrom(a, b, amount, sender=b)
        else:
            self.usdc.transferFrom(a, b, amount, sender=b)
            self.model[a] -= amount
            self.model[b] += amount

    @rule(src=ACCOUNT, dst=ACCOUNT, amount=AMOUNT, use_bytes=st.booleans())
    def transfer_with_authorization(self, src: int, dst: int, amount: int, use_bytes: bool) -> None:
        a, b = self._addr(src), self._addr(dst)
        auth = authorize(self.usdc, self.accounts[src], b, amount)
        send = (
            (lambda: bytes_overloads(self.usdc).transferWithAuthorization(*auth.bytes_args))
            if use_bytes
            else (lambda: self.usdc.transferWithAuthorization(*auth.vrs_args))
        )
        if amount > self.model[a]:
            with boa.reverts("erc20: transfer amount exceeds balance"):
                send()
            assert not self.usdc.authorizationState(a, auth.nonce)
            return
        send()
        self.model[a] -= amount
        self.model[b] += amount
        self.used.append(auth)

    @precondition(lambda self: bool(self.used))
    @rule(pick=st.integers(min_value=0))
    def replay(self, pick: int) -> None:
        auth = self.used[pick % len(self.used)]
        with boa.reverts("authorization is used or canceled"):
            self.usdc.transferWithAuthorization(*auth.vrs_args)

    @rule(who=ACCOUNT, amount=AMOUNT)
    def burn(self, who: int, amount: int) -> None:
        a = self._addr(who)
        if amount > self.model[a]:
            with boa.reverts("erc20: burn amount exceeds balance"):
                self.usdc.burn(amount, sender=a)
            return
        self.usdc.burn(amount, sender=a)
        self.model[a] -= amount

    @invariant()
    def supply_is_sum_of_balances(self) -> None:
        balances = [self.usdc.balanceOf(a) for a in self.model]
        assert balances == list(self.model.values())
        assert all(b >= 0 for b in balances)
        assert self.usdc.totalSupply() == sum(balances)


TestStablecoinMachine = StablecoinMachine.TestCase
TestStablecoinMachine.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
