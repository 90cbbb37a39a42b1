"""Time and quantity that signers cannot set: an event dated after the ledger received it
(beyond `maxEventTimeAheadHours`, default 24 h) and a quantity above `maxQuantityKg` are
refused at append (library, CLI and HTTP) and by the offline bundle verifier, nothing appended
on refusal (issues 18 and 19)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import typer
from batterytrace.api import cli_custody
from batterytrace.api.settings import Settings
from batterytrace.credentials.errors import BatterytraceError
from batterytrace.credentials.keys import write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.custody_errors import EventTimeAheadError, QuantityImplausibleError
from batterytrace.ledger.log import Ledger, Submission
from batterytrace.ledger.settings import SettingsError
from batterytrace.ledger.validators import validators_for
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.trust import TrustConfig, TrustedLedger
from custody_factory import (
    ADMIN_KEY,
    PUBLIC_URL,
    extraction,
    lot_id,
    signed_credential,
    standard_registry_docs,
)
from test_api_support import api_client, assert_problem, make_home
from typer.testing import CliRunner


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mined(lot: str, kg: float = 1000, when: str | None = None) -> dict:
    event = extraction("kolwezi-mine", lot, kg, {"Co": 0.3})
    if when is not None:
        event["eventTime"] = when
    return signed_credential("miner", [event])


@pytest.fixture
def ledger(tmp_path, database_url):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, database_url, "ledger.example/time", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    yield led
    led.close()


def test_an_event_dated_after_the_receipt_is_refused(ledger):
    size = ledger.size
    with pytest.raises(EventTimeAheadError) as caught:
        ledger.append([Submission("event", _mined("ahead", when=_at(timedelta(days=3))))])
    assert caught.value.code == "EVENT_TIME_AHEAD"
    assert "maxEventTimeAheadHours" in caught.value.message
    assert ledger.size == size
    # Within the default 24 h of clock skew: accepted.
    ledger.append([Submission("event", _mined("skewed", when=_at(timedelta(hours=20))))])
    assert ledger.size == size + 1


def test_the_allowed_skew_is_a_setting_in_a_closed_range(ledger):
    ledger.update_settings({"maxEventTimeAheadHours": 0})
    with pytest.raises(EventTimeAheadError):
        ledger.append([Submission("event", _mined("soon", when=_at(timedelta(hours=1))))])
    ledger.append([Submission("event", _mined("now", when=_at(timedelta(minutes=-1))))])
    for bad in (-1, 169, "a week"):
        with pytest.raises(SettingsError):
            ledger.update_settings({"maxEventTimeAheadHours": bad})


def test_the_quantity_bound_is_a_setting_that_can_only_be_lowered(ledger):
    ledger.append([Submission("event", _mined("big", kg=900_000))])  # under the 1e9 kg default
    ledger.update_settings({"maxQuantityKg": 50_000})
    size = ledger.size
    with pytest.raises(QuantityImplausibleError) as caught:
        ledger.append([Submission("event", _mined("too-big", kg=60_000))])
    assert "maxQuantityKg" in caught.value.message
    assert ledger.size == size
    ledger.append([Submission("event", _mined("fine", kg=40_000))])
    with pytest.raises(SettingsError):  # above the fixed ceiling: no admin can raise it
        ledger.update_settings({"maxQuantityKg": 2e9})


def test_a_log_whose_operator_let_a_future_event_in_fails_offline(ledger, tmp_path):
    """A hand-made log: the validator's clock was set 5 years ahead, so an event dated 2 years
    after its receipt went in. The bundle verifier judges eventTime against each entry's
    receipt and refuses it."""
    ledger.validators["event"].clock = lambda: _at(timedelta(days=5 * 365))
    ledger.append([Submission("event", _mined("backdated", when=_at(timedelta(days=730))))])
    out = io.BytesIO()
    export_bundle(ledger, out, lot=lot_id("backdated"))
    info = ledger.info()
    trust = TrustConfig(ledgers=(TrustedLedger(info["origin"], info["verifierKey"]),))
    report = verify_bundle(out.getvalue().splitlines(keepends=True), trust)
    assert not report.ok
    assert any(f.code == "EVENT_TIME_AHEAD" for f in report.failures), report.failures


def test_cli_event_append_refuses_a_future_event(tmp_path):
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    write_key_file(ADMIN_KEY, home / "keys" / "admin.json")
    led = Ledger.init(home, None, "ledger.example/cli-time", PUBLIC_URL)
    led.validators.update(validators_for(led))
    led.append([Submission("registry", d) for d in standard_registry_docs()])
    size = led.size
    led.close()
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Settings.resolve(home)

    cli_custody.register(app)
    document = tmp_path / "event.json"
    document.write_text(json.dumps(_mined("cli-ahead", when=_at(timedelta(days=30)))))
    result = CliRunner().invoke(app, ["event", "append", str(document)])
    error = result.exception
    assert isinstance(error, BatterytraceError) and error.code == "EVENT_TIME_AHEAD"
    assert error.exit_code == 1
    assert Ledger.open(home).size == size


def test_http_refuses_a_future_event(tmp_path):
    home = make_home(tmp_path, None)
    with api_client(home, None) as client:
        before = client.get("/log").json()["size"]
        response = client.post("/events", json=_mined("http-ahead",
                                                      when=_at(timedelta(days=30))))
        assert_problem(response, 422, "EVENT_TIME_AHEAD")
        assert client.get("/log").json()["size"] == before
        # The same event dated now goes in: it was refused for its time, nothing else.
        assert client.post("/events", json=_mined("http-now")).status_code == 201
