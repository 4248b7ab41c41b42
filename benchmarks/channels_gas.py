"""batch-settlement channels (c): gas per payment on anvil, beside `exact`.

Run: .venv/bin/python -P benchmarks/channels_gas.py [--channels 100] [--vouchers 1000]

100 channels x 1,000 vouchers each -> 100 deposits, one claim of 100 channels, one settle;
vs one EIP-3009 transferWithAuthorization per payment (what `exact` settles). Deposits,
vouchers and authorizations are signed by the test kit and built by the channel library.
Prints one JSON line per figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts, ChannelRecord, ChannelTerms
from agentbazaar.testing import ChannelPayer, LocalWorld, sign_eip3009, sign_voucher
from agentbazaar.testing.bench import anvil_world, emit

PRICE = 1_000


def channel_gas(
    world: LocalWorld, terms: ChannelTerms, channels: int, per_channel: int
) -> dict[str, int]:
    """Gas of ``channels`` deposits of ``per_channel`` payments each, one claim, one settle."""
    chain, relayer, authorizer = world.chain, dev_account(3), dev_account(2)
    contracts, amount = ChannelContracts(chain, relayer), per_channel * PRICE
    deposits, records = 0, []
    for _ in range(channels):
        payer = ChannelPayer(Account.create(), terms)
        world.mint(payer.account.address, amount)
        deposit = payer.deposit(PRICE, amount)["deposit"]
        state = contracts.deposit_sync(payer.config, payer.cid, deposit)
        deposits += int(chain.w3.eth.get_transaction_receipt(state.transaction)["gasUsed"])
        sig = sign_voucher(payer.account, payer.domain, payer.cid, amount)
        records.append(
            ChannelRecord(
                payer.cid, payer.config, charged=amount, signed_max=amount, signature=sig,
                balance=amount,
            )
        )  # fmt: skip
    claimer = ChannelContracts(chain, authorizer)
    claim = int(chain.w3.eth.get_transaction_receipt(claimer.claim(records))["gasUsed"])
    settled = claimer.settle(terms.receiver, world.token)
    settle = int(chain.w3.eth.get_transaction_receipt(settled)["gasUsed"])
    assert world.balance(terms.receiver) == channels * amount
    return {"deposits": deposits, "claim": claim, "settle": settle}


def exact_gas(world: LocalWorld, pay_to: str, n: int = 5) -> float:
    """Mean gas of a relayed transferWithAuthorization of PRICE (the `exact` settlement)."""
    used = []
    for _ in range(n):
        payer: LocalAccount = Account.create()
        world.mint(payer.address, PRICE)
        nonce = os.urandom(32)
        sig = sign_eip3009(
            payer, chain_id=world.chain.chain_id, token=world.token, to=pay_to, value=PRICE,
            nonce=nonce,
        )  # fmt: skip
        fn = world.usdc.functions.transferWithAuthorization(
            payer.address, pay_to, PRICE, 0, 2**40, nonce, sig[64], sig[:32], sig[32:64]
        )
        used.append(int(world.chain.transact(dev_account(3), fn)["gasUsed"]))
    return sum(used) / len(used)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--vouchers", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d, anvil_world(Path(d)) as world:
        terms = ChannelTerms(
            world.chain.chain_id, dev_account(4).address, dev_account(2).address, world.token
        )
        gas = channel_gas(world, terms, args.channels, args.vouchers)
        exact = exact_gas(world, terms.receiver)
    payments = args.channels * args.vouchers
    per_payment = (gas["deposits"] + gas["claim"] + gas["settle"]) / payments
    emit(
        name="channels.gas.per_payment",
        value=round(per_payment, 1),
        unit="gas",
        channels=args.channels,
        vouchers_per_channel=args.vouchers,
        deposit_gas_each=gas["deposits"] // args.channels,
        claim_gas=gas["claim"],
        settle_gas=gas["settle"],
        reference="exact: transferWithAuthorization per payment",
        reference_value=round(exact),
    )
    emit(name="channels.gas.vs_exact", value=round(exact / per_payment), unit="x less")


if __name__ == "__main__":
    main()
