"""The one error tree of agentbazaar, and the HTTP status each family answers with.

    BazaarError                  400  (the default of every family that does not say)
    ├── ConfigError              503  bad or missing configuration
    │   └── DatabaseTooNew       503  a store's file written by a newer agentbazaar (refused)
    ├── InputError               400  bad user input (amount, address, token, wallet name, ...)
    │   ├── AmountError
    │   ├── DurationError
    │   ├── AddressError
    │   ├── UnknownTokenError
    │   ├── NotFound             404  an agent, transaction, receipt, page a service does not know
    │   ├── NeedsClarification   a sentence lacks a value or is ambiguous: names what to ask
    │   ├── NoTemplate           no contract template covers a sentence (names the closest)
    │   ├── BadParameters        contract parameters that contradict each other or the chain
    │   └── SentenceRefused      a sentence that steers the reader or changes rules (unread)
    ├── ChainError               503  anything that went wrong talking to a chain
    │   ├── ChainUnavailable     503  node not running / unreachable
    │   ├── WrongChain           503  chain id differs from the one expected
    │   ├── TransactionReverted  409  the transaction (or its simulation) reverted
    │   ├── TransactionTimeout   503  no receipt within the timeout
    │   └── InsufficientFunds    503  not enough native balance for value + gas
    ├── ContractError            422  compile / deploy / manifest problems
    │   ├── CheckFailed          422  a contract failed a check before deployment (nothing signed)
    │   └── NotVerified          404  no record to verify a deployed contract against
    ├── ServiceError             503  a local HTTP service could not start (port taken, app failed)
    ├── WalletError              400  keystores
    │   ├── UnknownWallet        404
    │   ├── WalletExists         409
    │   ├── BadPassphrase        403
    │   ├── KeystoreTampered     503  address and key disagree, the file or its address book
    │   │                             entry changed since verified (the name is not resolved)
    │   └── KeystoreDamaged      503  ciphertext, MAC or KDF parameters corrupted
    ├── PolicyViolation          403  a spend refused by the spending policy (nothing signed)
    │   └── ApprovalRequired     403  above the approval threshold, not approved
    ├── LedgerError              409  the local ledger refused an operation (already signed, busy)
    ├── IdentityError            400  agent identity, cards, registries, discovery
    ├── PaymentError             402  x402 / channels / facilitator / jobs
    ├── IntentError              422  plain-language intents that cannot be understood or executed
    ├── DataError                400  datasets: content addressing, licences, contributions, lineage
    ├── ModelError               503  the model layer: weights and runtimes (``agentbazaar.models``)
    │   ├── ModelUnavailable     503  weights or runtime not installed (the message names the fix)
    │   └── WeightsMismatch      503  joined weights whose sha256 is not the pinned one (refused)
    └── AgentError               400  agent runtime, hiring, receipts

Each package's own classes live in its ``errors`` module (``agentbazaar.<package>.errors``),
under the family above that it belongs to, and override ``http_status`` where they mean
something else (a channel store failure is 503, a job the contract refuses 409, ...).
``http_status`` is what every HTTP service answers (``agentbazaar.web.install_error_handler``:
``to_dict()`` as the JSON body); the CLI prints ``error: <message>`` and exits 1 whatever it is.

Every error carries a message that says what to do, and optional structured fields.
"""

from __future__ import annotations

from typing import Any, ClassVar


class BazaarError(Exception):
    """Root of every error agentbazaar raises on purpose; ``http_status`` is the status an
    HTTP service answers it with (a 4xx for what the caller can fix, 503 for what is down)."""

    http_status: ClassVar[int] = 400

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = fields

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for key, value in self.fields.items():
            out[key] = _json_data(value)
        return out


def _json_data(value: Any) -> Any:
    """A field as JSON data: scalars as they are, lists and dicts item by item, else ``str``."""
    if isinstance(value, (str, int, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_data(v) for k, v in value.items()}
    return str(value)


class ConfigError(BazaarError):
    http_status = 503


class DatabaseTooNew(ConfigError):
    """A store's database has a schema version above what this code knows (``path``,
    ``version``, ``known``): opened by an older agentbazaar, it is refused, not rewritten."""


class InputError(BazaarError):
    pass


class AmountError(InputError):
    pass


class DurationError(InputError):
    """A length of time that cannot be read (``units.parse_duration``)."""


class AddressError(InputError):
    pass


class NotFound(InputError):
    """Something a service was asked for and does not know (an agent, a transaction, a
    receipt): one class for every service, answered with 404."""

    http_status = 404


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
    http_status = 503


class ChainUnavailable(ChainError):
    pass


class WrongChain(ChainError):
    pass


class TransactionReverted(ChainError):
    http_status = 409


class TransactionTimeout(ChainError):
    pass


class InsufficientFunds(ChainError):
    pass


class ContractError(BazaarError):
    http_status = 422


class CheckFailed(ContractError):
    pass


class NotVerified(ContractError):
    http_status = 404


class ServiceError(BazaarError):
    http_status = 503


class WalletError(BazaarError):
    pass


class UnknownWallet(WalletError):
    http_status = 404


class WalletExists(WalletError):
    http_status = 409


class BadPassphrase(WalletError):
    http_status = 403


class KeystoreTampered(WalletError):
    """A keystore file whose address does not match its key, or that changed on disk since it
    was written or last verified: the name is not resolved, nothing is signed."""

    http_status = 503


class KeystoreDamaged(WalletError):
    """A keystore file whose ciphertext, MAC or KDF parameters are corrupted (it differs from
    the file last known good, or it is not a valid keystore v3): restore it from a backup."""

    http_status = 503


class PolicyViolation(BazaarError):
    http_status = 403


class ApprovalRequired(PolicyViolation):
    pass


class LedgerError(BazaarError):
    http_status = 409


class IdentityError(BazaarError):
    pass


class PaymentError(BazaarError):
    http_status = 402


class IntentError(BazaarError):
    http_status = 422


class AgentError(BazaarError):
    pass


class DataError(BazaarError):
    pass


class ModelError(BazaarError):
    http_status = 503


class ModelUnavailable(ModelError):
    """A model's weights or runtime are not installed; the message names the command that
    installs them."""


class WeightsMismatch(ModelError):
    """Weights whose sha256 (or size) is not the pinned one: refused, never loaded."""
