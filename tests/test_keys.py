"""Multikey key files: the W3C vector key, round trips, file modes, malformed keys, demo keys."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from pathlib import Path

import pytest
from batterytrace.credentials.errors import KeyFormatError
from batterytrace.credentials.keys import (
    Ed25519Key,
    InsecureKeyFileWarning,
    decode_public_multibase,
    decode_secret_multibase,
    encode_secret_multibase,
    load_key_file,
    write_key_file,
)
from conftest import ROOT, W3C, load_json

VECTOR_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_w3c_key_pair_reads_private_key_multibase():
    key = Ed25519Key.from_multikey(load_json(W3C / "vc-di-eddsa" / "keyPair.json"))
    assert key.public_multibase == VECTOR_PUBLIC
    assert key.did_key == "did:key:" + VECTOR_PUBLIC
    assert key.verification_method == f"did:key:{VECTOR_PUBLIC}#{VECTOR_PUBLIC}"


def test_multikey_round_trip_and_signatures():
    key = Ed25519Key.from_seed(b"\x11" * 32)
    doc = key.to_multikey()
    assert doc["type"] == "Multikey" and doc["controller"] == key.did_key
    assert decode_secret_multibase(doc["secretKeyMultibase"]) == b"\x11" * 32
    again = Ed25519Key.from_multikey(doc)
    assert (again.seed, again.public_key, again.controller) == (
        key.seed,
        key.public_key,
        key.did_key,
    )
    signature = key.sign(b"message")
    assert again.verify(signature, b"message") and not again.verify(signature, b"other")
    public_only = Ed25519Key.from_multikey(key.to_multikey(include_secret=False))
    assert public_only.seed is None and public_only.verify(signature, b"message")
    with pytest.raises(KeyFormatError):
        public_only.sign(b"message")


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {},
        {"publicKeyMultibase": "6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"},
        {"publicKeyMultibase": "z0000"},
        {"secretKeyMultibase": encode_secret_multibase(b"\x01" * 32)[:-3]},
        {"secretKeyMultibase": "z" + VECTOR_PUBLIC[1:]},  # a public key where a secret goes
        {  # secret and public of different keys
            "secretKeyMultibase": encode_secret_multibase(b"\x01" * 32),
            "publicKeyMultibase": VECTOR_PUBLIC,
        },
    ],
)
def test_malformed_multikeys(doc):
    with pytest.raises(KeyFormatError):
        Ed25519Key.from_multikey(doc)


def test_key_file_mode_and_insecure_warning(tmp_path: Path):
    path = tmp_path / "k.json"
    key = Ed25519Key.generate()
    write_key_file(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_key_file(path).seed == key.seed
    os.chmod(path, 0o644)
    with pytest.warns(InsecureKeyFileWarning):
        load_key_file(path)
    path.write_text("{not json")
    with pytest.raises(KeyFormatError):
        load_key_file(path)
    with pytest.raises(KeyFormatError):
        load_key_file(tmp_path / "missing.json")


def test_demo_keys_derive_from_their_public_seeds():
    folder = ROOT / "keys_example"
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 18
    assert "PUBLIC AND INSECURE" in (folder / "README.md").read_text()
    for file in files:
        doc = json.loads(file.read_text())
        seed = hashlib.sha256(b"batterytrace-demo:" + file.stem.encode()).digest()
        assert Ed25519Key.from_multikey(doc) == Ed25519Key.from_seed(
            seed, doc["controller"], doc["id"]
        ), file.name
        assert (
            decode_public_multibase(doc["publicKeyMultibase"])
            == Ed25519Key.from_seed(seed).public_key
        )
    assert {"admin.json", "log.json", "mine-kolwezi.json", "auditor-irma.json"} <= {
        f.name for f in files
    }
