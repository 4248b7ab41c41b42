"""Registry transactions that agents send on every sale, without re-estimating gas each time.

On the embedded chain, ``eth_estimateGas`` is py-evm's binary search: about a dozen executions
of the call (~0.8 s for ``giveFeedback``). Agents send the same few calls over and over
(``giveFeedback``, ``validationRequest``, ``validationResponse``), so the gas of each function is
learnt from its first receipt; later sends simulate once with ``eth_call`` (a revert raises
``TransactionReverted`` and nothing is signed) and use 1.5 x the largest gas seen + 30,000. If a
send with learnt gas still fails on chain, it is retried once with a fresh estimate.
"""

from __future__ import annotations

import threading

from eth_account.signers.local import LocalAccount
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from agentbazaar.chain import Chain
from agentbazaar.errors import TransactionReverted


class GasBook:
    def __init__(self) -> None:
        self._gas: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def transact(self, chain: Chain, account: LocalAccount, fn: ContractFunction) -> TxReceipt:
        key = (str(fn.address), str(fn.fn_name))
        with self._lock:
            gas = self._gas.get(key)
        if gas is None:
            receipt = chain.transact(account, fn)
        else:
            chain.call(fn, sender=account.address)
            try:
                receipt = chain.transact(account, fn, gas=gas)
            except TransactionReverted:
                receipt = chain.transact(account, fn)
        learnt = int(receipt["gasUsed"]) * 3 // 2 + 30_000
        with self._lock:
            self._gas[key] = max(self._gas.get(key, 0), learnt)
        return receipt
