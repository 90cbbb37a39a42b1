"""`batterytrace demo`: the example network, mine to recycler and back, on embedded SQLite.

Reproducible: every key comes from `keys_example/` (public, insecure demo keys), every event from
`api/demo_story.py` and every credential from `api/demo_credentials.py`. The run builds the
ledger, verifies it, issues the accredited credentials, exports the first-life pack's bundle,
verifies it offline against the demo's trust file, prints its provenance, checks it against the
EU 2031 rules (one rule fails, on purpose) and shows a tampered bundle rejected. Two witnesses
cosign its checkpoint, the log is published as C2SP tiles, and a split view is caught
(`api/demo_transparency.py`). Expected
failures are part of the script: the demo itself exits 0.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from importlib import resources
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batterytrace.credentials.credential_types import build_credential
from batterytrace.credentials.data_integrity import parse_date_time
from batterytrace.credentials.errors import InputError
from batterytrace.credentials.keys import load_key_file, write_key_file
from batterytrace.ledger.bundle_export import export_bundle
from batterytrace.ledger.credential_store import CredentialStore
from batterytrace.ledger.log import Ledger, Submission, verify_ledger
from batterytrace.verifier.bundle import iter_file_lines
from batterytrace.verifier.bundle_verify import verify_bundle
from batterytrace.verifier.policy import evaluate_policy, load_policy
from batterytrace.verifier.provenance import render_provenance, trace_provenance
from batterytrace.verifier.trust import (
    GovernanceRoot,
    TrustConfig,
    TrustedLedger,
    load_trust,
    write_trust,
)
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from .demo_builders import DEMO, DEMO_PARTICIPANTS, PUBLIC_URL, item_id, key_for
from .demo_credentials import (
    ACCREDITED_TYPES,
    OFF_LEDGER_ISSUERS,
    accreditation,
    demo_issuances,
    party,
)
from .demo_story import PACK_1, story
from .demo_transparency import split_view, witness_and_publish
from .passport_untp import PASSPORT_TYPE, passport_with_untp_blocks

KEYS_EXAMPLE = Path(__file__).resolve().parent.parent / "keys_example"
ORIGIN = "demo.batterytrace.dev/ledger"
POLICY = "eu-2023-1542"
POLICY_DATE = "2031-09-01"
SUBJECT = item_id(PACK_1)


def _key(name: str) -> Any:
    """A demo key: the keys_example/ file when the repository is there, else its seed."""
    path = KEYS_EXAMPLE / f"{name}.json"
    if not path.exists():
        return key_for(name)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # git keeps no file modes; these keys are public demo keys anyway
    return load_key_file(path)


def _place_keys(home: Path) -> None:
    """The demo runs with the example keys (operator and participants), so it is
    reproducible; the home keeps them for the commands a user runs next."""
    keys = home / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    names = ["admin", "log", *DEMO_PARTICIPANTS, *OFF_LEDGER_ISSUERS]
    for name in names:
        target = keys / f"{name}.json"
        if target.exists():
            continue
        source = KEYS_EXAMPLE / f"{name}.json"
        if source.exists():
            shutil.copyfile(source, target)
        else:  # an installed package without the repository's keys_example/
            write_key_file(key_for(name), target)
        target.chmod(0o600)


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class StoryClock:
    """The demo ledger's receipt clock: the story's time, not the wall clock.

    The story follows a pack from the mines (2026) through second life to recycling (2039).
    A ledger refuses an event dated after its receipt (EVENT_TIME_AHEAD), so the demo's
    ledger receives each chapter when the chapter happens, as a real ledger would have; the
    clock moves forward only (`advance`). Signers keep the real clock: a proof's `created` is
    when it was signed, and verifiers refuse one from the future."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, moment: datetime) -> None:
        self.now = max(self.now, moment)

    def __call__(self) -> str:
        return self.now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def story_span() -> tuple[datetime, datetime]:
    """The first and last eventTime of the story."""
    times = [parse_date_time(event["eventTime"]) for step in story() for event in step.events]
    return min(times), max(times)


def _build_ledger(home: Path, console: Console, clock: StoryClock) -> None:
    if (home / "checkpoint.txt").exists():
        raise InputError(f"{home} already holds a ledger: give an empty --demo-home")
    _place_keys(home)
    Ledger.init(home, None, origin=ORIGIN, public_url=PUBLIC_URL).close()
    ledger = Ledger.open(home, clock=clock)
    try:
        CredentialStore(ledger)  # installs the custody and anchor validators
        registry = DEMO.registry_docs()
        ledger.append([Submission("registry", doc) for doc in registry])
        console.print(f"registered {len(DEMO_PARTICIPANTS)} participants and their "
                      f"facilities ({len(registry)} admin-signed entries)")
        table = Table("chapter", "entries", "events", "signed by",
                      title="custody events, mines to a second pack (one batch per chapter)")
        for chapter, group in groupby(story(), key=lambda step: step.chapter):
            steps = list(group)
            clock.advance(max(parse_date_time(e["eventTime"]) for s in steps for e in s.events)
                          + timedelta(hours=1))
            results = ledger.append([
                Submission("event", DEMO.signed_credential(s.issuer, s.events))
                for s in steps])
            signers = sorted({DEMO_PARTICIPANTS[s.issuer][0] for s in steps})
            table.add_row(chapter, f"{results[0].seq}-{results[-1].seq}",
                          str(sum(len(s.events) for s in steps)), ", ".join(signers))
        console.print(table)
    finally:
        ledger.close()


def _verify_ledger(home: Path, console: Console) -> None:
    summary, _ = verify_ledger(home)
    console.print(
        f"[green]VERIFIED[/] ledger: {summary.size} entries, every link and leaf, root "
        f"{summary.root.hex()[:16]}... matches the signed checkpoint"
    )


def _issue_credentials(home: Path, console: Console, clock: StoryClock) -> None:
    """Accreditations (governance root -> accreditation body -> issuers), then the domain
    credentials; each stored off the log, anchored, with revocation and suspension entries in
    its issuer's status lists, which are then published. They are issued after the story and
    valid from its start (the events rely on them) to some years after its end."""
    first, last = story_span()
    valid_from = _timestamp(first - timedelta(days=1))
    clock.advance(last + timedelta(days=1))

    def until(years: int) -> str:
        return _timestamp(last + timedelta(days=365 * years))

    ledger = Ledger.open(home, clock=clock)
    try:
        store = CredentialStore(ledger)
        chain = [accreditation(DEMO, "governance", "accreditation-body",
                               sorted({t for ts in ACCREDITED_TYPES.values() for t in ts}),
                               may_accredit=True, valid_from=valid_from,
                               valid_until=until(10))]
        for accredited, types in ACCREDITED_TYPES.items():
            chain.append(accreditation(DEMO, "accreditation-body", accredited, types,
                                       may_accredit=False, valid_from=valid_from,
                                       valid_until=until(5)))
        accreditations = [store.issue(doc, _key(issuer))[0] for doc, issuer in
                          zip(chain, ["governance"] + ["accreditation-body"] * (len(chain) - 1),
                              strict=True)]
        table = Table("credential", "about", "issuer", "log position",
                      title="credentials (stored off the log, anchored, with status entries)")
        for doc in accreditations:
            table.add_row("AccreditationCredential", _short(doc["credentialSubject"]["id"]),
                          _short(doc["issuer"]), "anchored")
        issuances = demo_issuances()
        # The passports last: their UNTP blocks come from each pack's bundle, verified, with
        # every other credential in it (and its status list published).
        for passports in (False, True):
            for issuance in issuances:
                if (issuance.type_name == PASSPORT_TYPE) != passports:
                    continue
                issuer = party(DEMO, issuance.issuer)
                unsigned = build_credential(
                    issuance.type_name, issuance.subject, issuer=issuer["id"],
                    issuer_name=issuer["name"], valid_from=valid_from,
                    valid_until=until(issuance.years))
                if passports:
                    unsigned = passport_with_untp_blocks(unsigned, _own_trust(ledger),
                                                         ledger=ledger, policy=POLICY)
                # a passport's list is published at once: the next pack's bundle may hold it
                [(_, result)] = store.issue_many([unsigned], _key(issuance.issuer),
                                                 publish_status=passports)
                detail = issuance.subject.get("achievementLevel", "")
                table.add_row(issuance.type_name + (f" ({detail})" if detail else ""),
                              _short(issuance.subject["id"]), issuer["name"], str(result.seq))
            lists = store.status_lists()
            for row in lists if not passports else ():
                store.publish_status_list(row["url"], _key(_issuer_name(row["issuer"])))
        console.print(table)
        console.print(f"published {len(lists)} status lists (revocation and suspension, per "
                      "issuer); each passport carries UNTP blocks from its pack's verified "
                      "bundle")
    finally:
        ledger.close()


def _own_trust(ledger: Ledger, witnesses: tuple[str, ...] = ()) -> TrustConfig:
    """The demo's trust: the ledger's checkpoint key, its witnesses (all must cosign) and the
    governance root. Never taken from a bundle."""
    info = ledger.info()
    root = key_for("governance")
    return TrustConfig(
        ledgers=(TrustedLedger(info["origin"], info["verifierKey"], witnesses,
                               len(witnesses)),),
        governance_roots=(GovernanceRoot(root.did_key, (root.public_multibase,),
                                         OFF_LEDGER_ISSUERS["governance"]),),
    )


def _issuer_name(did: str) -> str:
    for name in [*OFF_LEDGER_ISSUERS, *DEMO_PARTICIPANTS]:
        if party(DEMO, name)["id"] == did:
            return name
    raise InputError(f"no demo key for {did}")


def _short(uri: str) -> str:
    return uri if len(uri) <= 48 else uri[:22] + "..." + uri[-22:]


def _write_trust(home: Path, console: Console, witnesses: tuple[str, ...] = ()) -> Any:
    """The verifier's own configuration: the demo ledger's checkpoint key, its witnesses
    (all of them must cosign) and the governance root. The only source of trust (never the
    bundle itself)."""
    ledger = Ledger.open(home)
    try:
        write_trust(_own_trust(ledger, witnesses), home / "trust.toml")
    finally:
        ledger.close()
    console.print("wrote trust.toml: the demo ledger's checkpoint key, its witnesses "
                  f"({len(witnesses)} of {len(witnesses)} must cosign) and the governance "
                  f"root ({OFF_LEDGER_ISSUERS['governance']})")
    return load_trust(home / "trust.toml")


def _export(home: Path, console: Console) -> Path:
    ledger = Ledger.open(home)
    bundle = home / "bundle.jsonl"
    try:
        store = CredentialStore(ledger)
        with bundle.open("wb") as out:
            summary = export_bundle(ledger, out, item=SUBJECT, find_credentials=store.find,
                                    lists_for=store.lists_for)
    finally:
        ledger.close()
    console.print(f"exported {bundle.name}: {summary.entries} entries of {PACK_1}'s "
                  f"history with inclusion proofs, {summary.credentials} credentials")
    return bundle


def _verify_bundle(bundle: Path, trust: Any, console: Console) -> None:
    report = verify_bundle(iter_file_lines(str(bundle)), trust)
    report.render(console)
    if not report.ok:  # pragma: no cover - the demo exists to show it verifies
        raise AssertionError("the demo bundle did not verify")


def _provenance_and_policy(home: Path, bundle: Path, trust: Any, console: Console) -> None:
    provenance = trace_provenance(bundle)
    render_provenance(provenance, console)
    policy = load_policy(POLICY)
    # The policy file used goes into the home, for `bundle verify --policy` afterwards.
    shutil.copyfile(_policy_file(POLICY), home / f"{POLICY}.toml")
    result = evaluate_policy(policy, provenance, policy_date=date.fromisoformat(POLICY_DATE),
                             issuers_accredited=bool(trust.governance_roots))
    console.print(f"\n[bold]Would {PACK_1} comply if placed on the EU market on "
                  f"{POLICY_DATE}?[/] (its first-life cathode holds 8 % recycled cobalt, from "
                  "manufacturing scrap; Art. 8 asks 16 % from 18 Aug 2031)")
    result.render(console)


def _policy_file(name: str) -> Path:
    return Path(str(resources.files("batterytrace.verifier") / "data" / "policies"
                    / f"{name}.toml"))


def _tampered(bundle: Path, trust: Any, console: Console) -> None:
    lines = bundle.read_text(encoding="utf-8").splitlines()
    tampered = bundle.with_name("bundle-tampered.jsonl")
    tampered.write_text("\n".join(_tamper_quantity(line) for line in lines) + "\n",
                        encoding="utf-8")
    bad = verify_bundle(iter_file_lines(str(tampered)), trust)
    first = bad.failures[0] if bad.failures else None
    if bad.ok or first is None:  # pragma: no cover - the demo exists to show this
        raise AssertionError("the tampered bundle verified")
    console.print(f"[red]REJECTED[/] {tampered.name} (20 t of Kolwezi cobalt hydroxide became "
                  f"200 t): {first.code} at {first.record}: {first.reason}")


def _tamper_quantity(line: str) -> str:
    """Multiply the industrial mine's extracted quantity by ten."""
    needle = '"quantity":20000,'
    return line.replace(needle, '"quantity":200000,', 1) if "co-hydroxide-KZ" in line else line


MARKER = ".batterytrace-demo"  # marks a folder as a demo home (`--replace` may remove it)


def remove_demo_home(home: Path) -> None:
    """Remove the demo home an earlier run left at `home`; refuse any other non-empty folder."""
    home = Path(home)
    if not home.exists():
        return
    if not home.is_dir() or ((any(home.iterdir())) and not (home / MARKER).exists()):
        raise InputError(f"{home} is not a demo home (no {MARKER} in it): not removed; give "
                         "another --demo-home")
    shutil.rmtree(home)


def next_commands(home: Path) -> list[str]:
    """Commands a user can run next in the demo home (each tested by tests/test_demo.py)."""
    bundle, trust = home / "bundle.jsonl", home / "trust.toml"
    return [
        f"batterytrace --home {home} ledger info",
        f"batterytrace --home {home} ledger verify",
        f"batterytrace bundle verify {bundle} --trust {trust}",
        f"batterytrace bundle provenance {bundle} --trust {trust}",
        f"batterytrace bundle verify {bundle} --trust {trust} --policy "
        f"{home / (POLICY + '.toml')} --policy-date {POLICY_DATE}",
        f"batterytrace --home {home} credential find --subject {SUBJECT}",
        f"batterytrace --home {home} status-list show",
        f"batterytrace trust show {trust}",
        f"batterytrace --mirror {home / 'mirror'} --trust {trust} ledger verify",
        f"batterytrace --mirror {home / 'mirror'} --trust {trust} ledger prove 5",
        f"batterytrace ledger monitor {home / 'mirror'} --since {home / 'checkpoint.txt'} "
        f"--trust {trust}",
        f"batterytrace ledger compare {home / 'checkpoint.txt'} {bundle} --trust {trust}",
    ]


def passport_url() -> str:
    return f"{PUBLIC_URL}/passports/{quote(SUBJECT, safe='')}"


@contextmanager
def stages(console: Console, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar of the demo's stages on a terminal (transient, on stderr); nothing
    when the output is piped."""
    if not console.is_terminal:
        yield lambda _name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("demo", total=total)
        done = [-1]

        def stage(name: str) -> None:
            done[0] += 1
            bar.update(task, description=name, completed=done[0])

        yield stage


def run_demo(home: Path, console: Console) -> None:
    """Run the demo network into `home`, printing the story as it goes."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "checkpoint.txt").exists():
        (home / MARKER).write_text("made by `batterytrace demo`\n", encoding="utf-8")
    clock = StoryClock(story_span()[0] - timedelta(days=1))
    console.print(Panel.fit("batterytrace demo: mines to a recycled-content pack, verified "
                            "offline", style="bold"))
    with stages(console, 10) as stage:
        stage("building the ledger")
        _build_ledger(home, console, clock)
        stage("verifying the ledger")
        _verify_ledger(home, console)
        stage("issuing credentials")
        _issue_credentials(home, console, clock)
        stage("witnesses and the tile mirror")
        witnesses = witness_and_publish(home, console, clock)
        stage("writing the trust file")
        trust = _write_trust(home, console, witnesses)
        stage("exporting the bundle")
        bundle = _export(home, console)
        stage("verifying the bundle offline")
        _verify_bundle(bundle, trust, console)
        stage("provenance and policy")
        _provenance_and_policy(home, bundle, trust, console)
        stage("a tampered bundle")
        _tampered(bundle, trust, console)
        stage("a split view")
        split_view(home, trust, console)
    console.print(f"\nThe demo home is {home}: ledger, keys/, trust.toml, bundle.jsonl, "
                  f"{POLICY}.toml, mirror/ (C2SP tiles), witnesses/. The verify with --policy "
                  "exits 1 (the failing rule). Try:")
    for command in next_commands(home):
        console.print(f"  {command}", highlight=False, soft_wrap=True)
    console.print(f"\nPassport of {PACK_1}: {passport_url()}", highlight=False,
                  soft_wrap=True)
    console.print(f"served by: batterytrace --home {home} serve", highlight=False)
    from .demo_resolver import print_resolver  # issue 21: the label's resolver and linkset

    print_resolver(home, SUBJECT, console)
