"""The one error tree of agentbazaar.

    BazaarError
    ├── ConfigError              bad or missing configuration
    ├── InputError               bad user input (amount, address, token, wallet name, ...)
    │   ├── AmountError
    │   ├── AddressError
    │   └── UnknownTokenError
    ├── ChainError               anything that went wrong talking to a chain
    │   ├── ChainUnavailable     node not running / unreachable
    │   ├── WrongChain           chain id differs from the one expected
    │   ├── TransactionReverted  the transaction (or its simulation) reverted
    │   ├── TransactionTimeout   no receipt within the timeout
    │   └── InsufficientFunds    not enough native balance for value + gas
    ├── ContractError            compile / deploy / manifest problems
    ├── ServiceError             a local HTTP service could not start (port taken, app failed)
    ├── WalletError              keystores
    │   ├── UnknownWallet
    │   ├── WalletExists
    │   ├── BadPassphrase
    │   └── KeystoreTampered     address and key disagree, or the file changed since verified
    ├── PolicyViolation          a spend refused by the spending policy (nothing signed)
    │   └── ApprovalRequired     above the approval threshold, not approved
    ├── LedgerError              the local ledger refused an operation
    ├── IdentityError            agent identity, cards, registries, discovery
    ├── PaymentError             x402 / channels / facilitator
    ├── IntentError              plain-language intents that cannot be understood or executed
    └── AgentError               agent runtime, hiring, receipts

Every error carries a message that says what to do, and optional structured fields.
"""

from __future__ import annotations

from typing import Any


class BazaarError(Exception):
    """Root of every error agentbazaar raises on purpose."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = fields

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for key, value in self.fields.items():
            out[key] = value if isinstance(value, (str, int, bool, type(None))) else str(value)
        return out


class ConfigError(BazaarError):
    pass


class InputError(BazaarError):
    pass


class AmountError(InputError):
    pass


class AddressError(InputError):
    pass


class UnknownTokenError(InputError):
    pass


class ChainError(BazaarError):
    pass


class ChainUnavailable(ChainError):
    pass


class WrongChain(ChainError):
    pass


class TransactionReverted(ChainError):
    pass


class TransactionTimeout(ChainError):
    pass


class InsufficientFunds(ChainError):
    pass


class ContractError(BazaarError):
    pass


class ServiceError(BazaarError):
    pass


class WalletError(BazaarError):
    pass


class UnknownWallet(WalletError):
    pass


class WalletExists(WalletError):
    pass


class BadPassphrase(WalletError):
    pass


class KeystoreTampered(WalletError):
    """A keystore file whose address does not match its key, or that changed on disk since it
    was written or last verified: the name is not resolved, nothing is signed."""


class PolicyViolation(BazaarError):
    pass


class ApprovalRequired(PolicyViolation):
    pass


class LedgerError(BazaarError):
    pass


class IdentityError(BazaarError):
    pass


class PaymentError(BazaarError):
    pass


class IntentError(BazaarError):
    pass


class AgentError(BazaarError):
    pass
