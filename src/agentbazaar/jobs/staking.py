"""``Staking``: bond, unbond and withdraw stake in the StakeRegistry, and read who is listed.

Bonding is an EIP-3009 authorization signed inside ``Wallet.spend`` (kind ``"stake"``: custody,
checked against the policy's lists and ``max_escrow``, not a payment); the stake that comes back
by ``withdraw`` is recorded with ``Wallet.record_refund``. Unbonding waits the registry's delay
and is refused while the account is in an open dispute (``StakeLocked``).
"""

from __future__ import annotations

import os
from typing import Any

from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.logs import DISCARD

from agentbazaar.chain import Chain, to_address
from agentbazaar.jobs import model
from agentbazaar.jobs._onchain import Contracts, TxResult, checksum, contract_at
from agentbazaar.jobs.errors import JobInputError
from agentbazaar.wallet import Wallet
from agentbazaar.wallet.policy import token_key

STAKE_KEY = "StakeRegistry"  # the suite's manifest key


class Staking:
    """Client of one StakeRegistry."""

    def __init__(self, chain: Chain, registry_address: str) -> None:
        self.chain = chain
        self.registry = contract_at(chain, "StakeRegistry", registry_address)
        f = self.registry.functions
        self.unbond_delay = int(chain.call(f.unbondDelay()))
        self.min_provider = int(chain.call(f.minProviderStake()))
        self.min_validator = int(chain.call(f.minValidatorStake()))
        self._c = Contracts(chain, checksum(chain.call(f.token())))

    @property
    def address(self) -> str:
        return str(self.registry.address)

    @property
    def contracts(self) -> Contracts:
        return self._c

    # ---- reads -------------------------------------------------------------------------------
    def info(self, account: str) -> model.StakeInfo:
        who = to_address(account)
        f = self.registry.functions
        bonded, unbonding, unlock_at, roles, locks = self.chain.call(f.stakeOf(who))
        return model.StakeInfo(
            account=who,
            bonded=int(bonded),
            unbonding=int(unbonding),
            unlock_at=int(unlock_at),
            roles=int(roles),
            locks=int(locks),
            provider=bool(self.chain.call(f.isProvider(who))),
            validator=bool(self.chain.call(f.isValidator(who))),
        )

    def validators(self) -> list[str]:
        f = self.registry.functions
        n = int(self.chain.call(f.validatorCount()))
        return [checksum(self.chain.call(f.validatorAt(i))) for i in range(n)]

    def terms(self) -> dict[str, Any]:
        return {
            "registry": self.address,
            "token": self._c.token.symbol,
            "unbond_delay": self.unbond_delay,
            "min_provider": str(self.min_provider),
            "min_validator": str(self.min_validator),
        }

    # ---- writes ------------------------------------------------------------------------------
    def bond(
        self,
        wallet: Wallet,
        amount: int,
        roles: int,
        *,
        approve: bool = False,
        idempotency_key: str | None = None,
    ) -> TxResult:
        """Bond ``amount`` for ``roles`` (1 provider, 2 validator, 3 both). With an idempotency
        key a retry reuses the same authorization and never bonds twice."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise JobInputError(f"a stake is a positive integer of base units, not {amount!r}")
        if roles not in (1, 2, 3):
            raise JobInputError("roles are 1 (provider), 2 (validator) or 3 (both)")
        salt = keccak(text=f"stake:{idempotency_key}") if idempotency_key else os.urandom(32)
        action = "bond stake"
        unsigned = self.registry.functions.bondWithAuthorization(
            wallet.address, amount, roles, 0, 0, salt, b""
        )
        self._c.precheck(wallet, unsigned, action)
        auth = self._c.authorize(
            wallet,
            kind="stake",
            to=self.address,
            amount=amount,
            nonce=model.bond_nonce(roles, salt),
            counterparty=self.address,
            approve=approve,
            memo={"stake": self.address, "roles": roles},
        )
        fn = self.registry.functions.bondWithAuthorization(
            wallet.address, amount, roles, auth.valid_after, auth.valid_before, salt, auth.signature
        )
        receipt = self._c.send(wallet, fn, action)
        self._c.settle(wallet, auth, receipt)
        return TxResult.of(receipt)

    def request_unbond(self, wallet: Wallet, amount: int) -> TxResult:
        fn = self.registry.functions.requestUnbond(amount)
        return TxResult.of(self._c.send(wallet, fn, "unbond stake"))

    def withdraw(self, wallet: Wallet) -> tuple[int, TxResult]:
        """Pay out the unbonded stake; recorded in the wallet's ledger as escrow come back."""
        receipt = self._c.send(wallet, self.registry.functions.withdraw(), "withdraw stake")
        events = self.registry.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
        amount = int(events[0]["args"]["amount"]) if events else 0
        tx = HexBytes(receipt["transactionHash"]).to_0x_hex()
        # what this ledger recorded as bonded comes back (stake bonded elsewhere is not in it)
        back = min(amount, wallet.escrowed().get(token_key(self._c.token.address), 0))
        if back:
            wallet.record_refund(
                token=self._c.token,
                amount=back,
                counterparty=self.address,
                idempotency_key=f"unstake:{tx}",
                tx_hash=tx,
                memo={"stake": self.address},
                chain_id=self.chain.chain_id,
            )
        return amount, TxResult.of(receipt)
