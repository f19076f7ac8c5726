from __future__ import annotations

import base64
import json

import pytest

from gatewaycerts.keyvault import (
    KeyEncryptionKey,
    KeyVault,
    KeyVaultError,
    envelope_kek_id,
    new_kek_line,
    parse_envelope,
    parse_keks,
)


def test_round_trip_is_bound_to_its_record():
    vault = KeyVault(parse_keks(new_kek_line("k1")))
    blob = vault.encrypt(b"-----BEGIN PRIVATE KEY-----secret", context="p1:c1")
    assert b"secret" not in blob and b"PRIVATE" not in blob
    assert vault.decrypt(blob, context="p1:c1") == b"-----BEGIN PRIVATE KEY-----secret"
    with pytest.raises(KeyVaultError):
        vault.decrypt(blob, context="p2:c1")


def test_rotation_keeps_old_records_readable():
    old = new_kek_line("k1")
    blob = KeyVault(parse_keks(old)).encrypt(b"data", context="x")
    rotated = KeyVault(parse_keks(old + "\n" + new_kek_line("k2")))
    assert rotated.active_kek_id == "k2" and rotated.kek_id_of(blob) == "k1"
    assert rotated.decrypt(blob, context="x") == b"data"
    rewrapped = rotated.rewrap(blob, context="x")
    assert rotated.kek_id_of(rewrapped) == "k2"
    with pytest.raises(KeyVaultError, match="not configured"):
        KeyVault(parse_keks(new_kek_line("k3"))).decrypt(blob, context="x")


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "nocolon",
        "k1:!!!",
        f"k1:{base64.b64encode(b'short').decode()}",
        # a named id: the random keys would make the test id differ from one collection to the next (which
        # pytest-xdist refuses: its workers must collect the same ids)
        pytest.param(f"{new_kek_line('k1')},{new_kek_line('k1')}", id="k1 twice"),
        f"bad id:{base64.b64encode(bytes(32)).decode()}",
    ],
)
def test_bad_kek_specs_fail_clearly(spec):
    with pytest.raises(KeyVaultError):
        parse_keks(spec)


def test_kek_repr_hides_key():
    kek = parse_keks(new_kek_line("k1"))[0]
    assert base64.b64encode(kek.key).decode() not in repr(kek)


def test_kek_ids_in_order_the_last_wraps():
    vault = KeyVault(parse_keks(f"{new_kek_line('old')}\n# retired soon\n{new_kek_line('new')}"))
    assert vault.kek_ids == ("old", "new") and vault.active_kek_id == "new"
    assert vault.kek_id_of(vault.encrypt(b"x", context="c")) == "new"


def test_rewrap_moves_an_envelope_to_the_active_kek_and_keeps_its_binding():
    old = new_kek_line("k1")
    blob = KeyVault(parse_keks(old)).encrypt(b"data", context="p1:c1")
    both = KeyVault(parse_keks(old + "\n" + new_kek_line("k2")))
    rewrapped = both.rewrap(blob, context="p1:c1")
    assert rewrapped != blob and envelope_kek_id(rewrapped) == "k2"
    assert both.decrypt(rewrapped, context="p1:c1") == b"data"
    with pytest.raises(KeyVaultError):
        both.rewrap(blob, context="p2:c1")  # a rotation cannot move an envelope onto another record


@pytest.mark.parametrize(
    ("blob", "kek_id"),
    [
        (None, ""),
        (b"", ""),
        (b'{"v":1}\x00\xff', ""),
        (b'{"v":1}', ""),
        (b'{"kek": 7}', ""),
        (b"[1]", ""),
        (b'{"v":1,"kek":"k9"}', "k9"),
    ],
)
def test_envelope_kek_id_labels_what_stores_index(blob, kek_id):
    assert envelope_kek_id(blob) == kek_id


@pytest.mark.parametrize("kek_id", ["k1", "kek-2026.01_a", "x" * 32, 'odd"id', "odd\\id", "ключ"])
def test_an_envelope_is_the_json_of_its_fields_and_its_label_the_json_reading(kek_id):
    """encrypt() writes the envelope's text directly and envelope_kek_id() reads its head: both must be exactly
    what json.dumps writes and json.loads reads, for any KEK id (those parse_keks refuses go the json way)."""
    vault = KeyVault([KeyEncryptionKey(kek_id, bytes(32))])
    for plaintext in (b"", b"x", b"-----BEGIN PRIVATE KEY-----\n" + bytes(range(256)) * 8):
        blob = vault.encrypt(plaintext, context="p1:c1")
        fields = json.loads(blob)
        assert blob == json.dumps(fields, separators=(",", ":")).encode("ascii")
        assert list(fields) == ["v", "alg", "kek", "wn", "wk", "n", "ct"] and fields["kek"] == kek_id
        assert envelope_kek_id(blob) == kek_id == vault.kek_id_of(blob)
        assert vault.decrypt(blob, context="p1:c1") == plaintext


@pytest.mark.parametrize(
    ("blob", "kek_id"),
    [
        # the head encrypt() writes, then what json.loads reads otherwise
        (b'{"v":1,"alg":"AES-256-GCM","kek":"k1","kek":"k2","ct":"x"}', "k2"),
        (b'{"v":1,"alg":"AES-256-GCM","kek":"k1","\\u006bek":"k2","ct":"x"}', "k2"),
        (b'{"v":1,"alg":"AES-256-GCM","kek":"k1","ct":"x"} ', "k1"),
        (b'{"v":1,"alg":"AES-256-GCM","kek":"k1","ct":"x"}', "k1"),
        (b'{"v":1,"alg":"AES-256-GCM","kek":"k1"', ""),
    ],
)
def test_envelope_kek_id_reads_the_head_only_when_json_agrees(blob, kek_id):
    assert envelope_kek_id(blob) == kek_id


def test_a_kept_parse_opens_only_what_the_envelope_opens():
    old = new_kek_line("k1")
    vault = KeyVault(parse_keks(old))
    blob = vault.encrypt(b"ca key", context="p1:ca1")
    assert parse_envelope(blob) == KeyVault.parse(blob) and parse_envelope(blob) is parse_envelope(blob)
    assert vault.open(parse_envelope(blob), context="p1:ca1") == b"ca key"
    with pytest.raises(KeyVaultError):  # still bound to its record
        vault.open(parse_envelope(blob), context="p2:ca1")
    rotated = KeyVault(parse_keks(old + "\n" + new_kek_line("k2")))
    rewrapped = rotated.rewrap(blob, context="p1:ca1")
    assert parse_envelope(rewrapped).kek_id == "k2"  # keyed by the text: a rewrapped envelope is parsed anew
    assert rotated.open(parse_envelope(rewrapped), context="p1:ca1") == b"ca key"
    with pytest.raises(KeyVaultError, match="malformed"):
        parse_envelope(b"not an envelope")
