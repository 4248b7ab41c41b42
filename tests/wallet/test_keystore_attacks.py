"""Attacks on the keystore directory by someone who can write it but does not know the
passphrase: altered files, an edited, forged or deleted address book, swapped files, damaged
ciphertext, MAC and KDF parameters. Each ends in a typed refusal naming the file; no name ever
resolves to an address whose key the passphrase has not proven."""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentbazaar.errors import BadPassphrase, KeystoreDamaged, KeystoreTampered, WalletError
from agentbazaar.wallet import KeyStore
from agentbazaar.wallet._addressbook import BOOK_FILE

PW = "pw"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _book_entries(store: KeyStore) -> tuple[dict[str, Any], dict[str, Any]]:
    """The book document and its name -> entry map (either book format)."""
    book = _load(store.dir / BOOK_FILE)
    return book, book.get("entries", book)


def _redirect(store: KeyStore, name: str, to: str) -> None:
    """The attacker's best edit: the file's address field AND the book entry (address and the
    digest of the edited file) both name ``to``."""
    data = _load(store.path(name))
    data["address"] = to.removeprefix("0x").lower()
    store.path(name).write_text(json.dumps(data))
    book, entries = _book_entries(store)
    entries[name].update(address=to, sha256=_digest(data))
    (store.dir / BOOK_FILE).write_text(json.dumps(book))


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    keys = KeyStore(tmp_path / "keys")
    keys.create("alice", PW)
    keys.create("bob", PW)
    return keys


def test_edited_address_book_and_file_redirect_nothing(store: KeyStore) -> None:
    real = store.address_of("bob", PW)
    attacker = Account.create().address
    _redirect(store, "bob", attacker)
    for resolve in (
        lambda: store.address_of("bob", PW),
        lambda: store.unlock("bob", PW),
        lambda: store.wallets(PW),
    ):
        with pytest.raises(KeystoreTampered) as info:
            resolve()
        assert str(store.path("bob")) in str(info.value)
    listed = {w.name: w for w in store.listing(PW)}
    assert listed["alice"].address is not None and listed["bob"].address is None
    assert isinstance(listed["bob"].problem, KeystoreTampered)
    assert attacker not in {w.address for w in listed.values()}
    assert real != attacker


def test_forged_book_under_the_attackers_passphrase_redirects_nothing(store: KeyStore) -> None:
    """The attacker writes a whole new book, sealed under a passphrase of its own."""
    attacker = Account.create().address
    data = _load(store.path("bob"))
    data["address"] = attacker.removeprefix("0x").lower()
    store.path("bob").write_text(json.dumps(data))
    (store.dir / BOOK_FILE).unlink()
    forger = KeyStore(store.dir)
    forger.book.seal("bob", attacker, _digest(data), "attackers-own", 1024)
    with pytest.raises(KeystoreTampered):
        store.address_of("bob", PW)  # not sealed under PW: the file is unlocked, and refused


def test_attackers_keystore_with_its_book_entry_does_not_open(
    store: KeyStore, tmp_path: Path
) -> None:
    """A whole keystore of the attacker's key (under its passphrase) and a book sealed to it."""
    alice = store.address_of("alice", PW)
    mallory = KeyStore(tmp_path / "mallory")
    address = mallory.create("bob", "attackers-own")
    store.path("bob").write_text(mallory.path("bob").read_text())
    (store.dir / BOOK_FILE).write_text((mallory.dir / BOOK_FILE).read_text())
    with pytest.raises(BadPassphrase):
        store.address_of("bob", PW)
    assert store.address_of("alice", PW) == alice  # its entry went with the book: re-proven
    assert address not in {w.address for w in store.listing(PW)}


def test_deleted_book_is_rebuilt_by_proof_only(store: KeyStore) -> None:
    real = store.address_of("bob", PW)
    (store.dir / BOOK_FILE).unlink()
    assert store.address_of("bob", PW) == real  # proven by unlocking the file, sealed again
    _, entries = _book_entries(store)
    assert entries["bob"]["address"] == real and entries["bob"]["mac"]
    (store.dir / BOOK_FILE).unlink()
    data = _load(store.path("bob"))
    data["address"] = Account.create().address.removeprefix("0x")
    store.path("bob").write_text(json.dumps(data))
    with pytest.raises(KeystoreTampered):
        store.address_of("bob", PW)


def test_swapped_files_of_own_wallets_are_refused(store: KeyStore) -> None:
    alice = store.address_of("alice", PW)
    bob_file = store.path("bob").read_text()
    store.path("bob").write_text(store.path("alice").read_text())
    with pytest.raises(KeystoreTampered, match=r"alice|sealed entry"):
        store.address_of("bob", PW)
    # the attacker also drops bob's entry: the file now proves alice's key, which alice holds
    book, entries = _book_entries(store)
    del entries["bob"]
    (store.dir / BOOK_FILE).write_text(json.dumps(book))
    with pytest.raises(KeystoreTampered, match="alice"):
        store.address_of("bob", PW)
    store.path("bob").write_text(bob_file)
    assert store.address_of("bob", PW) != alice


def test_entry_moved_to_another_name_is_refused(store: KeyStore) -> None:
    book, entries = _book_entries(store)
    entries["bob"] = dict(entries["alice"])  # a valid seal, but over the name alice
    store.path("bob").write_text(store.path("alice").read_text())
    (store.dir / BOOK_FILE).write_text(json.dumps(book))
    with pytest.raises(KeystoreTampered, match="altered"):
        store.address_of("bob", PW)


@pytest.mark.parametrize(
    ("what", "edit"),
    [
        ("ciphertext", lambda c: c.update(ciphertext=("00" if c["ciphertext"][:2] != "00" else "11") + c["ciphertext"][2:])),
        ("mac", lambda c: c.update(mac="ab" * 32)),
        ("salt", lambda c: c["kdfparams"].update(salt="cd" * 32)),
        ("kdf cost", lambda c: c["kdfparams"].update(n=2048)),
        ("kdf cost absurd", lambda c: c["kdfparams"].update(n=2**30)),
        ("kdf r", lambda c: c["kdfparams"].update(r="8")),
        ("iv", lambda c: c["cipherparams"].update(iv="zz")),
        ("cipherparams", lambda c: c.update(cipherparams="iv")),
        ("kdfparams", lambda c: c.update(kdfparams=[])),
        ("kdf", lambda c: c.update(kdf="argon2")),
        ("cipher", lambda c: c.update(cipher="aes-256-gcm")),
    ],
)  # fmt: skip
def test_damaged_keystore_is_not_a_wrong_passphrase(store: KeyStore, what: str, edit: Any) -> None:
    data = _load(store.path("alice"))
    edit(data["crypto"])
    store.path("alice").write_text(json.dumps(data))
    for attempt in (lambda: store.unlock("alice", PW), lambda: store.address_of("alice", PW)):
        with pytest.raises(KeystoreDamaged) as info:
            attempt()
        assert str(store.path("alice")) in str(info.value), what
        assert "passphrase" not in str(info.value)


def test_wrong_passphrase_is_still_a_wrong_passphrase(store: KeyStore) -> None:
    with pytest.raises(BadPassphrase, match="wrong passphrase"):
        store.unlock("alice", "not-it")
    with pytest.raises(BadPassphrase):
        store.address_of("bob", "not-it")


def test_first_book_format_is_sealed_at_first_use(tmp_path: Path) -> None:
    """A book of the first format (address + sha256, no seal) is never trusted for its address,
    but its digest still tells damage from a wrong passphrase; the first unlock seals it."""
    store = KeyStore(tmp_path / "keys")
    real = store.create("bob", PW)
    data = _load(store.path("bob"))
    legacy = {"bob": {"address": real, "sha256": _digest(data)}}
    (store.dir / BOOK_FILE).write_text(json.dumps(legacy))
    with pytest.raises(BadPassphrase):
        store.address_of("bob", "not-it")
    attacker = Account.create().address
    legacy["bob"]["address"] = attacker  # an unsealed entry's address is not believed
    (store.dir / BOOK_FILE).write_text(json.dumps(legacy))
    with pytest.raises(KeystoreTampered):
        store.address_of("bob", PW)
    legacy["bob"]["address"] = real
    (store.dir / BOOK_FILE).write_text(json.dumps(legacy))
    assert store.address_of("bob", PW) == real
    assert _book_entries(store)[1]["bob"]["mac"]


def test_wallets_of_another_passphrase_are_not_resolved_with_this_one(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.create("alice", PW)
    carol = store.create("carol", "carols")
    with pytest.raises(BadPassphrase):
        store.address_of("carol", PW)
    assert store.address_of("carol", "carols") == carol


def test_concurrent_creates_keep_every_sealed_entry(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    names = [f"w{i}" for i in range(8)]
    made: dict[str, str] = {}

    def create(name: str) -> None:
        made[name] = KeyStore(store.dir).create(name, PW)

    threads = [threading.Thread(target=create, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, entries = _book_entries(store)
    assert sorted(entries) == names
    assert {n: store.address_of(n, PW) for n in names} == made


_FIELDS = (
    ("address",),
    ("crypto", "ciphertext"),
    ("crypto", "mac"),
    ("crypto", "cipher"),
    ("crypto", "cipherparams", "iv"),
    ("crypto", "kdf"),
    ("crypto", "kdfparams", "n"),
    ("crypto", "kdfparams", "r"),
    ("crypto", "kdfparams", "p"),
    ("crypto", "kdfparams", "salt"),
    ("crypto", "kdfparams", "dklen"),
    ("version",),
)
_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=80),
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=80),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_FIELDS), _JSON), min_size=1, max_size=3))
def test_any_edit_of_a_keystore_is_refused_never_used(
    edits: list[tuple[tuple[str, ...], Any]],
) -> None:
    """Whatever fields an attacker rewrites, with whatever JSON: the name resolves to the real
    address or is refused with a typed wallet error; a changed file is never a wrong passphrase
    and is never unlocked to another account."""
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore(Path(tmp) / "keys")
        real = store.create("bob", PW)
        original = _load(store.path("bob"))
        data = json.loads(json.dumps(original))
        for path, value in edits:
            target = data
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        store.path("bob").write_text(json.dumps(data))
        for attempt in (
            lambda: store.address_of("bob", PW),
            lambda: store.unlock("bob", PW).address,
        ):
            try:
                assert attempt() == real
            except (KeystoreDamaged, KeystoreTampered):
                assert _digest(data) != _digest(original)  # (True == 1, "true" != "1")
            except WalletError as exc:  # anything else must still be typed, and not a passphrase
                raise AssertionError(f"untyped refusal {type(exc).__name__}: {exc}") from exc
