"""The address book of a keystore directory: the address each wallet name stands for, sealed.

``keystores/.addressbook.json``::

    {"version": 2,
     "kdf": {"name": "scrypt", "salt": "<hex>", "n": 262144, "r": 8, "p": 1},
     "entries": {"bob": {"address": "0x..", "sha256": "<digest of bob.json>",
                         "key_id": "<16 hex>", "mac": "<64 hex>"}}}

Each entry is sealed with HMAC-SHA256 under a key derived from the wallet passphrase with scrypt
(the salt and cost above, the cost of a keystore), over (name, address, sha256 of the keystore
file when its key was last proven). ``key_id`` names the passphrase an entry was sealed under, so
an entry of another passphrase is told apart from an altered one. Without the passphrase nobody
can write an entry that verifies; see ``keystore`` for the threat model. Writes are atomic and
serialised across processes with ``flock`` on ``.addressbook.lock``.

Entries of the first book format (version 1: address and sha256, no seal) are read as unsealed:
their digest still tells a damaged keystore from a wrong passphrase, but their address is never
trusted; the next unlock seals them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentbazaar.errors import WalletError

BOOK_FILE = ".addressbook.json"
LOCK_FILE = ".addressbook.lock"
VERSION = 2
_R, _P = 8, 1
_MAXMEM = 2**30
Seal = Literal["sealed", "altered", "foreign", "absent"]

_cache_lock = threading.Lock()
_key_cache: dict[tuple[str, int, str], BookKey] = {}


@dataclass(frozen=True)
class BookKey:
    """The sealing key one passphrase gives (never written anywhere)."""

    mac_key: bytes
    key_id: str


@dataclass(frozen=True)
class Entry:
    name: str
    address: str
    sha256: str
    key_id: str = ""
    mac: str = ""


def derive(passphrase: str, salt: str, n: int) -> BookKey:
    """scrypt(passphrase, salt, n) -> the sealing key (once per process per passphrase)."""
    secret = hashlib.sha256(b"bazaar-passphrase:" + passphrase.encode()).hexdigest()
    with _cache_lock:
        cached = _key_cache.get((salt, n, secret))
    if cached is not None:
        return cached
    root = hashlib.scrypt(
        passphrase.encode(), salt=bytes.fromhex(salt), n=n, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    key = BookKey(
        mac_key=hmac.new(root, b"bazaar-addressbook-mac", hashlib.sha256).digest(),
        key_id=hmac.new(root, b"bazaar-addressbook-id", hashlib.sha256).hexdigest()[:16],
    )
    with _cache_lock:
        _key_cache[(salt, n, secret)] = key
    return key


def _mac(key: BookKey, name: str, address: str, sha256: str) -> str:
    message = json.dumps([VERSION, name, address, sha256], separators=(",", ":")).encode()
    return hmac.new(key.mac_key, message, hashlib.sha256).hexdigest()


class AddressBook:
    """The sealed name -> address map beside the keystore files of one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / BOOK_FILE

    # ---- reading ------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise WalletError(
                f"address book {self.path} is unreadable ({exc}): delete it, and each wallet "
                "is checked again by its key at its next unlock",
                path=str(self.path),
            ) from exc
        if not isinstance(raw, dict):
            raise WalletError(f"address book {self.path} is not a JSON object")
        return raw

    def key(self, passphrase: str) -> BookKey | None:
        """The sealing key of ``passphrase`` for this book (None while there is no book)."""
        kdf = _kdf(self._load())
        return None if kdf is None else derive(passphrase, kdf[0], kdf[1])

    def entry(self, name: str) -> Entry | None:
        raw = self._load()
        entries = raw.get("entries") if raw.get("version") == VERSION else raw
        item = entries.get(name) if isinstance(entries, dict) else None
        if not isinstance(item, dict):
            return None
        return Entry(
            name=name,
            address=str(item.get("address", "")),
            sha256=str(item.get("sha256", "")),
            key_id=str(item.get("key_id", "")),
            mac=str(item.get("mac", "")),
        )

    def entries(self) -> list[Entry]:
        raw = self._load()
        entries = raw.get("entries") if raw.get("version") == VERSION else raw
        names = sorted(entries) if isinstance(entries, dict) else []
        return [e for e in (self.entry(n) for n in names) if e is not None]

    @staticmethod
    def check(entry: Entry | None, key: BookKey | None) -> Seal:
        """``sealed`` (verifies under ``key``), ``altered`` (sealed under this passphrase but
        changed since), ``foreign`` (sealed under another passphrase, or unsealed), ``absent``."""
        if entry is None:
            return "absent"
        if key is None or not entry.mac or not hmac.compare_digest(entry.key_id, key.key_id):
            return "foreign"
        expected = _mac(key, entry.name, entry.address, entry.sha256)
        return "sealed" if hmac.compare_digest(entry.mac, expected) else "altered"

    # ---- writing ------------------------------------------------------------------------------
    def seal(self, name: str, address: str, sha256: str, passphrase: str, n: int) -> None:
        """Enter ``name`` sealed under ``passphrase`` (the caller proved the key behind it)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            raw = self._load()
            kdf = _kdf(raw)
            if kdf is None:  # a new book (or one of the first format): a new salt
                kdf = (secrets.token_hex(16), n)
            key = derive(passphrase, kdf[0], kdf[1])
            entries = raw.get("entries") if raw.get("version") == VERSION else {}
            entries = dict(entries) if isinstance(entries, dict) else {}
            entries[name] = {
                "address": address,
                "sha256": sha256,
                "key_id": key.key_id,
                "mac": _mac(key, name, address, sha256),
            }
            doc = {
                "version": VERSION,
                "kdf": {"name": "scrypt", "salt": kdf[0], "n": kdf[1], "r": _R, "p": _P},
                "entries": entries,
            }
            if doc != raw:
                self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _kdf(raw: dict[str, Any]) -> tuple[str, int] | None:
    """(salt, n) of a version-2 book, or None. Bad values give a key that seals nothing here."""
    if raw.get("version") != VERSION:
        return None
    kdf = raw.get("kdf")
    if not isinstance(kdf, dict):
        return None
    salt, n = kdf.get("salt"), kdf.get("n")
    if not isinstance(salt, str) or not isinstance(n, int) or isinstance(n, bool):
        return None
    try:
        bytes.fromhex(salt)
    except ValueError:
        return None
    if not (2 <= n <= 2**18) or n & (n - 1) or not (8 <= len(salt) // 2 <= 64):
        return None
    return salt, n
