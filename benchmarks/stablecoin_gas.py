"""Gas per operation of our Stablecoin and WrappedNative, beside a plain ERC-20 transfer.

Prints one JSON line per figure. Run: .venv/bin/python benchmarks/stablecoin_gas.py
Gas is deterministic, so one run suffices; every figure is the receipt's gasUsed on the embedded
chain (py-evm, cancun), for a warm sender and a recipient that already holds tokens (the common
case for a paid API: the payee has been paid before). The reference beside each EIP-3009 figure
is a plain `transfer` of the same token in the same run; `ratio` = figure / reference.
"""

from __future__ import annotations

import json
import os
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account

AUTH_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _emit(name: str, gas: int, reference: int | None = None, ref_name: str = "") -> None:
    line: dict[str, Any] = {"name": name, "value": gas, "unit": "gas"}
    if reference:
        line |= {"reference": ref_name, "reference_value": reference, "ratio": gas / reference}
    print(json.dumps(line))


def _sign(account: Any, domain: dict[str, Any], primary: str, message: dict[str, Any]) -> bytes:
    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": DOMAIN_FIELDS, primary: AUTH_FIELDS},
            "primaryType": primary,
            "domain": domain,
            "message": message,
        }
    )
    return bytes(account.sign_message(signable).signature)


def main() -> None:
    chain = Chain.embedded()
    minter, relayer = dev_account(0), dev_account(1)
    payer, payee = Account.create(), Account.create()
    for who in (minter.address, relayer.address, payer.address, payee.address):
        chain.fund_native(who, 10**20)
    stable = compile_contract("Stablecoin")
    usdc, _ = chain.deploy(minter, stable.abi, stable.bytecode, "USD Coin", "USDC", "USD Coin", "2")
    chain.transact(minter, usdc.functions.mint(payer.address, 10**12))
    chain.transact(minter, usdc.functions.mint(payee.address, 1))
    chain.transact(minter, usdc.functions.mint(relayer.address, 1))

    def gas(account: Any, fn: Any, value: int = 0) -> int:
        return int(chain.transact(account, fn, value=value)["gasUsed"])

    transfer = gas(payer, usdc.functions.transfer(payee.address, 1000))
    _emit("usdc.transfer", transfer)
    domain = {
        "name": "USD Coin",
        "version": "2",
        "chainId": chain.chain_id,
        "verifyingContract": usdc.address,
    }
    now = chain.w3.eth.get_block("latest")["timestamp"]
    for label, primary, form in (
        ("usdc.transferWithAuthorization(v,r,s)", "TransferWithAuthorization", "vrs"),
        ("usdc.transferWithAuthorization(bytes)", "TransferWithAuthorization", "bytes"),
        ("usdc.receiveWithAuthorization(v,r,s)", "ReceiveWithAuthorization", "vrs"),
    ):
        nonce = os.urandom(32)
        message = {
            "from": payer.address,
            "to": payee.address,
            "value": 1000,
            "validAfter": 0,
            "validBefore": now + 3600,
            "nonce": nonce,
        }
        sig = _sign(payer, domain, primary, message)
        args = (payer.address, payee.address, 1000, 0, now + 3600, nonce)
        fns = usdc.functions
        if form == "bytes":
            call = fns.transferWithAuthorization(*args, sig)
        elif primary == "ReceiveWithAuthorization":
            call = fns.receiveWithAuthorization(*args, sig[64], sig[:32], sig[32:64])
        else:
            call = fns.transferWithAuthorization(*args, sig[64], sig[:32], sig[32:64])
        sender = payee if primary == "ReceiveWithAuthorization" else relayer
        _emit(label, gas(sender, call), transfer, "usdc.transfer")

    wrapped = compile_contract("WrappedNative")
    weth, _ = chain.deploy(minter, wrapped.abi, wrapped.bytecode, "Wrapped Ether", "WETH")
    gas(payer, weth.functions.deposit(), value=10**18)  # warm the balance slot
    _emit("weth.deposit", gas(payer, weth.functions.deposit(), value=10**18))
    _emit("weth.withdraw", gas(payer, weth.functions.withdraw(10**18)))
    gas(payer, weth.functions.transfer(payee.address, 1))  # the payee now holds WETH
    _emit("weth.transfer", gas(payer, weth.functions.transfer(payee.address, 1)))


if __name__ == "__main__":
    main()
