"""Random event sequences: valid ones conserve every element's mass; invalid ones are rejected
with nothing changed (hypothesis RuleBasedStateMachine over the pure custody rules). Error
declarations of any earlier event either restore exactly what that event changed (the last
event: the state before it) or are refused with nothing changed; lots are processed in place
and TransactionEvents other than shipping or receiving observe."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal

from batterytrace.credentials.errors import BatterytraceError
from batterytrace.ledger.custody import ACTIVE, element_totals
from batterytrace.ledger.events import BizStep
from custody_factory import (
    Network,
    assembly,
    did_for,
    event_id,
    extraction,
    item_id,
    lot_id,
    observation,
    receiving,
    shipping,
    transformation,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

SITES = {"miner": "kolwezi-mine", "trader": "likasi-depot", "refiner": "nantong-refinery",
         "cellmaker": "wroclaw-plant"}
PARTIES = st.sampled_from(sorted(SITES))
FRACTIONS = st.sampled_from(["0.1", "0.25", "0.5"])


class Custody(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.net = Network.standard()
        self.extracted: dict[str, Decimal] = {}
        self.gone: dict[str, Decimal] = {}
        self.lots: list[str] = []
        self.items: list[str] = []
        self.pending: list[dict] = []
        self.n = 0
        # (issuer, event, live state before it, bookkeeping to undo when declared erroneous)
        self.recorded: list[tuple[str, dict, dict, Callable[[], None]]] = []
        self.fresh = 0  # records from here on have no declaration accepted after them

    def _record(self, who: str, event: dict, undo: Callable[[], None] = lambda: None) -> None:
        before = self._live()
        self.net.events(who, event)
        self.recorded.append((who, event, before, undo))

    def _name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def _add(self, totals, kg, composition):
        for element, fraction in composition.items():
            totals[element] = totals.get(element, Decimal(0)) + Decimal(kg) * Decimal(fraction)

    def _holdings(self):
        return [(lot, holder, kg) for (lot, holder), kg in self.net.state.tables["holding"].items()
                if kg]

    def _who(self, did):
        return next(n for n in SITES if did_for(n) == did)

    @rule(kg=st.integers(1, 1000), co=FRACTIONS, ni=FRACTIONS)
    def extract(self, kg, co, ni):
        lot = self._name("ore")
        composition = {"Co": float(co), "Ni": float(ni) / 2}
        self._record("miner", extraction("kolwezi-mine", lot, kg, composition),
                     lambda: self._add(self.extracted, -kg, {"Co": co, "Ni": Decimal(ni) / 2}))
        self._add(self.extracted, kg, {"Co": co, "Ni": Decimal(ni) / 2})
        self.lots.append(lot)

    @precondition(lambda self: self._holdings())
    @rule(data=st.data(), to=PARTIES)
    def ship(self, data, to):
        lot, holder, held = data.draw(st.sampled_from(self._holdings()))
        who = self._who(holder)
        if to == who:
            return
        kg = data.draw(st.integers(1, max(1, int(held))))
        if kg > held:
            return
        lot_name = lot.rsplit("/", 1)[1]
        s = shipping(SITES[who], who, to, SITES[to], lots=[(lot_name, kg)])
        self._record(who, s, lambda: self.pending.remove(s))
        self.pending.append(s)

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def receive(self, data):
        s = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        to = self._who(s["destinationParty"])
        self._record(to, receiving(s, SITES[to]), lambda: self.pending.append(s))

    @precondition(lambda self: self._holdings())
    @rule(data=st.data(), items=st.booleans(), in_place=st.booleans())
    def transform(self, data, items, in_place):
        lot, holder, held = data.draw(st.sampled_from(self._holdings()))
        who = self._who(holder)
        composition = self.net.state.lot(lot).composition
        kg = data.draw(st.integers(1, max(1, int(held))))
        if kg > held:
            return
        lot_name = lot.rsplit("/", 1)[1]
        comp = {e: float(f) for e, f in composition.items()}
        if items:  # two items sharing the input mass exactly
            names = [self._name("item"), self._name("item")]
            outputs = [(n, "cell", kg / 2, comp) for n in names]
            event = transformation(SITES[who], [(lot_name, kg)], output_items=outputs)
            self.items.extend(names)
        elif in_place:  # the lot processed in place: consumed and added back
            event = transformation(SITES[who], [(lot_name, kg)], [(lot_name, kg, comp)])
        else:
            out = self._name("lot")
            event = transformation(SITES[who], [(lot_name, kg)], [(out, kg, comp)],
                                   custody_model="massBalance")
            self.lots.append(out)
        self._record(who, event)

    @precondition(lambda self: self._holdings())
    @rule(data=st.data())
    def observe_transaction(self, data):
        """A TransactionEvent that is not a custody change: nothing moves."""
        lot, holder, held = data.draw(st.sampled_from(self._holdings()))
        who = self._who(holder)
        s = shipping(SITES[who], who, who, SITES[who],
                     lots=[(lot.rsplit("/", 1)[1], float(held))])
        s["bizStep"] = "https://ref.gs1.org/cbv/BizStep-transporting"
        before = self._live()
        self._record(who, s)
        after = self._live()
        for table in ("lot", "holding", "item", "shipment", "edge", "source"):
            assert after[table] == before[table], table

    @precondition(lambda self: self.recorded)
    @rule(data=st.data(), last=st.booleans())
    def declare_erroneous(self, data, last):
        """Declare an earlier event erroneous (its issuer restating it): the last one is
        undone exactly; any other is undone or refused as moved on, with nothing changed."""
        index = -1 if last else data.draw(st.integers(0, len(self.recorded) - 1))
        who, event, before, undo = self.recorded[index]
        declared = {**copy.deepcopy(event), "id": event_id(), "erroneousEvent": event["id"]}
        now = self._live()
        try:
            self.net.events(who, declared)
        except BatterytraceError as error:
            assert error.code in ("ERRONEOUS_EVENT_MOVED_ON", "ERROR_ALREADY_DECLARED"), error
            assert not last or error.code == "ERROR_ALREADY_DECLARED", error
            assert self._live() == now
            return
        undo()
        exact = last and len(self.recorded) - 1 >= self.fresh
        self.fresh = len(self.recorded)
        if exact:
            after = self._live()
            for table in ("lot", "holding", "item", "shipment", "edge", "source",
                          "battery_code"):
                assert after[table] == before[table], table

    def _free_items(self, holder=None):
        out = []
        for name in self.items:
            item = self.net.state.item(item_id(name))
            if item is not None and item.parent is None and item.status == ACTIVE and \
                    (holder is None or item.holder == holder):
                out.append((name, item))
        return out

    @precondition(lambda self: len(self._free_items()) >= 2)
    @rule(data=st.data())
    def assemble(self, data):
        name, parent = data.draw(st.sampled_from(self._free_items()))
        children = [n for n, _ in self._free_items(parent.holder) if n != name][:2]
        if children:
            self._record(self._who(parent.holder),
                         assembly(SITES[self._who(parent.holder)], name, children))

    @precondition(lambda self: self._holdings())
    @rule(data=st.data())
    def dispose(self, data):
        lot, holder, held = data.draw(st.sampled_from(self._holdings()))
        who = self._who(holder)
        composition = self.net.state.lot(lot).composition
        self._record(who, observation(SITES[who], lots=[(lot.rsplit("/", 1)[1], float(held))],
                                      action="delete", biz_step=BizStep.DESTROYING),
                     lambda: self._add(self.gone, -held, composition))
        self._add(self.gone, held, composition)

    @rule(kind=st.sampled_from(["overship", "overbalance", "foreign-mine", "receipt", "reuse"]),
          data=st.data())
    def invalid(self, kind, data):
        """Build an event that breaks a rule; it must be rejected with nothing changed."""
        holdings = self._holdings()
        if kind == "overship" and holdings:
            lot, holder, held = data.draw(st.sampled_from(holdings))
            who = self._who(holder)
            to = "trader" if who != "trader" else "refiner"
            issuer, events = who, [shipping(SITES[who], who, to, SITES[to],
                                            lots=[(lot.rsplit("/", 1)[1], float(held) + 1)])]
        elif kind == "overbalance" and holdings:
            lot, holder, held = data.draw(st.sampled_from(holdings))
            who = self._who(holder)
            comp = {e: min(1.0, float(f) * 2 + 0.1) for e, f in
                    self.net.state.lot(lot).composition.items()} or {"Co": 0.1}
            name, kg = lot.rsplit("/", 1)[1], float(held)
            issuer, events = who, [transformation(SITES[who], [(name, kg)],
                                                  [(self._name("x"), kg, comp)])]
        elif kind == "receipt" and self.pending:
            s = self.pending[0]
            issuer, events = "miner", [receiving(s, "kolwezi-mine")]
            if s["destinationParty"] == did_for("miner"):
                return
        elif kind == "reuse" and any(self.net.state.lot(lot_id(x)) for x in self.lots):
            lot = next(x for x in self.lots if self.net.state.lot(lot_id(x)))
            issuer, events = "miner", [extraction("kolwezi-mine", lot, 1, {"Co": 0.1})]
        else:
            issuer, events = "trader", [extraction("kolwezi-mine", self._name("x"), 1, {})]
        before = copy.deepcopy(self._live())
        try:
            self.net.events(issuer, *events)
        except BatterytraceError:
            pass
        else:
            raise AssertionError(f"{kind} was accepted")
        assert self._live() == before

    def _live(self):
        return {t: {k: v for k, v in rows.items() if v is not None}
                for t, rows in self.net.state.tables.items()}

    @invariant()
    def mass_is_conserved(self):
        if not hasattr(self, "net"):
            return
        live = element_totals(self.net.state)
        for element in set(self.extracted) | set(live) | set(self.gone):
            assert live.get(element, 0) + self.gone.get(element, 0) == \
                self.extracted.get(element, 0), element


Custody.TestCase.settings = settings(stateful_step_count=20)
TestCustody = Custody.TestCase
