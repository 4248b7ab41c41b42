"""Well-known development accounts of local chains (anvil's public test mnemonic).

These keys are public knowledge and hold value only on local chains: the deployer and minter of
the local suite, and the faucet. They are derived at run time and refused on non-dev chains.
"""

from __future__ import annotations

import functools

from eth_account import Account
from eth_account.signers.local import LocalAccount

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


@functools.lru_cache(maxsize=16)
def dev_account(index: int = 0) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(
        ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account
