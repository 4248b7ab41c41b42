"""Encrypted keystores: Ethereum keystore v3 JSON (scrypt), one file per wallet name.

Files live in ``cfg.keystore_dir/<name>.json`` with mode 0600, written atomically (temp file +
``os.replace``). The scrypt cost is N = 262144 (the go-ethereum "standard" setting, about 0.7 s per
unlock on a laptop); ``BAZAAR_SCRYPT_N`` (a power of two, at least 1024) lowers it for tests and
throw-away local wallets. Decryption reads N from the file, so files of any cost open anywhere.

A decrypted key is cached for the life of the process, keyed by the file's contents and a hash of
the passphrase, so a wallet is unlocked once per process and a wrong passphrase is still refused.
Keys never appear in messages, logs or ``repr``.

The plain ``address`` field of a keystore v3 file is not covered by its MAC, so it is never
trusted alone. ``unlock`` refuses a file whose decrypted key is not that address. Names resolve to
addresses without a passphrase through the address book ``.addressbook.json`` beside the files:
each entry holds the address and the sha256 of the keystore file as it was when the key itself
was known (created, imported, or unlocked and checked). A file that changed since then (its
address rewritten, say) is refused with ``KeystoreTampered`` naming the file, until an unlock
proves the key behind it. A file without an entry (copied in by hand) resolves to its field and is
entered in the book at its first verified unlock.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from agentbazaar.errors import (
    BadPassphrase,
    InputError,
    KeystoreTampered,
    UnknownWallet,
    WalletError,
    WalletExists,
)

STANDARD_SCRYPT_N = 262_144
MIN_SCRYPT_N = 1_024
SCRYPT_N_ENV = "BAZAAR_SCRYPT_N"
PASSPHRASE_ENV = "BAZAAR_PASSPHRASE"
_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
ADDRESS_BOOK = ".addressbook.json"
_book_lock = threading.Lock()

_cache_lock = threading.Lock()
_key_cache: dict[tuple[str, str], bytes] = {}


def validate_name(name: str) -> str:
    """Wallet names: 1-32 characters of a-z, 0-9, '_' and '-'."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"bad wallet name {name!r}: use 1-32 characters of a-z, 0-9, '_' or '-'", name=name
        )
    return name


def scrypt_n(env: dict[str, str] | None = None) -> int:
    """The scrypt cost for new keystores: ``BAZAAR_SCRYPT_N`` or the standard 262144."""
    raw = (os.environ if env is None else env).get(SCRYPT_N_ENV)
    if not raw:
        return STANDARD_SCRYPT_N
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < MIN_SCRYPT_N or n & (n - 1):
        raise WalletError(f"{SCRYPT_N_ENV} must be a power of two >= {MIN_SCRYPT_N}, got {raw!r}")
    return n


def passphrase_from_env_or_prompt(prompt_fn: Callable[[str], str] | None = None) -> str:
    """The passphrase from ``BAZAAR_PASSPHRASE``, else asked once through ``prompt_fn``."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    ask = prompt_fn or (lambda text: getpass.getpass(text + ": "))
    try:
        value = ask("wallet passphrase")
    except (EOFError, OSError) as exc:
        raise BadPassphrase(
            f"no passphrase: set {PASSPHRASE_ENV} or run in a terminal to be asked"
        ) from exc
    if not value:
        raise BadPassphrase("the passphrase must not be empty")
    return value


def parse_private_key(text: str) -> bytes:
    """A hex private key (64 hex digits, optional 0x) -> 32 bytes. The key is never echoed."""
    cleaned = text.strip()
    if not _KEY.match(cleaned):
        raise InputError("not a private key: expected 64 hex digits (optionally 0x-prefixed)")
    key = bytes.fromhex(cleaned.removeprefix("0x"))
    if int.from_bytes(key, "big") == 0 or int.from_bytes(key, "big") >= _SECP256K1_N:
        raise InputError("not a valid secp256k1 private key")
    return key


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeyStore:
    """The keystore directory of one data directory."""

    def __init__(self, directory: Path, *, scrypt_cost: int | None = None) -> None:
        self.dir = Path(directory)
        self._n = scrypt_cost

    def path(self, name: str) -> Path:
        return self.dir / f"{validate_name(name)}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if _NAME.match(p.stem))

    def wallets(self) -> list[tuple[str, ChecksumAddress]]:
        """(name, address) of every wallet; needs no passphrase (the address is not secret)."""
        return [(name, self.address_of(name)) for name in self.names()]

    def _read(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none yet"
            raise UnknownWallet(
                f"no wallet named {name!r} (known: {known}); create it with `bazaar wallet new`",
                name=name,
            ) from None
        except (OSError, ValueError) as exc:
            raise WalletError(f"keystore {path} is unreadable: {exc}", name=name) from exc
        return data

    def address_of(self, name: str) -> ChecksumAddress:
        """The wallet's address, checked against the address book (no passphrase needed)."""
        data = self._read(name)
        field = self._field_address(name, data)
        entry = self._book().get(name)
        if entry is None:
            return field
        if entry.get("sha256") != _digest(data) or entry.get("address") != field:
            raise KeystoreTampered(
                f"keystore {self.path(name)} changed since its key was last verified "
                f"(address book: {entry.get('address')}, file: {field}); restore the file, or "
                "unlock it with its passphrase to prove the key behind it",
                name=name,
                path=str(self.path(name)),
            )
        return field

    def _field_address(self, name: str, data: dict[str, Any]) -> ChecksumAddress:
        try:
            return Web3.to_checksum_address("0x" + str(data["address"]).removeprefix("0x"))
        except (KeyError, ValueError, TypeError) as exc:
            raise WalletError(f"keystore of {name!r} has no valid address", name=name) from exc

    def _book(self) -> dict[str, dict[str, str]]:
        path = self.dir / ADDRESS_BOOK
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise WalletError(f"address book {path} is unreadable: {exc}") from exc
        if not isinstance(raw, dict):
            raise WalletError(f"address book {path} is not a JSON object")
        return {k: v for k, v in raw.items() if isinstance(v, dict)}

    def _record(self, name: str, address: str, data: dict[str, Any]) -> None:
        """Enter ``name`` in the address book (atomic write; the key behind it is known)."""
        with _book_lock:
            book = self._book()
            entry = {"address": address, "sha256": _digest(data)}
            if book.get(name) == entry:
                return
            book[name] = entry
            path = self.dir / ADDRESS_BOOK
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(book, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)

    def create(self, name: str, passphrase: str) -> ChecksumAddress:
        """A new random key, encrypted under ``passphrase``."""
        return self._store(name, bytes(Account.create().key), passphrase)

    def import_key(self, name: str, private_key: bytes | str, passphrase: str) -> ChecksumAddress:
        key = parse_private_key(private_key) if isinstance(private_key, str) else private_key
        if len(key) != 32:
            raise InputError("a private key is 32 bytes")
        return self._store(name, key, passphrase)

    def import_keystore(
        self, name: str, keystore_file: Path, file_passphrase: str, passphrase: str
    ) -> ChecksumAddress:
        """Import a keystore v3 file (any kdf), re-encrypted under our passphrase and cost."""
        try:
            data = json.loads(Path(keystore_file).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read keystore file {keystore_file}: {exc}") from exc
        key = _decrypt(data, file_passphrase, what=str(keystore_file))
        return self._store(name, key, passphrase)

    def _store(self, name: str, key: bytes, passphrase: str) -> ChecksumAddress:
        if not passphrase:
            raise BadPassphrase("the passphrase must not be empty")
        path = self.path(name)
        if path.exists():
            raise WalletExists(f"a wallet named {name!r} already exists", name=name)
        n = self._n or scrypt_n()
        data = Account.encrypt(key, passphrase, kdf="scrypt", iterations=n)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic and refuses to overwrite a concurrent create
            except FileExistsError:
                raise WalletExists(f"a wallet named {name!r} already exists", name=name) from None
            except OSError:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        address = Web3.to_checksum_address(Account.from_key(key).address)
        self._record(name, address, data)
        return address

    def unlock(self, name: str, passphrase: str) -> LocalAccount:
        """Decrypt the wallet's key (once per process) and return its account."""
        data = self._read(name)
        field = self._field_address(name, data)
        account: LocalAccount = Account.from_key(_decrypt(data, passphrase, what=name))
        if Web3.to_checksum_address(account.address) != field:
            raise KeystoreTampered(
                f"keystore {self.path(name)} says address {field} but its key is another "
                "account: the file was altered; nothing was signed",
                name=name,
                path=str(self.path(name)),
            )
        self._record(name, field, data)
        return account


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _decrypt(data: dict[str, Any], passphrase: str, *, what: str) -> bytes:
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    secret = hashlib.sha256(b"bazaar-passphrase:" + passphrase.encode()).hexdigest()
    with _cache_lock:
        cached = _key_cache.get((fingerprint, secret))
    if cached is not None:
        return cached
    try:
        key = bytes(Account.decrypt(data, passphrase))
    except ValueError as exc:
        if "mac mismatch" in str(exc).lower():
            raise BadPassphrase(f"wrong passphrase for wallet {what!r}", name=what) from None
        raise WalletError(f"keystore {what!r} is not a valid keystore v3 file: {exc}") from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise WalletError(f"keystore {what!r} is not a valid keystore v3 file: {exc}") from None
    with _cache_lock:
        _key_cache[(fingerprint, secret)] = key
    return key
