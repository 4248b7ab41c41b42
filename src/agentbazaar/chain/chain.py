"""One ``Chain`` object over web3.py, with three backends: embedded (py-evm), local (anvil), rpc.

Keys never leave the process: every transaction is signed locally by a ``LocalAccount`` and sent
raw. Nonces come from a per-sender ``NonceManager`` so concurrent sends from one wallet never
collide. Receipts are awaited by polling with a short backoff (no 100 ms floor), with a timeout.
Errors from web3 / the node become ``agentbazaar.errors`` types (see ``_errors``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3RPCError
from web3.types import RPCEndpoint, RPCResponse, TxParams, TxReceipt

from agentbazaar.chain._errors import chain_errors, revert_data, translate
from agentbazaar.chain.nonces import NonceManager
from agentbazaar.chain.provider import http_provider
from agentbazaar.errors import (
    ChainError,
    ChainUnavailable,
    TransactionReverted,
    TransactionTimeout,
    WrongChain,
)
from agentbazaar.primitives import parse_address

if TYPE_CHECKING:
    from agentbazaar.config import BazaarConfig

DEV_CHAIN_IDS = frozenset({31337, 1337, 131277322940537})
_FEE_CACHE_SECONDS = 1.0
_GAS_MARGIN_NUM, _GAS_MARGIN_DEN = 12, 10


class _LockedTesterProvider(EthereumTesterProvider):
    """eth-tester is not thread-safe: serialise every request through one lock. Gas is
    estimated with two executions instead of py-evm's binary search (~12)."""

    def __init__(self) -> None:
        super().__init__()
        self._request_lock = threading.RLock()
        chain = getattr(getattr(self.ethereum_tester, "backend", None), "chain", None)
        if chain is not None:  # py-evm; its chain class is made per provider
            type(chain).gas_estimator = staticmethod(_estimate_gas_twice)  # chains made later
            chain.gas_estimator = _estimate_gas_twice  # this one (set on it in __init__)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._request_lock:
            return super().make_request(method, params)


def _estimate_gas_twice(state: Any, transaction: Any) -> int:
    """py-evm gas estimator: the intrinsic gas if that is enough (a plain transfer); else run
    once with the block's gas limit to learn the gas consumed (before refunds), then check that
    much plus 1/32 (what nested calls keep back under the 63/64 rule) and a stipend's worth;
    only if that is not enough, py-evm's binary search (~12 runs)."""
    from eth.estimators.gas import _get_computation_error, binary_gas_search_intrinsic_tolerance
    from eth.vm.spoof import SpoofTransaction

    intrinsic = transaction.intrinsic_gas  # a plain transfer: one run, as py-evm does
    bare = cast(Any, SpoofTransaction(transaction, gas=intrinsic, gas_price=0))
    if _get_computation_error(state, bare) is None:
        return int(intrinsic)
    limit = state.gas_limit
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(SpoofTransaction(transaction, gas=limit, gas_price=0))
        if computation.is_error:
            raise computation.error
        consumed = limit - computation.get_gas_remaining()
    finally:
        state.revert(snapshot)
    candidate = min(limit, consumed + consumed // 32 + 2_300)
    check = cast(Any, SpoofTransaction(transaction, gas=candidate))
    if _get_computation_error(state, check) is None:
        return int(candidate)
    return int(binary_gas_search_intrinsic_tolerance(state, transaction))


@dataclass(frozen=True)
class CallOutcome:
    """One call of ``Chain.simulate_sequence``: did it succeed, its gas, what it returned (or
    its revert data)."""

    success: bool
    gas_used: int
    output: bytes

    def revert_reason(self) -> str:
        """The ``Error(string)`` reason of a failed call, else a short description."""
        if self.output[:4] == bytes.fromhex("08c379a0"):
            try:
                return str(Web3().codec.decode(["string"], self.output[4:])[0])
            except Exception:  # malformed revert data: described below
                pass
        return f"reverted ({self.output.hex() or 'no data'})"


class Chain:
    """A connection to one EVM chain. Thread-safe for sends and reads."""

    def __init__(
        self,
        w3: Web3,
        *,
        backend: str,
        url: str | None = None,
        expected_chain_id: int | None = None,
        receipt_timeout: float = 60.0,
    ) -> None:
        self.w3 = w3
        self.backend = backend
        self.url = url
        self.receipt_timeout = receipt_timeout
        self._nonces = NonceManager(self._pending_nonce)
        # EIP-7966 eth_sendRawTransactionSync: None until a node answers it, False once one
        # said it does not know the method (then the plain send and a receipt poll)
        self._sync_send: bool | None = None if url is not None else False
        self._fee_lock = threading.Lock()
        self._fees: tuple[float, dict[str, int]] | None = None
        with chain_errors("read the chain id", url=url):
            self.chain_id = int(w3.eth.chain_id)
        if expected_chain_id is not None and expected_chain_id != self.chain_id:
            raise WrongChain(
                f"connected to chain id {self.chain_id} but expected {expected_chain_id}: "
                "check the rpc url or [chain] chain_id",
                chain_id=self.chain_id,
                expected=expected_chain_id,
            )

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def embedded(cls, *, receipt_timeout: float = 60.0) -> Chain:
        """A fresh in-process py-evm chain (state lives as long as this object)."""
        return cls(
            Web3(_LockedTesterProvider()), backend="embedded", receipt_timeout=receipt_timeout
        )

    @classmethod
    def rpc(
        cls,
        url: str,
        *,
        expected_chain_id: int | None = None,
        backend: str = "rpc",
        timeout: float = 30.0,
        receipt_timeout: float = 60.0,
    ) -> Chain:
        if not url.startswith(("http://", "https://")):
            raise ChainUnavailable(f"unsupported rpc url {url!r}: use http:// or https://")
        return cls(
            Web3(http_provider(url, timeout)),
            backend=backend,
            url=url,
            expected_chain_id=expected_chain_id,
            receipt_timeout=receipt_timeout,
        )

    @classmethod
    def from_config(cls, cfg: BazaarConfig) -> Chain:
        c = cfg.chain
        if c.backend == "embedded":
            return cls.embedded(receipt_timeout=c.receipt_timeout)
        if c.backend == "local":
            from agentbazaar.chain.anvil import AnvilNode

            url = AnvilNode(cfg).running_url()
            return cls.rpc(
                url,
                backend="local",
                expected_chain_id=c.chain_id,
                receipt_timeout=c.receipt_timeout,
            )
        assert c.rpc_url is not None  # checked by config
        return cls.rpc(c.rpc_url, expected_chain_id=c.chain_id, receipt_timeout=c.receipt_timeout)

    # ---- facts ----------------------------------------------------------------------------
    @property
    def network(self) -> str:
        """CAIP-2 network id, e.g. ``eip155:31337``."""
        return f"eip155:{self.chain_id}"

    @property
    def is_dev(self) -> bool:
        """True for chains we control (embedded, our anvil): faucet and set_code allowed."""
        return self.backend in ("embedded", "local") or self.chain_id in DEV_CHAIN_IDS

    def block_number(self) -> int:
        with chain_errors("read the block number", url=self.url):
            return int(self.w3.eth.block_number)

    def timestamp(self) -> int:
        with chain_errors("read the latest block", url=self.url):
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def seconds_ahead(self) -> int:
        """How many seconds this chain's clock runs ahead of this machine's: what an authorization
        signed with the wall clock loses of its window on chain. Only a dev chain's clock is
        moved (``advance_time``, ``bazaar chain warp``); a public chain's is 0 without asking."""
        if not self.is_dev:
            return 0
        return max(0, self.timestamp() - int(time.time()))

    def native_balance(self, address: str) -> int:
        addr = parse_address(address)
        with chain_errors("read a balance", url=self.url):
            return int(self.w3.eth.get_balance(addr))

    def code_at(self, address: str) -> bytes:
        with chain_errors("read contract code", url=self.url):
            return bytes(self.w3.eth.get_code(parse_address(address)))

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        return self.w3.eth.contract(address=parse_address(address), abi=abi)

    # ---- reads ----------------------------------------------------------------------------
    def call(
        self, fn: ContractFunction, *, sender: str | None = None, block: Any = "latest"
    ) -> Any:
        params: TxParams = {"from": parse_address(sender)} if sender else {}
        with chain_errors(f"call {fn.fn_name}", url=self.url):
            return fn.call(params, block_identifier=block)

    def simulate_sequence(self, sender: str, calls: list[tuple[str, bytes]]) -> list[CallOutcome]:
        """Run ``calls`` (target, calldata) one after the other from ``sender``, each seeing the
        state the ones before it left, at the latest block; nothing is signed or mined.

        ``CallSequence.vy``'s runtime code is placed at ``sender`` for one ``eth_call`` (a state
        override on anvil and rpc nodes; on the embedded chain, under a snapshot reverted at
        once), so ``msg.sender`` of each call is ``sender``. Stops at the first failing call
        (its outcome carries the revert data); ``gas_used`` excludes the 21,000 intrinsic gas.
        """
        from agentbazaar.chain.compiler import compile_contract

        art = compile_contract("CallSequence")
        who = parse_address(sender)
        seq = self.w3.eth.contract(address=who, abi=art.abi)
        data = seq.encode_abi("run", [[(parse_address(t), d) for t, d in calls]])
        call: dict[str, Any] = {"from": who, "to": who, "data": data}
        with chain_errors("simulate the transactions", url=self.url, sender=who):
            if self.backend == "embedded":
                raw = self._call_with_code(who, art.runtime, call)
            else:
                override = {who: {"code": HexBytes(art.runtime).to_0x_hex()}}
                raw = self.w3.eth.call(cast(TxParams, call), "latest", override)  # type: ignore[arg-type]
            (decoded,) = self.w3.codec.decode(["(bool,uint256,bytes)[]"], bytes(raw))
        return [CallOutcome(bool(ok), int(gas), bytes(out)) for ok, gas, out in decoded]

    def _call_with_code(self, address: str, code: bytes, call: dict[str, Any]) -> bytes:
        """eth_call on the embedded chain with ``code`` at ``address``, under a snapshot (and
        gas money for the call: eth-tester charges an eth_call's gas, a node does not)."""
        provider = cast(_LockedTesterProvider, self.w3.provider)
        raw = bytes(HexBytes(address))

        def edit(st: Any) -> None:
            st.set_code(raw, code)
            st.set_balance(raw, st.get_balance(raw) + 10**24)

        with provider._request_lock:
            tester: Any = provider.ethereum_tester
            snapshot = tester.take_snapshot()
            try:
                self._tester_edit(edit)
                return bytes(self.w3.eth.call(cast(TxParams, call)))
            finally:
                tester.revert_to_snapshot(snapshot)
                self._fees = None

    def try_call(self, tx: TxParams, *, block: Any = "latest") -> tuple[bool, bytes]:
        """``eth_call`` that reports a revert instead of raising: ``(True, return data)`` or
        ``(False, revert data)`` (a custom error's selector and arguments, or an encoded
        ``Error(string)``). An unreachable node still raises ``ChainUnavailable``."""
        if self.url is not None:  # one raw request: the revert data is in the JSON-RPC error
            with chain_errors("simulate a call", url=self.url):
                response = self.w3.provider.make_request(RPCEndpoint("eth_call"), [tx, block])
            error = response.get("error")
            if error is None:
                return True, bytes(HexBytes(response.get("result") or "0x"))
            raw = error.get("data") if isinstance(error, dict) else None
            if isinstance(raw, str) and raw.startswith("0x"):
                return False, bytes(HexBytes(raw))
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if "revert" in message.lower():
                return False, b""
            raise ChainError(f"chain error while trying to simulate a call: {message}")
        try:
            return True, bytes(self.w3.eth.call(tx, block))
        except Exception as exc:
            reverted = revert_data(exc)
            if reverted is None:
                raise translate(exc, action="simulate a call", url=self.url) from exc
            return False, reverted

    # ---- sends ----------------------------------------------------------------------------
    def _pending_nonce(self, sender: str) -> int:
        with chain_errors("read the sender's nonce", url=self.url):
            return int(self.w3.eth.get_transaction_count(parse_address(sender), "pending"))

    def fee_params(self) -> dict[str, int]:
        """EIP-1559 fees: maxFee = 2 * baseFee + tip, cached for a second."""
        with self._fee_lock:
            now = time.monotonic()
            if self._fees and now - self._fees[0] < _FEE_CACHE_SECONDS:
                return dict(self._fees[1])
            with chain_errors("read the gas price", url=self.url):
                base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
                tip = 1 if self.is_dev else int(self.w3.eth.max_priority_fee)
            fees = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
            self._fees = (now, fees)
            return dict(fees)

    def estimate_gas(self, tx: TxParams, *, action: str = "estimate gas") -> int:
        sender = tx.get("from")
        with chain_errors(action, url=self.url, **({"sender": sender} if sender else {})):
            est = int(self.w3.eth.estimate_gas(tx))
        return est * _GAS_MARGIN_NUM // _GAS_MARGIN_DEN + 10_000

    def send(
        self,
        account: LocalAccount,
        tx: TxParams,
        *,
        wait: bool = True,
        timeout: float | None = None,
        action: str = "send the transaction",
        on_signed: Callable[[HexBytes, bytes], None] | None = None,
    ) -> TxReceipt:
        """Sign ``tx`` locally and broadcast it; wait for its receipt unless ``wait=False``.

        Gas is estimated (which simulates the call) before signing, so a call that would revert
        raises ``TransactionReverted`` and nothing is signed or sent.
        """
        tx_hash = self.send_nowait(account, tx, action=action, on_signed=on_signed)
        if not wait:
            return cast(TxReceipt, {"transactionHash": tx_hash, "status": None})
        return self.wait_for_receipt(tx_hash, timeout=timeout, action=action)

    def send_nowait(
        self,
        account: LocalAccount,
        tx: TxParams,
        *,
        action: str = "send",
        on_signed: Callable[[HexBytes, bytes], None] | None = None,
    ) -> HexBytes:
        """Sign and broadcast. ``on_signed(tx_hash, raw)`` runs after signing and before the
        broadcast (e.g. to record the hash durably); if it raises, nothing is broadcast."""
        return self._sign_and_broadcast(account, tx, action, on_signed, None)[0]

    def send_for_receipt(
        self,
        account: LocalAccount,
        tx: TxParams,
        *,
        wait_s: float,
        action: str = "send",
        on_signed: Callable[[HexBytes, bytes], None] | None = None,
    ) -> tuple[HexBytes, dict[str, Any] | None]:
        """``send_nowait``, and the receipt in the same round trip when the node offers
        ``eth_sendRawTransactionSync`` (EIP-7966; anvil does): ``(hash, raw JSON receipt)``.
        ``(hash, None)`` otherwise: poll ``receipt`` then.

        The sender's nonce lock is held while the node waits, so this pays only on nodes that
        mine at once (anvil's automine): a node without the method, or one that did not mine
        within ``wait_s`` once, is not asked again; later sends use the plain broadcast."""
        return self._sign_and_broadcast(account, tx, action, on_signed, wait_s)

    def _sign_and_broadcast(
        self,
        account: LocalAccount,
        tx: TxParams,
        action: str,
        on_signed: Callable[[HexBytes, bytes], None] | None,
        wait_s: float | None,
    ) -> tuple[HexBytes, dict[str, Any] | None]:
        full: dict[str, Any] = dict(tx)
        full["from"] = account.address
        full.setdefault("chainId", self.chain_id)
        full.setdefault("value", 0)
        if "gasPrice" not in full and "maxFeePerGas" not in full:
            full.update(self.fee_params())
        if "gas" not in full:
            full["gas"] = self.estimate_gas(cast(TxParams, full), action=action)
        for attempt in range(2):
            try:
                with self._nonces.reserve(account.address) as nonce:
                    full["nonce"] = nonce
                    signed = account.sign_transaction(full)
                    if on_signed is not None:
                        on_signed(HexBytes(signed.hash), bytes(signed.raw_transaction))
                    try:
                        with chain_errors(action, url=self.url, sender=account.address):
                            return self._broadcast(bytes(signed.raw_transaction), wait_s)
                    except ChainError as exc:
                        if _is_already_known(exc):  # these exact bytes are in the pool already
                            return HexBytes(signed.hash), None
                        raise
            except ChainError as exc:
                if attempt == 0 and _is_nonce_error(exc):
                    continue  # the manager dropped its cache; retry once with the chain's nonce
                raise
        raise ChainError(f"could not {action}: nonce kept colliding")  # pragma: no cover

    def _broadcast(
        self, raw: bytes, wait_s: float | None
    ) -> tuple[HexBytes, dict[str, Any] | None]:
        """One signed transaction to the node: with ``wait_s``, by ``eth_sendRawTransactionSync``
        when the node has it (the receipt comes back, or None when the node timed out). A node
        that took longer than ``wait_s`` mines on a clock, not at once: it is not asked again."""
        if wait_s is None or self._sync_send is False:
            return HexBytes(self.w3.eth.send_raw_transaction(raw)), None
        started = time.monotonic()
        response = self.w3.provider.make_request(
            RPCEndpoint("eth_sendRawTransactionSync"), ["0x" + raw.hex()]
        )
        error = response.get("error")
        if time.monotonic() - started > wait_s:
            self._sync_send = False  # the nonce lock was held while the node waited
        tx_hash = HexBytes(Web3.keccak(raw))
        if not error:
            result = response.get("result")
            return tx_hash, result if isinstance(result, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = str(error.get("message", error) if isinstance(error, dict) else error)
        if code == _SYNC_TIMEOUT:  # accepted, not mined within the node's timeout
            self._sync_send = False
            return tx_hash, None
        if code == _METHOD_NOT_FOUND or _unknown_method(message):
            self._sync_send = False
            return HexBytes(self.w3.eth.send_raw_transaction(raw)), None
        raise Web3RPCError(message, rpc_response=response)

    def broadcast_raw(self, raw: bytes, *, action: str = "rebroadcast") -> HexBytes:
        """Send an already signed transaction again (a retry after a crash); idempotent."""
        try:
            with chain_errors(action, url=self.url):
                return HexBytes(self.w3.eth.send_raw_transaction(raw))
        except ChainError as exc:
            if _is_nonce_error(exc) or _is_already_known(exc):  # mined or pending already
                return HexBytes(Web3.keccak(raw))
            raise

    def receipt(self, tx_hash: HexBytes | str) -> TxReceipt | None:
        """The receipt if the transaction is mined, else None."""
        return self._receipt_or_none(HexBytes(tx_hash), "transaction")

    def transact(
        self,
        account: LocalAccount,
        fn: ContractFunction,
        *,
        value: int = 0,
        gas: int | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> TxReceipt:
        """Encode, sign and send a contract call (simulated first by gas estimation)."""
        with chain_errors(f"encode {fn.fn_name}", url=self.url):
            data = fn._encode_transaction_data()
        tx: dict[str, Any] = {"to": fn.address, "data": data, "value": value}
        if gas is not None:
            tx["gas"] = gas
        return self.send(
            account, cast(TxParams, tx), wait=wait, timeout=timeout, action=f"call {fn.fn_name}"
        )

    def wait_for_receipt(
        self, tx_hash: HexBytes | str, *, timeout: float | None = None, action: str = "transaction"
    ) -> TxReceipt:
        deadline = time.monotonic() + (timeout if timeout is not None else self.receipt_timeout)
        delay = 0.002
        h = HexBytes(tx_hash)
        while True:
            receipt = self._receipt_or_none(h, action)
            if receipt is not None:
                break
            if time.monotonic() >= deadline:
                raise TransactionTimeout(
                    f"no receipt for {h.to_0x_hex()} within the timeout ({action}); it may still be "
                    "mined: check it later",
                    tx_hash=h.to_0x_hex(),
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        if receipt["status"] != 1:
            reason = self._replay_reason(h)
            raise TransactionReverted(
                f"{action} reverted on-chain: {reason} (tx {h.to_0x_hex()})",
                tx_hash=h.to_0x_hex(),
                reason=reason,
            )
        return receipt

    def _receipt_or_none(self, h: HexBytes, action: str) -> TxReceipt | None:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(h)
        except TransactionNotFound:
            return None
        except Exception as exc:
            raise translate(exc, action=f"wait for {action}", url=self.url) from exc

    def _replay_reason(self, h: HexBytes) -> str:
        try:
            tx = self.w3.eth.get_transaction(h)
            call: dict[str, Any] = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}  # type: ignore[literal-required]
            if "input" in tx and "data" not in call:
                call["data"] = tx["input"]
            self.w3.eth.call(cast(TxParams, call), int(tx["blockNumber"] or 0) - 1)
        except Exception as exc:  # the replay is diagnosis only
            return str(translate(exc, action="replay").fields.get("reason") or "unknown reason")
        return "out of gas or reverted without a reason"

    # ---- deploy ---------------------------------------------------------------------------
    def deploy(
        self,
        account: LocalAccount,
        abi: list[dict[str, Any]],
        bytecode: bytes,
        *args: Any,
        name: str = "contract",
    ) -> tuple[Contract, TxReceipt]:
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        with chain_errors(f"encode the constructor of {name}"):
            data = factory.constructor(*args).data_in_transaction
        receipt = self.send(account, cast(TxParams, {"data": data}), action=f"deploy {name}")
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"deploying {name} produced no contract address")
        return self.w3.eth.contract(address=address, abi=abi), receipt

    # ---- dev chains only ------------------------------------------------------------------
    def _require_dev(self, what: str) -> None:
        if not self.is_dev:
            raise ChainError(
                f"{what} works only on local chains (embedded or anvil), "
                f"not on chain {self.chain_id}",
                chain_id=self.chain_id,
            )

    def fund_native(self, address: str, wei: int) -> None:
        """Add ``wei`` of native currency to ``address`` (dev chains only)."""
        self._require_dev("the faucet")
        addr = parse_address(address)
        if self.backend == "embedded":
            self._tester_edit(
                lambda st: st.set_balance(
                    bytes(HexBytes(addr)), st.get_balance(bytes(HexBytes(addr))) + wei
                )
            )
            return
        with chain_errors("fund the address", url=self.url):
            current = self.w3.eth.get_balance(addr)
            self.w3.provider.make_request(
                RPCEndpoint("anvil_setBalance"), [addr, hex(current + wei)]
            )

    def set_code(self, address: str, code: bytes) -> None:
        """Place runtime ``code`` at ``address`` (dev chains only)."""
        self._require_dev("placing code at an address")
        addr = parse_address(address)
        if self.backend == "embedded":
            self._tester_edit(lambda st: st.set_code(bytes(HexBytes(addr)), code))
            return
        with chain_errors("set code", url=self.url):
            self.w3.provider.make_request(RPCEndpoint("anvil_setCode"), [addr, "0x" + code.hex()])

    def set_storage(self, address: str, slot: int, value: int) -> None:
        """Write one storage slot (dev chains only)."""
        self._require_dev("writing storage")
        addr = parse_address(address)
        if self.backend == "embedded":
            self._tester_edit(lambda st: st.set_storage(bytes(HexBytes(addr)), slot, value))
            return
        with chain_errors("set storage", url=self.url):
            self.w3.provider.make_request(
                RPCEndpoint("anvil_setStorageAt"),
                [addr, hex(slot), "0x" + value.to_bytes(32, "big").hex()],
            )

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (dev chains only): e.g. to pass a seed block."""
        self._require_dev("mining blocks")
        if self.backend == "embedded":
            provider = cast(_LockedTesterProvider, self.w3.provider)
            with provider._request_lock:
                tester: Any = provider.ethereum_tester
                tester.mine_blocks(blocks)
            return
        with chain_errors("mine blocks", url=self.url):
            self.w3.provider.make_request(RPCEndpoint("anvil_mine"), [hex(blocks)])

    def advance_time(self, seconds: int) -> None:
        """Move the clock ``seconds`` ahead and mine a block there (dev chains only)."""
        self._require_dev("moving the clock")
        if self.backend == "embedded":
            provider = cast(_LockedTesterProvider, self.w3.provider)
            with provider._request_lock:
                tester: Any = provider.ethereum_tester
                tester.time_travel(
                    int(tester.get_block_by_number("pending")["timestamp"]) + seconds
                )
            return
        with chain_errors("move the clock", url=self.url):
            self.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [seconds])
            self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

    def _tester_edit(self, edit: Any) -> None:
        provider = cast(_LockedTesterProvider, self.w3.provider)
        with provider._request_lock:
            tester: Any = provider.ethereum_tester
            chain = tester.backend.chain
            state = chain.get_vm().state
            edit(state)
            state.persist()
            chain.header = chain.header.copy(state_root=state.state_root)
            tester.mine_blocks(1)
        self._fees = None


_METHOD_NOT_FOUND = -32601  # JSON-RPC 2.0
_SYNC_TIMEOUT = 4  # EIP-7966: accepted but not included within the timeout


def _unknown_method(message: str) -> bool:
    text = message.lower()
    markers = ("method not found", "not supported", "does not exist", "unknown method")
    return any(m in text for m in markers)


def _is_already_known(exc: ChainError) -> bool:
    return "already known" in str(exc).lower()


def _is_nonce_error(exc: ChainError) -> bool:
    """The nonce we signed with is taken or ahead of the chain: re-sign with a fresh nonce.

    "already known" is not one of these: it means the very same signed bytes are already pending,
    and signing again with another nonce could pay twice.
    """
    text = str(exc).lower()
    # anvil/geth say "nonce too low/high"; the embedded chain "invalid transaction nonce"
    return any(m in text for m in ("nonce too low", "nonce too high", "invalid transaction nonce"))
