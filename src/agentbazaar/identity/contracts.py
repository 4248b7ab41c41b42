"""Typed Python access to the three ERC-8004 registries (identity, reputation, validation).

Each wrapper holds a ``Chain`` and the web3 contract; writes take the sending ``LocalAccount``
and return after the receipt (a revert raises ``TransactionReverted`` with the contract's
reason, and nothing is sent when the simulation reverts). Inputs are checked against the
contracts' bounds first, so bad input raises ``RegistryInputError`` before anything is signed.

The ``setAgentWallet`` proof is the EIP-712 typed message
``AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)`` in the
domain ``ERC8004IdentityRegistry`` / ``1`` of the registry, signed by the new wallet:
``agent_wallet_typed_data`` builds it (for any signer), ``sign_agent_wallet`` signs it with a
local key.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from agentbazaar.chain import Chain
from agentbazaar.errors import AddressError, IdentityError, InputError, TransactionReverted
from agentbazaar.identity.errors import RegistryInputError
from agentbazaar.primitives import parse_address, parse_bytes32

if TYPE_CHECKING:
    from agentbazaar.suite import Suite

# Bounds of the Vyper contracts (see the docstrings of the .vy files).
AGENT_URI_MAX = 16384
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 1024
METADATA_ENTRIES_MAX = 16
TAG_MAX = 64
ENDPOINT_MAX = 1024
URI_MAX = 8192
QUERY_MAX = 1024
MAX_VALUE_DECIMALS = 18
MAX_ABS_VALUE = 10**38
MAX_DEADLINE_DELAY = 300
DEFAULT_DEADLINE_DELAY = 120
AGENT_WALLET_KEY = "agentWallet"
EIP712_NAME = "ERC8004IdentityRegistry"
EIP712_VERSION = "1"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

IDENTITY_KEY = "IdentityRegistry"
REPUTATION_KEY = "ReputationRegistry"
VALIDATION_KEY = "ValidationRegistry"


@dataclass(frozen=True)
class MetadataEntry:
    key: str
    value: bytes


@dataclass(frozen=True)
class Feedback:
    client: ChecksumAddress
    index: int
    value: int
    value_decimals: int
    tag1: str
    tag2: str
    is_revoked: bool


@dataclass(frozen=True)
class ReputationSummary:
    count: int
    summary_value: int
    summary_value_decimals: int


@dataclass(frozen=True)
class ValidationSummary:
    count: int
    average_response: int


@dataclass(frozen=True)
class ValidationStatus:
    validator: ChecksumAddress
    agent_id: int
    response: int
    response_hash: bytes
    tag: str
    last_update: int


# ---- input checks (pure) ------------------------------------------------------------------
def _check_text(what: str, text: str, limit: int, *, nonempty: bool = False) -> str:
    if not isinstance(text, str):
        raise RegistryInputError(f"{what} must be text, not {type(text).__name__}")
    size = len(text.encode("utf-8"))
    if size > limit:
        raise RegistryInputError(f"{what} is {size} bytes; the registry accepts at most {limit}")
    if nonempty and size == 0:
        raise RegistryInputError(f"{what} must not be empty")
    return text


def _check_bytes(what: str, data: bytes, limit: int) -> bytes:
    if not isinstance(data, (bytes, bytearray)):
        raise RegistryInputError(f"{what} must be bytes, not {type(data).__name__}")
    if len(data) > limit:
        raise RegistryInputError(
            f"{what} is {len(data)} bytes; the registry accepts at most {limit}"
        )
    return bytes(data)


def _check_key(key: str) -> str:
    _check_text("metadata key", key, METADATA_KEY_MAX, nonempty=True)
    if key == AGENT_WALLET_KEY:
        raise RegistryInputError(
            "metadata key 'agentWallet' is reserved: use set_agent_wallet with the wallet's signature"
        )
    return key


def _check_uint(what: str, value: int, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise RegistryInputError(f"{what} must be an integer from 0 to 2**{bits}-1, got {value!r}")
    return value


def _check_hash(what: str, value: bytes | str) -> bytes:
    try:
        return parse_bytes32(value)
    except InputError as exc:
        raise RegistryInputError(f"{what} must be 32 bytes (0x + 64 hex digits): {exc}") from exc


def _address(what: str, value: str) -> ChecksumAddress:
    try:
        return parse_address(value)
    except AddressError as exc:
        raise RegistryInputError(f"{what}: {exc}") from exc


def check_feedback_value(value: int, value_decimals: int) -> None:
    """The rules ``giveFeedback`` enforces on a value: 0..18 decimals, |value| <= 1e38."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegistryInputError(f"feedback value must be an integer, got {value!r}")
    _check_uint("valueDecimals", value_decimals, 8)
    if value_decimals > MAX_VALUE_DECIMALS:
        raise RegistryInputError(f"valueDecimals must be 0..18, got {value_decimals}")
    if abs(value) > MAX_ABS_VALUE:
        raise RegistryInputError(f"feedback value {value} is beyond +-1e38")


def _div_toward_zero(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def summarize_feedback(entries: Iterable[tuple[int, int]]) -> ReputationSummary:
    """``getSummary``'s arithmetic over (value, valueDecimals) pairs, for off-chain use.

    Each value is scaled to 18 decimals, the sum is divided by the count and the average is
    returned at the most frequent ``valueDecimals`` (ties: the smaller), truncating toward zero;
    if it does not fit an int128 there, at the largest smaller number of decimals where it does.
    """
    pairs = list(entries)
    if not pairs:
        return ReputationSummary(0, 0, 0)
    for value, decimals in pairs:
        check_feedback_value(value, decimals)
    total = sum(value * 10 ** (MAX_VALUE_DECIMALS - decimals) for value, decimals in pairs)
    counts = Counter(decimals for _, decimals in pairs)
    top = max(counts.values())
    mode = min(d for d, n in counts.items() if n == top)
    average = _div_toward_zero(total, len(pairs))
    for decimals in range(mode, -1, -1):  # fewer decimals when the average would not fit int128
        scaled = _div_toward_zero(average, 10 ** (MAX_VALUE_DECIMALS - decimals))
        if -(2**127) <= scaled < 2**127:
            return ReputationSummary(len(pairs), scaled, decimals)
    raise IdentityError("reputation summary out of range")  # unreachable: every value fits


# ---- EIP-712 AgentWalletSet -------------------------------------------------------------
def agent_wallet_typed_data(
    *,
    chain_id: int,
    registry: str,
    agent_id: int,
    new_wallet: str,
    owner: str,
    deadline: int,
) -> dict[str, Any]:
    """The full EIP-712 message the new wallet signs to be set as the agent's wallet."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "AgentWalletSet": [
                {"name": "agentId", "type": "uint256"},
                {"name": "newWallet", "type": "address"},
                {"name": "owner", "type": "address"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "AgentWalletSet",
        "domain": {
            "name": EIP712_NAME,
            "version": EIP712_VERSION,
            "chainId": chain_id,
            "verifyingContract": _address("registry", registry),
        },
        "message": {
            "agentId": _check_uint("agentId", agent_id, 256),
            "newWallet": _address("new wallet", new_wallet),
            "owner": _address("owner", owner),
            "deadline": _check_uint("deadline", deadline, 256),
        },
    }


def sign_agent_wallet(
    wallet: LocalAccount,
    *,
    chain_id: int,
    registry: str,
    agent_id: int,
    owner: str,
    deadline: int,
) -> bytes:
    """65-byte signature by ``wallet`` that it accepts to be ``agent_id``'s wallet."""
    data = agent_wallet_typed_data(
        chain_id=chain_id,
        registry=registry,
        agent_id=agent_id,
        new_wallet=wallet.address,
        owner=owner,
        deadline=deadline,
    )
    return bytes(wallet.sign_message(encode_typed_data(full_message=data)).signature)


class _Registry:
    def __init__(self, chain: Chain, contract: Contract) -> None:
        self.chain = chain
        self.contract = contract

    @property
    def address(self) -> ChecksumAddress:
        return self.contract.address

    def _call(self, fn: str, *args: Any) -> Any:
        return self.chain.call(getattr(self.contract.functions, fn)(*args))

    def _send(self, account: LocalAccount, fn: str, *args: Any) -> TxReceipt:
        return self.chain.transact(account, getattr(self.contract.functions, fn)(*args))


class IdentityRegistry(_Registry):
    """ERC-8004 identity registry: agents are ERC-721 tokens with a URI, metadata and a wallet."""

    @classmethod
    def from_suite(cls, suite: Suite) -> IdentityRegistry:
        return cls(suite.chain, suite.contract(IDENTITY_KEY))

    def register(
        self,
        account: LocalAccount,
        agent_uri: str | None = None,
        metadata: Sequence[MetadataEntry] = (),
    ) -> int:
        """Mint a new agent to ``account``; returns its agentId."""
        if metadata:
            if len(metadata) > METADATA_ENTRIES_MAX:
                raise RegistryInputError(
                    f"{len(metadata)} metadata entries; register accepts at most "
                    f"{METADATA_ENTRIES_MAX}"
                )
            entries = [
                (
                    _check_key(m.key),
                    _check_bytes(f"metadata {m.key!r}", m.value, METADATA_VALUE_MAX),
                )
                for m in metadata
            ]
            uri = _check_text("agentURI", agent_uri or "", AGENT_URI_MAX)
            fn = self.contract.get_function_by_signature("register(string,(string,bytes)[])")
            call = fn(uri, entries)
        elif agent_uri is not None:
            uri = _check_text("agentURI", agent_uri, AGENT_URI_MAX)
            call = self.contract.get_function_by_signature("register(string)")(uri)
        else:
            call = self.contract.get_function_by_signature("register()")()
        receipt = self.chain.transact(account, call)
        events = self.contract.events.Registered().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise IdentityError("register succeeded but emitted no Registered event")
        return int(events[0]["args"]["agentId"])

    def set_agent_uri(self, account: LocalAccount, agent_id: int, uri: str) -> TxReceipt:
        _check_text("agentURI", uri, AGENT_URI_MAX)
        return self._send(account, "setAgentURI", _check_uint("agentId", agent_id, 256), uri)

    def agent_uri(self, agent_id: int) -> str:
        return str(self._call("tokenURI", _check_uint("agentId", agent_id, 256)))

    def owner_of(self, agent_id: int) -> ChecksumAddress:
        return parse_address(self._call("ownerOf", _check_uint("agentId", agent_id, 256)))

    def exists(self, agent_id: int) -> bool:
        try:
            self.owner_of(agent_id)
        except TransactionReverted:
            return False
        return True

    def total_supply(self) -> int:
        return int(self._call("totalSupply"))

    def is_authorized(self, spender: str, agent_id: int) -> bool:
        """True if ``spender`` is the agent's owner or one of its operators."""
        return bool(self._call("isAuthorizedOrOwner", _address("spender", spender), agent_id))

    def get_metadata(self, agent_id: int, key: str) -> bytes:
        _check_text("metadata key", key, METADATA_KEY_MAX)
        return bytes(self._call("getMetadata", _check_uint("agentId", agent_id, 256), key))

    def set_metadata(
        self, account: LocalAccount, agent_id: int, key: str, value: bytes
    ) -> TxReceipt:
        _check_key(key)
        data = _check_bytes(f"metadata {key!r}", value, METADATA_VALUE_MAX)
        return self._send(account, "setMetadata", _check_uint("agentId", agent_id, 256), key, data)

    def get_agent_wallet(self, agent_id: int) -> ChecksumAddress | None:
        """The agent's verified wallet, or None when it has none (unset or transferred)."""
        wallet = parse_address(self._call("getAgentWallet", _check_uint("agentId", agent_id, 256)))
        return None if wallet == ZERO_ADDRESS else wallet

    def wallet_typed_data(
        self, agent_id: int, new_wallet: str, deadline: int, *, owner: str | None = None
    ) -> dict[str, Any]:
        """The EIP-712 message ``new_wallet`` must sign (for wallets that sign typed data)."""
        return agent_wallet_typed_data(
            chain_id=self.chain.chain_id,
            registry=self.address,
            agent_id=agent_id,
            new_wallet=new_wallet,
            owner=owner or self.owner_of(agent_id),
            deadline=deadline,
        )

    def default_deadline(self) -> int:
        """A deadline the registry accepts: two minutes after the later of chain and wall time."""
        return max(self.chain.timestamp(), int(time.time())) + DEFAULT_DEADLINE_DELAY

    def check_deadline(self, deadline: int) -> None:
        _check_uint("deadline", deadline, 256)
        now = self.chain.timestamp()
        if deadline < now:
            raise RegistryInputError(
                f"setAgentWallet deadline {deadline} has passed (chain time {now}): sign again",
                deadline=deadline,
                chain_time=now,
            )
        latest_ok = max(now, int(time.time())) + MAX_DEADLINE_DELAY
        if deadline > latest_ok:
            raise RegistryInputError(
                f"setAgentWallet deadline {deadline} is more than 5 minutes ahead "
                f"(chain time {now}): the registry refuses it",
                deadline=deadline,
                chain_time=now,
            )

    def set_agent_wallet(
        self,
        account: LocalAccount,
        agent_id: int,
        new_wallet: str,
        deadline: int,
        signature: bytes,
    ) -> TxReceipt:
        """Set the agent's wallet with the new wallet's ``AgentWalletSet`` signature."""
        wallet = _address("new wallet", new_wallet)
        if wallet == ZERO_ADDRESS:
            raise RegistryInputError("the agent wallet cannot be the zero address")
        self.check_deadline(deadline)
        sig = _check_bytes("wallet signature", signature, 65)
        if len(sig) != 65:
            raise RegistryInputError(f"wallet signature must be 65 bytes, got {len(sig)}")
        return self._send(
            account, "setAgentWallet", _check_uint("agentId", agent_id, 256), wallet, deadline, sig
        )

    def bind_wallet(
        self,
        account: LocalAccount,
        agent_id: int,
        wallet: LocalAccount,
        *,
        deadline: int | None = None,
    ) -> TxReceipt:
        """Sign the proof with ``wallet`` and set it as the agent's wallet (sent by ``account``)."""
        when = self.default_deadline() if deadline is None else deadline
        self.check_deadline(when)
        signature = sign_agent_wallet(
            wallet,
            chain_id=self.chain.chain_id,
            registry=self.address,
            agent_id=agent_id,
            owner=self.owner_of(agent_id),
            deadline=when,
        )
        return self.set_agent_wallet(account, agent_id, wallet.address, when, signature)

    def unset_agent_wallet(self, account: LocalAccount, agent_id: int) -> TxReceipt:
        return self._send(account, "unsetAgentWallet", _check_uint("agentId", agent_id, 256))

    def transfer(self, account: LocalAccount, agent_id: int, to: str) -> TxReceipt:
        """Move the agent to ``to`` (its verified wallet is cleared by the registry)."""
        return self._send(
            account, "transferFrom", account.address, _address("recipient", to), agent_id
        )


class ReputationRegistry(_Registry):
    """ERC-8004 reputation registry: feedback by clients, responses, summaries."""

    @classmethod
    def from_suite(cls, suite: Suite) -> ReputationRegistry:
        return cls(suite.chain, suite.contract(REPUTATION_KEY))

    def identity_registry(self) -> ChecksumAddress:
        return parse_address(self._call("getIdentityRegistry"))

    def give_feedback(
        self,
        account: LocalAccount,
        agent_id: int,
        value: int,
        value_decimals: int = 0,
        *,
        tag1: str = "",
        tag2: str = "",
        endpoint: str = "",
        feedback_uri: str = "",
        feedback_hash: bytes | str = b"\0" * 32,
    ) -> int:
        """Record feedback by ``account``; returns its feedbackIndex (1-based, per client)."""
        check_feedback_value(value, value_decimals)
        _check_text("tag1", tag1, TAG_MAX)
        _check_text("tag2", tag2, TAG_MAX)
        _check_text("endpoint", endpoint, ENDPOINT_MAX)
        _check_text("feedbackURI", feedback_uri, URI_MAX)
        digest = _check_hash("feedbackHash", feedback_hash)
        receipt = self._send(
            account,
            "giveFeedback",
            _check_uint("agentId", agent_id, 256),
            value,
            value_decimals,
            tag1,
            tag2,
            endpoint,
            feedback_uri,
            digest,
        )
        events = self.contract.events.NewFeedback().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise IdentityError("giveFeedback succeeded but emitted no NewFeedback event")
        return int(events[0]["args"]["feedbackIndex"])

    def revoke_feedback(self, account: LocalAccount, agent_id: int, index: int) -> TxReceipt:
        return self._send(
            account, "revokeFeedback", agent_id, _check_uint("feedbackIndex", index, 64)
        )

    def append_response(
        self,
        account: LocalAccount,
        agent_id: int,
        client: str,
        index: int,
        response_uri: str,
        response_hash: bytes | str = b"\0" * 32,
    ) -> TxReceipt:
        _check_text("responseURI", response_uri, URI_MAX, nonempty=True)
        return self._send(
            account,
            "appendResponse",
            agent_id,
            _address("client", client),
            _check_uint("feedbackIndex", index, 64),
            response_uri,
            _check_hash("responseHash", response_hash),
        )

    def summary(
        self, agent_id: int, clients: Sequence[str], tag1: str = "", tag2: str = ""
    ) -> ReputationSummary:
        """Average of the clients' unrevoked feedback (the list must not be empty)."""
        addrs = self._clients_arg(clients)
        if not addrs:
            raise RegistryInputError(
                "a reputation summary needs a non-empty list of client addresses"
            )
        _check_text("tag1", tag1, TAG_MAX)
        _check_text("tag2", tag2, TAG_MAX)
        count, value, decimals = self._call("getSummary", agent_id, addrs, tag1, tag2)
        return ReputationSummary(int(count), int(value), int(decimals))

    def read_feedback(self, agent_id: int, client: str, index: int) -> Feedback:
        value, decimals, tag1, tag2, revoked = self._call(
            "readFeedback", agent_id, _address("client", client), _check_uint("index", index, 64)
        )
        return Feedback(
            parse_address(client), index, int(value), int(decimals), tag1, tag2, bool(revoked)
        )

    def read_all_feedback(
        self,
        agent_id: int,
        clients: Sequence[str] = (),
        tag1: str = "",
        tag2: str = "",
        *,
        include_revoked: bool = False,
    ) -> list[Feedback]:
        out = self._call(
            "readAllFeedback", agent_id, self._clients_arg(clients), tag1, tag2, include_revoked
        )
        return [
            Feedback(parse_address(c), int(i), int(v), int(d), t1, t2, bool(r))
            for c, i, v, d, t1, t2, r in zip(*out, strict=True)
        ]

    def response_count(
        self, agent_id: int, client: str, index: int, responders: Sequence[str] = ()
    ) -> int:
        return int(
            self._call(
                "getResponseCount",
                agent_id,
                _address("client", client),
                _check_uint("index", index, 64),
                self._clients_arg(responders),
            )
        )

    def clients(self, agent_id: int) -> list[ChecksumAddress]:
        """Every client that gave the agent feedback (paged, so any number works)."""
        total = int(self._call("getClientCount", agent_id))
        out: list[ChecksumAddress] = []
        while len(out) < total:
            page = self._call("getClientsPage", agent_id, len(out), 4096)
            if not page:
                break
            out.extend(parse_address(a) for a in page)
        return out

    def last_index(self, agent_id: int, client: str) -> int:
        return int(self._call("getLastIndex", agent_id, _address("client", client)))

    @staticmethod
    def _clients_arg(clients: Sequence[str]) -> list[ChecksumAddress]:
        if isinstance(clients, str):
            raise RegistryInputError("pass a list of addresses, not one string")
        if len(clients) > QUERY_MAX:
            raise RegistryInputError(
                f"{len(clients)} addresses; one query accepts at most {QUERY_MAX}"
            )
        return [_address("address", c) for c in clients]


class ValidationRegistry(_Registry):
    """ERC-8004 validation registry: requests by agent owners, answers by named validators."""

    @classmethod
    def from_suite(cls, suite: Suite) -> ValidationRegistry:
        return cls(suite.chain, suite.contract(VALIDATION_KEY))

    def identity_registry(self) -> ChecksumAddress:
        return parse_address(self._call("getIdentityRegistry"))

    def request(
        self,
        account: LocalAccount,
        validator: str,
        agent_id: int,
        request_uri: str,
        request_hash: bytes | str,
    ) -> TxReceipt:
        _check_text("requestURI", request_uri, URI_MAX)
        return self._send(
            account,
            "validationRequest",
            _address("validator", validator),
            _check_uint("agentId", agent_id, 256),
            request_uri,
            _check_hash("requestHash", request_hash),
        )

    def respond(
        self,
        account: LocalAccount,
        request_hash: bytes | str,
        response: int,
        *,
        response_uri: str = "",
        response_hash: bytes | str = b"\0" * 32,
        tag: str = "",
    ) -> TxReceipt:
        if isinstance(response, bool) or not isinstance(response, int) or not 0 <= response <= 100:
            raise RegistryInputError(f"a validation response is 0..100, got {response!r}")
        _check_text("responseURI", response_uri, URI_MAX)
        _check_text("tag", tag, TAG_MAX)
        return self._send(
            account,
            "validationResponse",
            _check_hash("requestHash", request_hash),
            response,
            response_uri,
            _check_hash("responseHash", response_hash),
            tag,
        )

    def status(self, request_hash: bytes | str) -> ValidationStatus:
        validator, agent_id, response, response_hash, tag, last = self._call(
            "getValidationStatus", _check_hash("requestHash", request_hash)
        )
        return ValidationStatus(
            parse_address(validator),
            int(agent_id),
            int(response),
            bytes(response_hash),
            tag,
            int(last),
        )

    def summary(
        self, agent_id: int, validators: Sequence[str] = (), tag: str = ""
    ) -> ValidationSummary:
        addrs = ReputationRegistry._clients_arg(validators)
        _check_text("tag", tag, TAG_MAX)
        count, average = self._call("getSummary", agent_id, addrs, tag)
        return ValidationSummary(int(count), int(average))

    def agent_requests(self, agent_id: int) -> list[bytes]:
        total = int(self._call("getAgentValidationCount", agent_id))
        return self._paged("getAgentValidationsPage", agent_id, total)

    def validator_requests(self, validator: str) -> list[bytes]:
        addr = _address("validator", validator)
        total = int(self._call("getValidatorRequestCount", addr))
        return self._paged("getValidatorRequestsPage", addr, total)

    def _paged(self, fn: str, key: Any, total: int) -> list[bytes]:
        out: list[bytes] = []
        while len(out) < total:
            page = self._call(fn, key, len(out), 4096)
            if not page:
                break
            out.extend(bytes(h) for h in page)
        return out


@dataclass(frozen=True)
class Registries:
    """The three registries of one deployment."""

    identity: IdentityRegistry
    reputation: ReputationRegistry
    validation: ValidationRegistry

    @classmethod
    def from_suite(cls, suite: Suite) -> Registries:
        return cls(
            IdentityRegistry.from_suite(suite),
            ReputationRegistry.from_suite(suite),
            ValidationRegistry.from_suite(suite),
        )
