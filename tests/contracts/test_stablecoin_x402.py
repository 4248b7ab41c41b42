"""The official x402 SDK against our Stablecoin: its client signs, its settle path pays.

On the embedded chain the SDK's own `execute_transfer_with_authorization` picks the overload and
encodes the call with the SDK's ABI; on anvil the SDK's complete facilitator (verify + settle
through `FacilitatorWeb3Signer`) runs against the contract.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from token_helpers import new_account
from web3.contract import Contract
from x402.mechanisms.evm import constants as evm_constants
from x402.mechanisms.evm.erc6492 import parse_erc6492_signature
from x402.mechanisms.evm.exact import ExactEvmClientScheme, ExactEvmFacilitatorScheme
from x402.mechanisms.evm.exact.eip3009_utils import (
    execute_transfer_with_authorization,
    parse_eip3009_authorization,
)
from x402.mechanisms.evm.signers import FacilitatorWeb3Signer
from x402.mechanisms.evm.types import ExactEIP3009Payload
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import TransactionReverted
from agentbazaar.testing import STABLECOIN_ARGS, LocalWorld

PRICE = 1_250_000  # 1.25 USDC


def deploy_usdc(chain: Chain) -> tuple[Contract, LocalAccount]:
    """The suite's USDC, freshly deployed; and its minter."""
    world = LocalWorld.deploy(chain)
    return world.usdc, world.deployer


def requirements(chain: Chain, token: Contract, pay_to: str) -> PaymentRequirements:
    return PaymentRequirements(
        scheme="exact",
        network=chain.network,
        asset=token.address,
        amount=str(PRICE),
        pay_to=pay_to,
        max_timeout_seconds=300,
        extra={"name": STABLECOIN_ARGS[2], "version": STABLECOIN_ARGS[3]},
    )


def sdk_payment(payer: LocalAccount, accepted: PaymentRequirements) -> PaymentPayload:
    """What an x402 client sends in PAYMENT-SIGNATURE, built by the SDK's own client scheme."""
    inner = ExactEvmClientScheme(payer).create_payment_payload(accepted)
    return PaymentPayload(x402_version=2, payload=inner, accepted=accepted)


class ChainWriter:
    """The one method of the SDK's facilitator signer that its settle helper uses, over Chain."""

    def __init__(self, chain: Chain, account: LocalAccount) -> None:
        self.chain, self.account = chain, account

    def write_contract(
        self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any, **_: Any
    ) -> str:
        fn = self.chain.contract(address, abi).get_function_by_name(function_name)(*args)
        receipt = self.chain.transact(self.account, fn)
        return "0x" + bytes(receipt["transactionHash"]).hex()


@pytest.mark.parametrize("form", ["vrs", "bytes"])
def test_sdk_signed_authorization_settles_on_embedded(form: str) -> None:
    chain = Chain.embedded()
    relayer, payer = dev_account(1), dev_account(2)
    usdc, minter = deploy_usdc(chain)
    chain.fund_native(relayer.address, 10**19)
    chain.transact(minter, usdc.functions.mint(payer.address, 10 * PRICE))
    payee = new_account().address
    payment = sdk_payment(payer, requirements(chain, usdc, payee))
    payload = ExactEIP3009Payload.from_dict(payment.payload)
    parsed = parse_eip3009_authorization(payload.authorization)
    signature = bytes(HexBytes(payload.signature or ""))
    writer = ChainWriter(chain, relayer)
    if form == "vrs":  # what the SDK's settle does for a 65-byte EOA signature
        sig_data = parse_erc6492_signature(signature)
        execute_transfer_with_authorization(writer, usdc.address, parsed, sig_data)
    else:
        bytes_abi = evm_constants.TRANSFER_WITH_AUTHORIZATION_BYTES_ABI
        fn = chain.contract(usdc.address, bytes_abi).functions.transferWithAuthorization
        chain.transact(relayer, fn(*_positional(parsed), signature))
    assert usdc.functions.balanceOf(payee).call() == PRICE
    assert usdc.functions.balanceOf(payer.address).call() == 9 * PRICE
    assert usdc.functions.authorizationState(payer.address, parsed.nonce).call()
    with pytest.raises(TransactionReverted, match="authorization is used or canceled"):
        sig_data = parse_erc6492_signature(signature)
        execute_transfer_with_authorization(writer, usdc.address, parsed, sig_data)
    assert usdc.functions.balanceOf(payee).call() == PRICE


def _positional(parsed: Any) -> tuple[Any, ...]:
    return (
        parsed.from_address,
        parsed.to,
        parsed.value,
        parsed.valid_after,
        parsed.valid_before,
        parsed.nonce,
    )


@pytest.mark.anvil
def test_sdk_facilitator_verifies_and_settles_on_anvil(shared_anvil: AnvilNode) -> None:
    chain = Chain.rpc(shared_anvil.running_url(), backend="local")
    facilitator_key, payer = dev_account(3), dev_account(4)
    usdc, minter = deploy_usdc(chain)
    chain.transact(minter, usdc.functions.mint(payer.address, 10 * PRICE))
    payee = new_account().address
    accepted = requirements(chain, usdc, payee)
    payment = sdk_payment(payer, accepted)
    signer = FacilitatorWeb3Signer(
        private_key="0x" + bytes(facilitator_key.key).hex(), rpc_url=shared_anvil.running_url()
    )
    facilitator = ExactEvmFacilitatorScheme(signer)
    verified = facilitator.verify(payment, accepted)
    assert verified.is_valid, verified.invalid_reason
    assert verified.payer == payer.address
    settled = facilitator.settle(payment, accepted)
    assert settled.success, settled.error_reason
    assert usdc.functions.balanceOf(payee).call() == PRICE
    assert usdc.functions.totalSupply().call() == 10 * PRICE
    again = facilitator.verify(payment, accepted)
    assert not again.is_valid
    assert usdc.functions.balanceOf(payee).call() == PRICE
