"""`trust import-registry`: a B.C. Digital Trust issuer registry (its published shape, the
sample in ../shared/domain/samples/bcgov) into trust file entries, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batterytrace.credentials.base58 import b58decode
from batterytrace.credentials.keys import encode_public_multibase
from batterytrace.verifier.trust import TrustConfig, did_document_sha256, load_trust, write_trust
from batterytrace.verifier.trust_registry import (
    IssuerRegistryError,
    import_registry,
    read_registry,
)

BCGOV = Path(__file__).resolve().parents[2] / "shared" / "domain" / "samples" / "bcgov"
REGISTRY = json.loads((BCGOV / "issuer-registrations-prod.json").read_text())
MMO = json.loads((BCGOV / "major-mines-office.did.json").read_text())


def test_the_published_registry_reads() -> None:
    [issuer] = read_registry(REGISTRY)
    assert issuer.did.startswith("did:web:registry.digitaltrust.gov.bc.ca:")
    assert issuer.scope == "Mines Act"


def test_issuers_without_their_document_are_skipped_with_where_to_fetch_it() -> None:
    result = import_registry(TrustConfig(), REGISTRY, [])
    assert result.imported == () and result.config == TrustConfig()
    [(_, reason)] = result.skipped
    assert ("https://registry.digitaltrust.gov.bc.ca/mines-act/chief-permitting-officer/"
            "did.json") in reason


def test_an_issuer_with_its_document_is_pinned_and_may_be_a_root() -> None:
    registry = {"issuers": [*REGISTRY["issuers"],
                            {"id": MMO["id"], "name": "Major Mines Office", "scope": "Mines Act"}]}
    result = import_registry(TrustConfig(), registry, [MMO], as_roots=True)
    assert [i.did for i in result.imported] == [MMO["id"]]
    assert len(result.skipped) == 1
    result.config.check_pinned(MMO["id"], MMO)  # the pin accepts exactly this document
    pin = result.config.pinned(MMO["id"])
    assert pin is not None and pin.sha256 == did_document_sha256(MMO)
    root = result.config.governance_root(MMO["id"])
    key = b58decode(MMO["verificationMethod"][0]["publicKeyBase58"])
    assert root is not None and root.keys == (encode_public_multibase(key),)
    assert root.name == "Major Mines Office (Mines Act)"


@pytest.mark.parametrize("bad", [[], {}, {"issuers": {}}, {"issuers": [{"id": "x"}]},
                                 {"issuers": [{"id": "did:web:a", "name": 3}]}])
def test_malformed_registries_are_refused(bad: object) -> None:
    with pytest.raises(IssuerRegistryError):
        read_registry(bad)


def test_cli_import_registry(tmp_path: Path) -> None:
    from batterytrace.api.cli import app
    from typer.testing import CliRunner

    trust = tmp_path / "trust.toml"
    write_trust(TrustConfig(), trust)
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"issuers": [
        *REGISTRY["issuers"], {"id": MMO["id"], "name": "[bold]MMO[/]", "scope": "Mines Act"}]}))
    result = CliRunner().invoke(app, ["trust", "import-registry", str(registry), "--trust",
                                      str(trust), "--did-document",
                                      str(BCGOV / "major-mines-office.did.json"), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    out = json.loads(result.output)
    assert out["imported"] == [MMO["id"]] and len(out["skipped"]) == 1
    assert load_trust(trust).pinned(MMO["id"]) is not None
