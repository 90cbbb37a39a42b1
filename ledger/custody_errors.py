"""Typed rejections of the custody layer: registry, event parsing and custody rules.

Every rule of `custody.py`, `events.py` and `registry.py` rejects with one of these classes, so
the command line, the HTTP problem details and the verifier's replay report the same stable
code. Rule failures are VerificationErrors (exit 1, HTTP 422): the document was read and found
to break a rule. A document that cannot be read at all is an InputError (exit 2).
"""

from __future__ import annotations

from batterytrace.credentials.errors import InputError, VerificationError


class CustodyError(VerificationError):
    """Base of the custody rules: an event breaks a rule of the ledger."""

    code = "CUSTODY_ERROR"
    title = "Custody rule violated"


# --- event documents --------------------------------------------------------------------


class EventFormatError(InputError):
    """A traceability event credential is not shaped as the project expects (beyond schema)."""

    code = "EVENT_FORMAT_ERROR"
    title = "Malformed traceability event"


class QuantityPrecisionError(CustodyError):
    """A number whose Decimal differs from the number JCS signs (over 15 significant digits)."""

    code = "QUANTITY_PRECISION_ERROR"
    title = "Quantity not exactly representable"


class UnsupportedUnitError(CustodyError):
    code = "UNSUPPORTED_UNIT_ERROR"
    title = "Unit of measure not supported for custody"


class BatteryCodeError(CustodyError):
    """A GB/T 34014 battery code that does not match the code grammar, whose letters do not
    match the item's category or chemistry, or that already names another item of the
    ledger."""

    code = "BATTERY_CODE_ERROR"
    title = "Invalid GB/T 34014 battery code"


class CompositionError(CustodyError):
    """A declared composition with fractions outside [0, 1], a sum above 1, or bad elements."""

    code = "COMPOSITION_ERROR"
    title = "Invalid composition"


# --- registry ---------------------------------------------------------------------------


class RegistryError(VerificationError):
    """Base of registry rejections (participants, facilities, keys)."""

    code = "REGISTRY_ERROR"
    title = "Registry entry rejected"


class UnknownParticipantError(RegistryError):
    code = "UNKNOWN_PARTICIPANT"
    title = "Participant not registered"


class ParticipantExistsError(RegistryError):
    code = "PARTICIPANT_EXISTS"
    title = "Participant already registered"


class UnknownFacilityError(RegistryError):
    code = "UNKNOWN_FACILITY"
    title = "Facility not registered"


class FacilityExistsError(RegistryError):
    code = "FACILITY_EXISTS"
    title = "Facility already registered"


class KeyNotValidError(RegistryError):
    """The signing key is unknown, not yet valid, revoked or retired at this log position."""

    code = "KEY_NOT_VALID"
    title = "Key not valid at this log position"


class RegistryAuthorizationError(RegistryError):
    """A registry entry lacks a required signature (admin key, participant's current key)."""

    code = "REGISTRY_UNAUTHORIZED"
    title = "Registry entry not authorised"


# --- custody rules ----------------------------------------------------------------------


class DuplicateEventIdError(CustodyError):
    """An event id already used by a different document (or twice in one submission)."""

    code = "DUPLICATE_EVENT_ID"
    title = "Event id already used"


class FacilityNotOperatedError(CustodyError):
    """bizLocation is not a registered facility of the actor (or not of the required kind)."""

    code = "FACILITY_NOT_OPERATED"
    title = "Location is not a facility of the actor"


class MaterialCreationError(CustodyError):
    """Material created outside extraction at a mine site or outside a transformation."""

    code = "MATERIAL_CREATION_FORBIDDEN"
    title = "Material may not be created here"


class ItemCreationError(CustodyError):
    """A serialized item created outside a production transformation."""

    code = "ITEM_CREATION_FORBIDDEN"
    title = "Item may not be created here"


class LotExistsError(CustodyError):
    code = "LOT_EXISTS"
    title = "Lot already exists"


class UnknownLotError(CustodyError):
    code = "UNKNOWN_LOT"
    title = "Lot unknown"


class ItemExistsError(CustodyError):
    code = "ITEM_EXISTS"
    title = "Item already exists"


class UnknownItemError(CustodyError):
    code = "UNKNOWN_ITEM"
    title = "Item unknown"


class NotHolderError(CustodyError):
    """The actor does not hold the item (or it is inside another item, in transit, or gone)."""

    code = "NOT_HOLDER"
    title = "Actor does not hold this"


class InsufficientHoldingError(CustodyError):
    code = "INSUFFICIENT_HOLDING"
    title = "Quantity exceeds the actor's holding"


class ShipmentError(CustodyError):
    """A shipment names no valid destination party, or carries nothing."""

    code = "SHIPMENT_INVALID"
    title = "Invalid shipment"


class ReceiptMismatchError(CustodyError):
    """A receipt does not match an open shipment addressed to its signer."""

    code = "RECEIPT_MISMATCH"
    title = "Receipt does not match an open shipment"


class QuantityImplausibleError(CustodyError):
    """A quantity or item mass above the plausibility bound of its unit (settings.MAX_QUANTITY)."""

    code = "QUANTITY_IMPLAUSIBLE"
    title = "Quantity above the plausible bound"


class EventBeforeLotError(CustodyError):
    """An event moves or uses a lot at an eventTime earlier than the event that created it."""

    code = "EVENT_BEFORE_LOT"
    title = "Event dated before the lot exists"


class EventTimeAheadError(CustodyError):
    """An event's eventTime lies later than the ledger's receipt of it plus the allowed clock
    skew (setting maxEventTimeAheadHours, default 24 h)."""

    code = "EVENT_TIME_AHEAD"
    title = "Event dated after the ledger received it"


class MassBalanceError(CustodyError):
    """For an element, output mass exceeds input mass by more than the ledger's tolerance."""

    code = "MASS_BALANCE_EXCEEDED"
    title = "Mass balance exceeded"


class CustodyModelError(CustodyError):
    code = "CUSTODY_MODEL_MISSING"
    title = "Transformation must declare its custody model"


class AssemblyError(CustodyError):
    """Aggregation or association breaks the assembly tree (second parent, cycle, not a child)."""

    code = "ASSEMBLY_INVALID"
    title = "Invalid assembly"


class UnsupportedEventError(CustodyError):
    """An event shape the custody rules do not give a meaning to."""

    code = "UNSUPPORTED_EVENT"
    title = "Event not supported by the custody rules"


class ErrorDeclarationError(CustodyError):
    """An EPCIS error declaration that cannot apply: the event it names is unknown, is not
    restated as its issuer recorded it (another issuer, or other content), is itself an error
    declaration, or has an effect the ledger cannot reverse (an assembly)."""

    code = "ERROR_DECLARATION_INVALID"
    title = "Error declaration refused"


class ErrorAlreadyDeclaredError(CustodyError):
    """An event already declared erroneous: its effect was reversed once."""

    code = "ERROR_ALREADY_DECLARED"
    title = "Event already declared erroneous"


class ErroneousEventMovedOnError(CustodyError):
    """An event declared erroneous whose effect can no longer be reversed: what it made was
    shipped, used, assembled or re-made since, or what it consumed was re-declared since."""

    code = "ERRONEOUS_EVENT_MOVED_ON"
    title = "Erroneous event's outputs already moved on"
