"""The facilitator's EVM schemes beyond EOA ``exact``: contract-wallet payers, Permit2, ``upto``.

``extend_facilitator(fac, chain, account, ...)`` takes a facilitator whose ``exact`` handler
settles EIP-3009 for EOAs (``exact_facilitator``, or the batching one) and adds, on the same
gas account:

- ERC-1271 / ERC-6492 payers for ``exact`` (``ContractWalletExactHandler``), with the ERC-6492
  factories in ``allowed_factories`` (none: counterfactual wallets are refused);
- where Permit2 and the x402 proxies are deployed: ``exact`` paid through Permit2 and the
  ``upto`` scheme (``permit2_schemes``), advertised in ``/supported`` with the
  ``facilitatorAddress`` upto clients bind their permits to.

Their settlements are recorded in a ``SettlementStore`` of their own at ``store_path`` (keys in
Permit2's nonce space, and the contract wallets' EIP-3009 nonces), separate from the EOA exact
store so each store's start-up recovery reads only rows it knows how to resolve.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eth_account.signers.local import LocalAccount
from x402.mechanisms.evm import constants as c

from agentbazaar.chain import Chain
from agentbazaar.payments import permit2
from agentbazaar.payments.exact_router import ContractWalletExactHandler, ExactRouter
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.payments.permit2_schemes import ExactPermit2Handler, UptoEvmHandler
from agentbazaar.payments.settling import OnchainSettler
from agentbazaar.payments.smart_accounts import SmartAccounts
from agentbazaar.payments.store import SettlementStore
from agentbazaar.payments.throttle import PayerThrottle


def extension_store_path(exact_store: Path | None) -> Path | None:
    """Where the settlements of the added schemes go, beside the exact store."""
    return None if exact_store is None else exact_store.with_name(exact_store.stem + ".permit2.db")


def extend_facilitator(
    fac: Facilitator,
    chain: Chain,
    account: LocalAccount,
    *,
    store_path: Path | None = None,
    assets: Iterable[str] | None = None,
    allowed_factories: Iterable[str] = (),
    workers: int = 16,
) -> Facilitator:
    """Add contract-wallet payers, Permit2 ``exact`` and ``upto`` to ``fac`` (see the module)."""
    accepted = frozenset(a.lower() for a in assets) if assets is not None else None
    store = SettlementStore(store_path)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="x402-permit2")
    accounts = SmartAccounts(chain, allowed_factories)

    eoa = fac.handler_for(c.SCHEME_EXACT, chain.network)
    # one throttle per facilitator: a payer refused on one scheme is refused on all
    shared = getattr(getattr(eoa, "eoa", eoa), "throttle", None)
    throttle = shared if isinstance(shared, PayerThrottle) else PayerThrottle()

    def settler() -> OnchainSettler:
        return OnchainSettler(chain, account, store, executor, throttle=throttle)

    wallets = ContractWalletExactHandler(chain, account, settler(), accounts, assets=accepted)
    has_permit2 = permit2.deployed(chain)
    exact_permit2 = (
        ExactPermit2Handler(chain, account, settler(), accounts, assets=accepted)
        if has_permit2
        else None
    )
    if eoa is not None:
        fac.register(ExactRouter(eoa, wallets, exact_permit2))
    if has_permit2:
        fac.register(UptoEvmHandler(chain, account, settler(), accounts, assets=accepted))
    return fac
