"""Encrypted keystores: Ethereum keystore v3 JSON (scrypt), one file per wallet name.

Files live in ``cfg.keystore_dir/<name>.json`` with mode 0600, written atomically (temp file +
``os.replace``). The scrypt cost is N = 262144 (the go-ethereum "standard" setting, about 0.7 s per
unlock on a laptop); ``BAZAAR_SCRYPT_N`` (a power of two, at least 1024) lowers it for tests and
throw-away local wallets. Decryption reads N from the file, so files of any cost open anywhere.

A decrypted key is cached for the life of the process, keyed by the file's contents and a hash of
the passphrase, so a wallet is unlocked once per process and a wrong passphrase is still refused.
Keys never appear in messages, logs or ``repr``.

Names resolve to addresses only through the sealed address book (``_addressbook``).

Threat model. The attacker can read and write the data directory (keystore files, the address
book, policies) but does not know the wallet passphrase; a user pays wallets of the directory by
name. What must hold: a name never resolves to an address whose key the passphrase has not
proven, and a changed file is refused with the file named, never used.

- The plain ``address`` field of a keystore v3 file is not covered by its MAC: it is never
  trusted alone. ``unlock`` refuses a file whose decrypted key is another account.
- ``address_of(name, passphrase)`` answers from the name's address book entry only when the entry
  is sealed under the passphrase (HMAC keyed by scrypt of the passphrase: an attacker cannot write
  one) and the keystore file is still the one it describes (same sha256, same address). Anything
  else (no entry, an entry of the first book format, an entry sealed under another passphrase, a
  file changed since) is settled by unlocking that file with the passphrase, which proves its key
  and seals the entry again, or refuses. So a rewritten address field, a file swapped for the
  attacker's own keystore, an edited or forged entry, or a deleted book all end in a refusal
  (``KeystoreTampered`` naming the file, or ``BadPassphrase`` for a file the passphrase does not
  open); none redirects a payment.
- Damage versus a wrong passphrase: with keystore v3 both give a MAC mismatch. The digest of the
  file last known good (in its entry) tells them apart: a file that differs from it and does not
  open is ``KeystoreDamaged`` (corrupted ciphertext, MAC or KDF parameters), one that is unchanged
  is a wrong passphrase. KDF parameters are checked before any work (at most n = 2**18, r = 8), so
  an edited cost cannot make an unlock run out of memory.
- Left out: rolling a name back to an earlier genuine state of the same directory (an old file
  with its old entry, both once valid), and swapping two keystores that both open under the
  passphrase while neither has a sealed entry (both are the user's own keys; when one is sealed,
  the other is refused as a duplicate).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3

from agentbazaar.errors import (
    BadPassphrase,
    BazaarError,
    InputError,
    KeystoreDamaged,
    KeystoreTampered,
    UnknownWallet,
    WalletError,
    WalletExists,
)
from agentbazaar.wallet._addressbook import BOOK_FILE, AddressBook, Entry

STANDARD_SCRYPT_N = 262_144
MIN_SCRYPT_N = 1_024
MAX_SCRYPT_N = 262_144  # with r = 8: 256 MiB, the most an unlock may take
SCRYPT_N_ENV = "BAZAAR_SCRYPT_N"
PASSPHRASE_ENV = "BAZAAR_PASSPHRASE"
ADDRESS_BOOK = BOOK_FILE
_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_HEX = re.compile(r"^[0-9a-fA-F]*$")

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
    if n < MIN_SCRYPT_N or n > MAX_SCRYPT_N or n & (n - 1):
        raise WalletError(
            f"{SCRYPT_N_ENV} must be a power of two from {MIN_SCRYPT_N} to {MAX_SCRYPT_N}, "
            f"got {raw!r}"
        )
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


@dataclass(frozen=True)
class Listed:
    """One wallet of a listing: its authenticated address, or why it has none."""

    name: str
    address: ChecksumAddress | None
    problem: BazaarError | None = None


class KeyStore:
    """The keystore directory of one data directory."""

    def __init__(self, directory: Path, *, scrypt_cost: int | None = None) -> None:
        self.dir = Path(directory)
        self._n = scrypt_cost
        self.book = AddressBook(self.dir)

    def path(self, name: str) -> Path:
        return self.dir / f"{validate_name(name)}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def require(self, name: str) -> Path:
        """The keystore file of ``name``; ``UnknownWallet`` (with the known names) if none."""
        path = self.path(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise UnknownWallet(
                f"no wallet named {name!r} (known: {known}); create it with `bazaar wallet new`",
                name=name,
            )
        return path

    def names(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if _NAME.match(p.stem))

    def listing(self, passphrase: str) -> list[Listed]:
        """Every wallet with its authenticated address, or the refusal that stands for it."""
        out = []
        for name in self.names():
            try:
                out.append(Listed(name, self.address_of(name, passphrase)))
            except WalletError as exc:
                out.append(Listed(name, None, exc))
        return out

    def wallets(self, passphrase: str) -> list[tuple[str, ChecksumAddress]]:
        """(name, authenticated address) of every wallet; raises the first refusal."""
        return [(name, self.address_of(name, passphrase)) for name in self.names()]

    def _read(self, name: str) -> dict[str, Any]:
        path = self.require(name)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeystoreDamaged(
                f"keystore {path} is damaged (not JSON: {exc}); restore it from a backup",
                name=name,
                path=str(path),
            ) from exc
        if not isinstance(data, dict):
            raise KeystoreDamaged(f"keystore {path} is damaged (not a JSON object)", path=str(path))
        return data

    def address_of(self, name: str, passphrase: str) -> ChecksumAddress:
        """The wallet's authenticated address: from its sealed address book entry while the file
        is the one the entry describes, else proven by unlocking the file (see the module)."""
        data = self._read(name)
        entry = self.book.entry(name)
        if (
            entry is not None
            and self.book.check(entry, self.book.key(passphrase)) == "sealed"
            and entry.sha256 == _digest(data)
            and entry.address == self._field_address(name, data)
        ):
            return Web3.to_checksum_address(entry.address)
        return Web3.to_checksum_address(self.unlock(name, passphrase).address)

    def _field_address(self, name: str, data: dict[str, Any]) -> ChecksumAddress:
        try:
            return Web3.to_checksum_address("0x" + str(data["address"]).removeprefix("0x"))
        except (KeyError, ValueError, TypeError) as exc:
            raise KeystoreDamaged(
                f"keystore {self.path(name)} is damaged: it has no valid address",
                name=name,
                path=str(self.path(name)),
            ) from exc

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
        key = _decrypt(data, file_passphrase, what=str(keystore_file), path=Path(keystore_file))
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
        self.book.seal(name, address, _digest(data), passphrase, n)
        return address

    def unlock(self, name: str, passphrase: str) -> LocalAccount:
        """Decrypt the wallet's key (once per process), prove the file against its address book
        entry, seal the entry, and return the account. Refusals name the file."""
        path, data = self.path(name), self._read(name)
        field, digest = self._field_address(name, data), _digest(data)
        entry = self.book.entry(name)
        seal = self.book.check(entry, self.book.key(passphrase))
        if seal == "altered":
            raise self._tampered(name, "its address book entry was altered")
        if seal == "sealed" and entry is not None and entry.address != field:
            raise self._tampered(name, f"it says {field}, its sealed entry {entry.address}")
        try:
            key = _decrypt(data, passphrase, what=name, path=path)
        except BadPassphrase:
            if entry is not None and entry.sha256 and entry.sha256 != digest:
                raise KeystoreDamaged(
                    f"keystore {path} is damaged: it changed since it was last known good and "
                    "no longer opens (ciphertext, MAC or KDF parameters); restore it from a "
                    "backup",
                    name=name,
                    path=str(path),
                ) from None
            raise
        account: LocalAccount = Account.from_key(key)
        if Web3.to_checksum_address(account.address) != field:
            raise self._tampered(name, f"it says address {field} but its key is another account")
        if seal != "sealed":
            self._refuse_double(name, field, entry, passphrase)
        self.book.seal(name, field, digest, passphrase, self._n or scrypt_n())
        return account

    def _refuse_double(self, name: str, address: str, entry: Entry | None, passphrase: str) -> None:
        """A file proven for the first time must not take another name's sealed address, nor
        contradict the address its own (unsealed) entry gave."""
        if entry is not None and entry.address and entry.address.lower() != address.lower():
            raise self._tampered(name, f"its address book entry says {entry.address}")
        key = self.book.key(passphrase)
        for other in self.book.entries():
            if (
                other.name != name
                and other.address == address
                and self.exists(other.name)
                and self.book.check(other, key) == "sealed"
            ):
                raise self._tampered(name, f"it holds the key of wallet {other.name!r}")

    def _tampered(self, name: str, why: str) -> KeystoreTampered:
        path = self.path(name)
        return KeystoreTampered(
            f"keystore {path} was altered ({why}): the name {name!r} is not resolved and nothing "
            "is signed; restore the file from a backup",
            name=name,
            path=str(path),
        )


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_v3(data: dict[str, Any], path: Path | None = None) -> None:
    """Refuse a keystore whose structure or KDF parameters are not a sane keystore v3
    (``KeystoreDamaged``), before any key derivation runs."""
    where = str(path) if path is not None else "the keystore"

    def bad(why: str) -> KeystoreDamaged:
        return KeystoreDamaged(
            f"keystore {where} is damaged ({why}); restore it from a backup", path=str(path)
        )

    crypto = data.get("crypto", data.get("Crypto"))
    if data.get("version") != 3 or not isinstance(crypto, dict):
        raise bad("not a keystore v3 file")
    params = crypto.get("kdfparams")
    if not isinstance(params, dict):
        raise bad("no KDF parameters")
    if crypto.get("kdf") == "scrypt":
        n, r, p = params.get("n"), params.get("r"), params.get("p")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p)):
            raise bad("scrypt parameters are not integers")
        assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
        if n < 2 or n & (n - 1) or n * r > MAX_SCRYPT_N * 8 or not 1 <= r <= 8 or not 1 <= p <= 4:
            raise bad(f"scrypt parameters out of range: n={n}, r={r}, p={p}")
    elif crypto.get("kdf") == "pbkdf2":
        c = params.get("c")
        if not isinstance(c, int) or isinstance(c, bool) or not 1 <= c <= 10_000_000:
            raise bad(f"pbkdf2 iteration count out of range: {c!r}")
        if params.get("prf") != "hmac-sha256":
            raise bad(f"unsupported pbkdf2 prf {params.get('prf')!r}")
    else:
        raise bad(f"unsupported KDF {crypto.get('kdf')!r}")
    cipher = crypto.get("cipherparams")
    lengths = (
        (params.get("salt"), None),
        (crypto.get("ciphertext"), 64),
        (crypto.get("mac"), 64),
        (cipher.get("iv") if isinstance(cipher, dict) else None, 32),
    )
    for value, length in lengths:
        if not isinstance(value, str) or not _HEX.match(value) or len(value) % 2:
            raise bad("a hex field is missing or malformed")
        if (length is not None and len(value) != length) or (length is None and not value):
            raise bad("a hex field has the wrong length")
    if params.get("dklen") != 32 or crypto.get("cipher") != "aes-128-ctr":
        raise bad("unsupported cipher or key length")


def _decrypt(data: dict[str, Any], passphrase: str, *, what: str, path: Path) -> bytes:
    check_v3(data, path)
    fingerprint = _digest(data)
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
        raise KeystoreDamaged(f"keystore {path} is damaged: {exc}", path=str(path)) from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise KeystoreDamaged(f"keystore {path} is damaged: {exc}", path=str(path)) from None
    with _cache_lock:
        _key_cache[(fingerprint, secret)] = key
    return key
