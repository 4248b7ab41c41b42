"""The one error tree of agentbazaar.

    BazaarError
    ├── ConfigError              bad or missing configuration
    ├── InputError               bad user input (amount, address, token, wallet name, ...)
    │   ├── AmountError
    │   ├── AddressError
    │   ├── UnknownTokenError
    │   ├── NeedsClarification   a sentence lacks a value or is ambiguous: names what to ask
    │   ├── NoTemplate           no contract template covers a sentence (names the closest)
    │   ├── BadParameters        contract parameters that contradict each other or the chain
    │   └── SentenceRefused      a sentence that steers the reader or changes rules (unread)
    ├── ChainError               anything that went wrong talking to a chain
    │   ├── ChainUnavailable     node not running / unreachable
    │   ├── WrongChain           chain id differs from the one expected
    │   ├── TransactionReverted  the transaction (or its simulation) reverted
    │   ├── TransactionTimeout   no receipt within the timeout
    │   └── InsufficientFunds    not enough native balance for value + gas
    ├── ContractError            compile / deploy / manifest problems
    │   ├── CheckFailed          a contract failed a check before deployment (nothing signed)
    │   └── NotVerified          no record to verify a deployed contract against
    ├── ServiceError             a local HTTP service could not start (port taken, app failed)
    ├── WalletError              keystores
    │   ├── UnknownWallet
    │   ├── WalletExists
    │   ├── BadPassphrase
    │   ├── KeystoreTampered     address and key disagree, the file or its address book entry
    │   │                        changed since verified (the name is not resolved)
    │   └── KeystoreDamaged      ciphertext, MAC or KDF parameters corrupted (not a passphrase)
    ├── PolicyViolation          a spend refused by the spending policy (nothing signed)
    │   └── ApprovalRequired     above the approval threshold, not approved
    ├── LedgerError              the local ledger refused an operation
    ├── IdentityError            agent identity, cards, registries, discovery
    ├── PaymentError             x402 / channels / facilitator
    ├── IntentError              plain-language intents that cannot be understood or executed
    ├── DataError                datasets: content addressing, licences, contributions, lineage
    ├── ModelError               the model layer: weights and runtimes (``agentbazaar.models``)
    │   ├── ModelUnavailable     weights or runtime not installed (the message names the fix)
    │   └── WeightsMismatch      joined weights whose sha256 is not the pinned one (refused)
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


class NeedsClarification(InputError):
    """A request that lacks a value or is ambiguous: nothing is guessed, a question is asked.

    One class for every package that reads sentences (intents, contract authoring):
    ``missing`` names the values to ask for, ``question`` is the question to put to the user
    (the message when not given), ``partial`` what was understood so far (JSON-ready), so a
    caller can ask, read the answer and carry on (``intents.answers.answer``).
    """

    def __init__(
        self,
        message: str,
        *,
        missing: list[str],
        partial: dict[str, object] | None = None,
        question: str | None = None,
        **fields: object,
    ) -> None:
        super().__init__(message, missing=", ".join(missing), **fields)
        self.missing = list(missing)
        self.partial = dict(partial or {})
        self.question = question or message

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = dict(super().to_dict())
        out.update(missing=self.missing, partial=self.partial, question=self.question)
        return out


class NoTemplate(InputError):
    """No template covers the request; ``closest`` names the nearest templates."""

    def __init__(self, message: str, *, closest: list[str], **fields: object) -> None:
        super().__init__(message, closest=", ".join(closest), **fields)
        self.closest = list(closest)


class BadParameters(InputError):
    pass


class SentenceRefused(InputError):
    """A contract sentence holding instructions to its reader (a prompt injection) or to change
    recipients, amounts or rules: refused before any parser or model reads it."""


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


class CheckFailed(ContractError):
    pass


class NotVerified(ContractError):
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


class KeystoreDamaged(WalletError):
    """A keystore file whose ciphertext, MAC or KDF parameters are corrupted (it differs from
    the file last known good, or it is not a valid keystore v3): restore it from a backup."""


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


class DataError(BazaarError):
    pass


class ModelError(BazaarError):
    pass


class ModelUnavailable(ModelError):
    """A model's weights or runtime are not installed; the message names the command that
    installs them."""


class WeightsMismatch(ModelError):
    """Weights whose sha256 (or size) is not the pinned one: refused, never loaded."""
