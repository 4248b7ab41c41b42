"""Set-up of the upto / Permit2 / smart-account tests: a chain with our stablecoin, Permit2 and
the x402 proxies at the canonical addresses, a funded payer, the test smart-account factory, and
signers for the SDK's client schemes (an EOA, or a contract wallet through ERC-1271 / ERC-6492).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vyper
from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from web3.contract import Contract
from x402.mechanisms.evm import constants as c
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.upto import UptoEvmClientScheme
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments import permit2
from agentbazaar.payments.evm import extend_facilitator
from agentbazaar.payments.facilitator import Facilitator, exact_facilitator
from agentbazaar.testing import LocalWorld
from agentbazaar.tokens import Token

WALLETS = Path(__file__).resolve().parents[1] / "contracts" / "wallets"
START = 100_000_000  # 100 USDC
MAX_UINT = 2**256 - 1


def compile_wallet(name: str) -> tuple[list[dict[str, Any]], bytes]:
    out = vyper.compile_code(
        (WALLETS / f"{name}.vy").read_text(), output_formats=["abi", "bytecode"]
    )
    return out["abi"], bytes.fromhex(out["bytecode"][2:])


@dataclass
class UptoEnv:
    chain: Chain
    usdc: Contract
    token: Token
    payer: LocalAccount
    gas: LocalAccount
    seller: str
    factory: Contract
    world: LocalWorld

    def balance(self, address: str) -> int:
        return self.world.balance(address)

    def fund(self, address: str, amount: int = START) -> None:
        self.world.mint(address, amount)

    def approve_permit2(self, account: LocalAccount) -> None:
        self.chain.transact(account, self.usdc.functions.approve(permit2.PERMIT2_ADDRESS, MAX_UINT))

    def requirement(
        self, amount: int, *, scheme: str = "upto", **extra: Any
    ) -> PaymentRequirements:
        base: dict[str, Any] = {"name": "USD Coin", "version": "2"}
        if scheme == "upto":
            base.update(facilitatorAddress=self.gas.address, assetTransferMethod="permit2")
        return PaymentRequirements(
            scheme=scheme,
            network=self.chain.network,
            asset=str(self.usdc.address),
            amount=str(amount),
            pay_to=self.seller,
            max_timeout_seconds=300,
            extra={**base, **extra},
        )

    def pay(self, req: PaymentRequirements, signer: Any = None) -> PaymentPayload:
        """What the SDK's client sends for ``req`` (upto, exact EIP-3009 or exact Permit2)."""
        who = signer or self.payer
        scheme = UptoEvmClientScheme(who) if req.scheme == "upto" else ExactEvmClientScheme(who)
        return PaymentPayload(
            x402_version=2, payload=scheme.create_payment_payload(req), accepted=req
        )

    def facilitator(
        self, store: Path | None = None, *, factories: tuple[str, ...] = ()
    ) -> Facilitator:
        exact_store = store.with_name(store.stem + "-exact.db") if store is not None else None
        fac = exact_facilitator(self.chain, self.gas, store_path=exact_store)
        return extend_facilitator(
            fac, self.chain, self.gas, store_path=store, allowed_factories=factories
        )

    # ---- smart accounts ---------------------------------------------------------------------
    def counterfactual(self, owner: LocalAccount, *, approve: bool = True) -> tuple[str, bytes]:
        """(address, factory calldata) of a wallet not deployed yet (learnt by simulation)."""
        token = str(self.usdc.address) if approve else "0x" + "00" * 20
        fn = self.factory.functions.createAccount(owner.address, token, os.urandom(32))
        address = str(fn.call({"from": self.gas.address}))
        return address, bytes.fromhex(fn._encode_transaction_data()[2:])

    def deployed_wallet(self, owner: LocalAccount) -> str:
        address, calldata = self.counterfactual(owner)
        self.chain.send(
            self.world.deployer, {"to": self.factory.address, "data": "0x" + calldata.hex()}
        )
        return address


class WalletSigner:
    """An SDK ``ClientEvmSigner`` for a contract wallet: the owner signs the EIP-712 digest
    (what ``SmartAccount.isValidSignature`` accepts); ``wrap_6492`` adds the factory call;
    ``tail`` makes the ERC-1271 signature longer than 65 bytes."""

    def __init__(
        self,
        address: str,
        owner: LocalAccount,
        *,
        factory: str | None = None,
        calldata: bytes = b"",
        tail: bytes = b"",
    ) -> None:
        self.address = address
        self.owner, self.factory, self.calldata, self.tail = owner, factory, calldata, tail

    def sign_typed_data(
        self, domain: Any, types: Mapping[str, Any], primary_type: str, message: Mapping[str, Any]
    ) -> bytes:
        domain_dict = domain if isinstance(domain, Mapping) else _domain(domain)
        fields = {
            name: [{"name": f["name"] if isinstance(f, Mapping) else f.name, "type": f["type"] if isinstance(f, Mapping) else f.type} for f in spec]
            for name, spec in types.items()
        }  # fmt: skip
        signable = encode_typed_data(
            domain_data=dict(domain_dict), message_types=fields, message_data=dict(message)
        )
        digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
        inner = bytes(self.owner.unsafe_sign_hash(digest).signature) + self.tail
        if self.factory is None:
            return inner
        wrapped = abi_encode(["address", "bytes", "bytes"], [self.factory, self.calldata, inner])
        return wrapped + c.ERC6492_MAGIC_VALUE


def _domain(domain: Any) -> dict[str, Any]:
    out = {
        "name": domain.name,
        "chainId": domain.chain_id,
        "verifyingContract": domain.verifying_contract,
    }
    if getattr(domain, "version", None):
        out["version"] = domain.version
    return out


def setup_chain(chain: Chain) -> UptoEnv:
    """The suite's USDC and its Permit2 step (Permit2, the x402 proxies, Multicall3 at their
    canonical addresses) on ``chain``, and the test wallet factory."""
    world = LocalWorld.deploy(chain, only=("USDC", "permit2"), fund_dev_accounts=6)
    deployer = world.deployer
    template_abi, template_code = compile_wallet("SmartAccount")
    template, _ = chain.deploy(deployer, template_abi, template_code, name="SmartAccount")
    factory_abi, factory_code = compile_wallet("SmartAccountFactory")
    factory, _ = chain.deploy(
        deployer, factory_abi, factory_code, template.address, permit2.PERMIT2_ADDRESS,
        name="SmartAccountFactory",
    )  # fmt: skip
    env = UptoEnv(
        chain=chain,
        usdc=world.usdc,
        token=world.usdc_token,
        payer=dev_account(1),
        gas=dev_account(2),
        seller=dev_account(3).address,
        factory=factory,
        world=world,
    )
    env.fund(env.payer.address)
    env.approve_permit2(env.payer)
    return env
