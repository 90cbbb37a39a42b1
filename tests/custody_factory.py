"""Builders of valid custody test data: registry documents and signed UNTP DTE credentials.

A thin layer over `batterytrace.api.demo_builders` (the one implementation), bound to the test
ledger's public URL and to test keys derived from names (public, insecure, for tests and
benches only). A `Network` is the engine's replay in memory: documents signed and applied
without a database; the same documents append through the Ledger in the integration tests.

    net = Network.standard()            # miner, trader, refiner, ... with their facilities
    net.apply(credential("miner", [extraction("kolwezi-mine", "ore-1", 1000, {"Co": 0.1})]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batterytrace.api import demo_lifecycle
from batterytrace.api.demo_builders import (  # noqa: F401 (re-exported for the tests)
    CREATED,
    STANDARD_PARTICIPANTS,
    Builders,
    digest_of,
    event_id,
    item_id,
    item_ref,
    lot_id,
    quantity,
)
from batterytrace.api.demo_lifecycle import NMC811  # noqa: F401 (re-exported for the tests)
from batterytrace.api.demo_network import MemoryNetwork
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.validators import validators_for

PUBLIC_URL = "https://ledger.example"
BUILDERS = Builders(PUBLIC_URL, "batterytrace-test", STANDARD_PARTICIPANTS)

key_for = BUILDERS.key_for
ADMIN_KEY = BUILDERS.admin_key
did_for = BUILDERS.did_for
facility_id = BUILDERS.facility_id
sign_admin = BUILDERS.sign_admin
sign_as = BUILDERS.sign_as
participant_doc = BUILDERS.participant_doc
facility_doc = BUILDERS.facility_doc
standard_registry_docs = BUILDERS.registry_docs
extraction = BUILDERS.extraction
transformation = BUILDERS.transformation
shipping = BUILDERS.shipping
receiving = BUILDERS.receiving
assembly = BUILDERS.assembly
observation = BUILDERS.observation
credential = BUILDERS.credential
signed_credential = BUILDERS.signed_credential


class Network(MemoryNetwork):
    """The in-memory network of the test builders (`Network.standard()` registers
    STANDARD_PARTICIPANTS)."""

    builders = BUILDERS


def lifecycle() -> list[tuple[str, str, dict[str, Any]]]:
    """(stage, issuer, event) for every stage of REQUIREMENTS 3.3 (docs/events.md)."""
    return demo_lifecycle.lifecycle(BUILDERS)


def registered_ledger(home: Path, database_url: str | None, *, rules: bool = True,
                      origin: str = "ledger.example/test") -> Ledger:
    """A new ledger in `home` holding the standard registry (participants and facilities),
    with the custody rules as validators unless `rules` is False."""
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, database_url, origin, PUBLIC_URL)
    if rules:
        led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    return led
