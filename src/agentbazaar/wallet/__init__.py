"""Agent wallets: encrypted keys, an enforced spending policy, and a durable spend ledger.

Every spend of every layer (transfers, EIP-3009 authorizations, x402 payments, channel deposits and
vouchers, swaps) passes through ONE place, ``Wallet.spend``: the policy is checked and the spend
is written to the ledger (with its idempotency key) before anything is signed::

    from agentbazaar.wallet import open_wallet

    wallet = open_wallet(cfg, "alice")          # passphrase: BAZAAR_PASSPHRASE or a prompt
    with wallet.spend(kind="x402", token=usdc, amount=1_000, counterparty=pay_to,
                      idempotency_key=key, approve=False, memo={"url": url}) as spend:
        # PolicyViolation / ApprovalRequired were raised before this point; nothing was signed
        if spend.replayed:                      # this key was signed before: never sign twice
            signature = spend.payload["signature"]
        else:
            signature = spend.sign_typed_data(domain, types, message)   # recorded, then returned
        ...                                     # send it; then, once it is on chain:
        spend.settle(tx_hash=tx_hash)           # an exception before signing releases the spend

    result = wallet.send(chain, to, 5_000_000, usdc, idempotency_key="invoice-7")  # ERC-20/native
    wallet.balance(chain, suite.tokens)         # [Balance(token, units), ...]
    reconcile(wallet.ledger, chain, rebroadcast=True)   # ledger vs chain, finish crashed spends

- ``amount`` is always an ``int`` of base units (floats are refused); ``token`` is a ``Token``, a
  token address, or ``None``/``"native"`` for the chain's currency.
- ``approve`` is ``True`` (the CLI's ``--approve``) or a callback ``(SpendRequest) -> bool``; a
  wallet-wide ``approver`` can be given to ``open_wallet``.
- Spend statuses: ``reserved`` -> ``signed`` -> ``settled``, or ``failed`` (released: no longer
  counts against the rolling budget). An exception inside the block before signing releases the
  spend; after signing the entry stays ``signed`` until settled or reconciled.
- ``Spend.sign_typed_data`` (EIP-712), ``Spend.sign_transaction`` (a full tx),
  ``Spend.record_transaction`` (``Chain.send(on_signed=...)``), ``Spend.sign_with`` (any other
  signer, e.g. an SDK's own encoder, given the account inside the spend).
- ``PolicySigner(wallet)``: the x402 SDK's ``ClientEvmSigner`` over a wallet, so the SDK's
  ``exact`` scheme signs EIP-3009 / Permit2 authorizations only through ``Wallet.spend``;
  ``wallet.settle(key, tx_hash=...)`` when the settlement is known.

Escrow invariant (payment channels). For each (wallet, token), over the ledger rows whose status
is ``reserved``, ``signed`` or ``settled`` (plus ``refund`` rows, always ``settled``)::

    budget_used(now) = sum(amount of non-escrow spends created in (now - window, now])
                       # transfer, x402, authorization, swap, and voucher: a voucher's amount is
                       # its charge, the increase of the channel's cumulative amount
    escrowed         = sum(deposits) - sum(refunds and withdrawals) - sum(voucher charges)

- ``deposit`` (``Wallet.spend(kind="deposit")``) is a transfer of custody, not a payment: it is
  checked against the deny/allow lists (for the channel's receiver), the unlisted-token rule and
  ``max_escrow`` (``escrowed + amount <= max_escrow`` when the policy sets one), never against
  ``max_per_payment``, ``approve_above`` or the rolling budget; it never counts in budget_used.
- ``voucher``: its amount (the charge) meets ``max_per_payment``, ``approve_above`` and the
  rolling budget like any payment, counts in budget_used, and leaves the escrow.
- ``refund`` (``Wallet.record_refund``): the amount that came back; no policy rule; refused when
  more than ``escrowed``. So a buyer with a 10 USDC budget who deposits 10 USDC can still be
  charged 10 USDC through the channel, and a refund of the unspent part frees the escrow cap.

The rolling budget and the escrow cap are each checked in the same ``BEGIN IMMEDIATE``
transaction as the reservation, so concurrent spends cannot together exceed either.
``wallet.escrowed()`` / ``ledger.escrowed(name)`` read escrowed per token key.

Files: ``keystores/NAME.json`` (keystore v3, scrypt) and ``keystores/.addressbook.json`` (each
name's address, sealed under the passphrase: see ``keystore``), ``policies/NAME.toml`` (a new
wallet gets ``policy.DEFAULT_LIMITS``), ``ledger.sqlite``.
"""

from agentbazaar.wallet.keystore import KeyStore, passphrase_from_env_or_prompt, validate_name
from agentbazaar.wallet.ledger import Ledger, SpendRecord
from agentbazaar.wallet.policy import (
    NATIVE_KEY,
    PolicyStore,
    SpendingPolicy,
    SpendRequest,
    TokenLimits,
)
from agentbazaar.wallet.reconcile import Finding, reconcile
from agentbazaar.wallet.signers import PolicySigner
from agentbazaar.wallet.wallet import (
    Balance,
    SendResult,
    Spend,
    Wallet,
    balances,
    open_wallet,
    write_default_policy,
)

__all__ = [
    "NATIVE_KEY",
    "Balance",
    "Finding",
    "KeyStore",
    "Ledger",
    "PolicySigner",
    "PolicyStore",
    "SendResult",
    "Spend",
    "SpendRecord",
    "SpendRequest",
    "SpendingPolicy",
    "TokenLimits",
    "Wallet",
    "balances",
    "open_wallet",
    "passphrase_from_env_or_prompt",
    "reconcile",
    "validate_name",
    "write_default_policy",
]
