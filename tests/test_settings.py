"""Ledger settings: a closed list with a type and range per key, enforced at append (the
ledger's settings validator) and at every replay (the engine), nothing appended on refusal."""

from __future__ import annotations

import pytest
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.engine import Replay
from batterytrace.ledger.log import Ledger
from batterytrace.ledger.settings import SETTINGS, SettingsError, check_settings_document
from batterytrace.ledger.validators import validators_for
from custody_factory import ADMIN_KEY, PUBLIC_URL, sign_admin
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture
def ledger(tmp_path, database_url):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, database_url, "ledger.example/settings", PUBLIC_URL)
    led.validators.update(validators_for(led))
    yield led
    led.close()


@pytest.mark.parametrize("values", [
    {"evil": 1},  # not a setting
    {"massBalanceTolerance": 1000},  # out of range: would let a transformation create metal
    {"massBalanceTolerance": -0.01},
    {"massBalanceTolerance": "NaN"},
    {"massBalanceTolerance": True},
    {"massBalanceTolerance": [0.01]},
    {"massBalanceTolerance": 0.01, "evil": 1},  # one bad key refuses the whole document
])
def test_unknown_or_out_of_range_settings_are_refused_and_nothing_is_appended(ledger, values):
    size = ledger.size
    with pytest.raises(SettingsError) as caught:
        ledger.update_settings(values)
    assert caught.value.code == "SETTINGS_INVALID"
    assert ledger.size == size
    assert ledger.settings_at(ledger.size) == {}


def test_a_known_setting_in_range_is_appended_and_in_force(ledger):
    seq = ledger.update_settings({"massBalanceTolerance": "0.02"}).seq
    assert ledger.settings_at(seq) == {"massBalanceTolerance": "0.02"}


def test_the_replay_refuses_what_the_append_refuses():
    """An entry that reached the log without the validator (another implementation, a
    forged store) is refused by every replay: the engine checks settings too."""
    replay = Replay()
    replay.apply(0, "genesis", {"adminKey": ADMIN_KEY.did_key, "publicUrl": PUBLIC_URL})
    bad = sign_admin({"type": "LedgerSettings", "settings": {"massBalanceTolerance": 1000}})
    with pytest.raises(SettingsError):
        replay.apply(1, "settings", bad)
    good = sign_admin({"type": "LedgerSettings", "settings": {"massBalanceTolerance": 0.03}})
    replay.apply(2, "settings", good)
    assert str(replay.started()[1].tolerance) == "0.03"


@given(st.text(min_size=1, max_size=40).filter(lambda k: k not in SETTINGS),
       st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5)))
def test_every_unknown_key_is_refused(name, value):
    with pytest.raises(SettingsError):
        check_settings_document({"type": "LedgerSettings", "settings": {name: value}})


def test_quantity_bounds_are_fixed_and_documented():
    """The plausibility bounds are no setting an admin could raise; docs/formats.md states them."""
    from pathlib import Path

    from batterytrace.ledger.events import KG_PER_UNIT
    from batterytrace.ledger.settings import MAX_QUANTITY

    with pytest.raises(SettingsError):
        check_settings_document({"type": "LedgerSettings", "settings": {"maxQuantity": 1e300}})
    assert set(MAX_QUANTITY) == set(KG_PER_UNIT)  # every counted unit has a bound
    assert {MAX_QUANTITY[u] * KG_PER_UNIT[u] for u in MAX_QUANTITY} == {10**9}  # 1e6 t each
    text = (Path(__file__).parent.parent / "docs" / "formats.md").read_text()
    assert "QUANTITY_IMPLAUSIBLE" in text and "settings.MAX_QUANTITY" in text
