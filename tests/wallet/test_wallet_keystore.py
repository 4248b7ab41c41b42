"""Keystore v3 files: create, import, list, unlock, and every way it must refuse."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from agentbazaar.config import load_config
from agentbazaar.errors import (
    BadPassphrase,
    InputError,
    KeystoreTampered,
    UnknownWallet,
    WalletError,
    WalletExists,
)
from agentbazaar.wallet import KeyStore, open_wallet
from agentbazaar.wallet.keystore import STANDARD_SCRYPT_N, scrypt_n


def test_create_unlock_and_list(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    address = store.create("alice", "pw")
    path = store.path("alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert data["crypto"]["kdfparams"]["n"] == 1024  # BAZAAR_SCRYPT_N from the test fixture
    assert store.unlock("alice", "pw").address == address
    assert store.address_of("alice", "pw") == address
    store.create("bob", "pw")
    assert [n for n, _ in store.wallets("pw")] == ["alice", "bob"]
    assert not list(path.parent.glob("*.tmp"))


def test_refusals(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.create("alice", "pw")
    with pytest.raises(WalletExists):
        store.create("alice", "other")
    with pytest.raises(BadPassphrase):
        store.unlock("alice", "wrong")
    with pytest.raises(UnknownWallet):
        store.address_of("nobody", "pw")
    for bad in ("Alice", "a b", "", "x" * 33, "../etc"):
        with pytest.raises(InputError):
            store.create(bad, "pw")
    with pytest.raises(BadPassphrase):
        store.create("carol", "")


def test_import_key_and_keystore_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    acct = Account.create()
    assert store.import_key("imported", acct.key.hex(), "pw") == acct.address
    assert store.unlock("imported", "pw").key == acct.key
    for bad in ("0x1234", "zz" * 32, "00" * 32):
        with pytest.raises(InputError) as err:
            store.import_key("bad", bad, "pw")
        assert bad not in str(err.value)  # a key is never echoed
    other = Account.create()
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(Account.encrypt(other.key, "theirs", kdf="pbkdf2")))
    with pytest.raises(BadPassphrase):
        store.import_keystore("foreign", foreign, "wrong", "pw")
    assert store.import_keystore("foreign", foreign, "theirs", "pw") == other.address
    assert json.loads(store.path("foreign").read_text())["crypto"]["kdf"] == "scrypt"
    assert store.unlock("foreign", "pw").address == other.address


def test_scrypt_cost_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scrypt_n({}) == STANDARD_SCRYPT_N == 262_144
    assert scrypt_n({"BAZAAR_SCRYPT_N": "16384"}) == 16_384
    for bad in ("1000", "512", "x"):
        with pytest.raises(WalletError):
            scrypt_n({"BAZAAR_SCRYPT_N": bad})


def test_open_wallet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(tmp_path / "home", env={})
    address = KeyStore(cfg.keystore_dir).create("alice", "secret")
    monkeypatch.setenv("BAZAAR_PASSPHRASE", "secret")
    wallet = open_wallet(cfg, "alice")
    assert wallet.address == address == wallet.account_for_deploy().address
    assert "secret" not in repr(wallet) and wallet.account_for_deploy().key.hex() not in repr(
        wallet
    )
    with pytest.raises(BadPassphrase):
        open_wallet(cfg, "alice", "nope")
    with pytest.raises(UnknownWallet):
        open_wallet(cfg, "bob")
    monkeypatch.delenv("BAZAAR_PASSPHRASE")
    assert open_wallet(cfg, "alice", prompt=lambda _: "secret").address == address


def _rewrite_address(path: Path, address: str) -> None:
    data = json.loads(path.read_text())
    data["address"] = address.removeprefix("0x")
    path.write_text(json.dumps(data))


def test_tampered_address_field_is_refused(tmp_path: Path) -> None:
    """Rewriting only the plain address (ciphertext and MAC untouched) redirects nothing."""
    store = KeyStore(tmp_path / "keys")
    real = store.create("bob", "pw")
    attacker = Account.create().address
    _rewrite_address(store.path("bob"), attacker)
    with pytest.raises(KeystoreTampered) as info:
        store.address_of("bob", "pw")
    assert str(store.path("bob")) in str(info.value)
    with pytest.raises(KeystoreTampered):
        store.wallets("pw")
    with pytest.raises(KeystoreTampered):
        store.unlock("bob", "pw")
    _rewrite_address(store.path("bob"), real)  # restored: resolves again, to the real key
    assert store.address_of("bob", "pw") == real
    assert store.unlock("bob", "pw").address == real


def test_replaced_keystore_file_is_refused(tmp_path: Path) -> None:
    """A whole other keystore put in place of a wallet's file does not take over its name."""
    store = KeyStore(tmp_path / "keys")
    store.create("bob", "pw")
    other = KeyStore(tmp_path / "other")
    other.create("mallory", "pw")
    store.path("bob").write_text(other.path("mallory").read_text())
    with pytest.raises(KeystoreTampered):
        store.address_of("bob", "pw")


def test_file_without_book_entry_is_checked_at_unlock(tmp_path: Path) -> None:
    """A keystore copied in by hand: its field is checked against its key at the first unlock,
    then the book guards it."""
    src = KeyStore(tmp_path / "src")
    real = src.create("carol", "pw")
    store = KeyStore(tmp_path / "keys")
    store.dir.mkdir(parents=True)
    store.path("carol").write_text(src.path("carol").read_text())
    _rewrite_address(store.path("carol"), Account.create().address)
    with pytest.raises(KeystoreTampered):
        store.unlock("carol", "pw")
    store.path("carol").write_text(src.path("carol").read_text())
    assert store.unlock("carol", "pw").address == real
    _rewrite_address(store.path("carol"), Account.create().address)
    with pytest.raises(KeystoreTampered):
        store.address_of("carol", "pw")
