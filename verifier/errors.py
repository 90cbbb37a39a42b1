"""The verifier's errors, in one module: each with the stable code that the command line,
the report and the HTTP problem details share (`credentials.errors` holds the base classes).
"""

from __future__ import annotations

from typing import Any

from batterytrace.credentials.errors import InputError, VerificationError


class AccreditationError(VerificationError):
    """The issuer has no valid accreditation path to a governance root."""

    code = "ACCREDITATION_ERROR"
    title = "Accreditation check failed"


class UntrustedIssuerError(AccreditationError):
    """No accreditation names the issuer (or a link of its chain), and it is not a root."""

    code = "UNTRUSTED_ISSUER"
    title = "Issuer is not trusted"


class AccreditationOutOfTypeError(AccreditationError):
    code = "ACCREDITATION_OUT_OF_TYPE"
    title = "Credential type outside the accreditation"


class AccreditationOutOfMineralError(AccreditationError):
    code = "ACCREDITATION_OUT_OF_MINERAL"
    title = "Mineral outside the accreditation"


class AccreditationOutOfRegionError(AccreditationError):
    code = "ACCREDITATION_OUT_OF_REGION"
    title = "Region outside the accreditation"


class AccreditationExpiredError(AccreditationError):
    """The accreditation is not in force at the time (expired, or not yet valid)."""

    code = "ACCREDITATION_EXPIRED"
    title = "Accreditation not in force"


class AccreditationRevokedError(AccreditationError):
    code = "ACCREDITATION_REVOKED"
    title = "Accreditation revoked"


class AccreditationNotDelegableError(AccreditationError):
    """A link above the issuer was not allowed to accredit others (`mayAccredit` false)."""

    code = "ACCREDITATION_NOT_DELEGABLE"
    title = "Accreditor may not accredit"


class AccreditationCycleError(AccreditationError):
    code = "ACCREDITATION_CYCLE"
    title = "Accreditation chain has a cycle"


class AccreditationTooDeepError(AccreditationError):
    code = "ACCREDITATION_TOO_DEEP"
    title = "Accreditation chain too long"


class AccreditationFormatError(InputError):
    """An AccreditationCredential is malformed."""

    code = "ACCREDITATION_MALFORMED"
    title = "Malformed accreditation credential"


class BundleFormatError(InputError):
    """The bundle is not a well-formed version 1 bundle (exit 2)."""

    code = "BUNDLE_FORMAT"
    title = "Malformed bundle"

    def __init__(self, line: int, reason: str, **details: Any) -> None:
        super().__init__(f"line {line}: {reason}", line=line, **details)
        self.line = line


class BundleVersionError(BundleFormatError):
    code = "BUNDLE_VERSION"
    title = "Unsupported bundle version"


class BundleTruncatedError(BundleFormatError):
    """The bundle ends before its `end` record, or the count in `end` is wrong."""

    code = "BUNDLE_TRUNCATED"
    title = "Bundle truncated"


class BundleUntrustedLedgerError(VerificationError):
    code = "BUNDLE_UNTRUSTED_LEDGER"
    title = "The trust file does not list the bundle's ledger"


class BundleInclusionError(VerificationError):
    code = "BUNDLE_INCLUSION_PROOF"
    title = "Entry not included in the checkpoint"


class BundleEntryOrderError(VerificationError):
    code = "BUNDLE_ENTRY_ORDER"
    title = "Entries out of log order"


class BundleConsistencyError(VerificationError):
    code = "BUNDLE_CONSISTENCY"
    title = "Checkpoint not consistent with the auditor's earlier checkpoint"


class BundleClosureError(VerificationError):
    code = "BUNDLE_CLOSURE_INCOMPLETE"
    title = "The bundle does not trace its subject back to extraction"


class BundleIncompleteError(VerificationError):
    code = "BUNDLE_INCOMPLETE"
    title = "The bundle leaves out a credential it anchors"


class CredentialSubjectMismatchError(VerificationError):
    code = "CREDENTIAL_SUBJECT_MISMATCH"
    title = "Credential is about nothing the events use"


class CredentialAnchorError(VerificationError):
    code = "CREDENTIAL_ANCHOR_MISMATCH"
    title = "Credential does not match its anchor"


class PresentationError(VerificationError):
    code = "BUNDLE_PRESENTATION"
    title = "Bundle presentation does not verify"


class CredentialRevokedError(VerificationError):
    code = "CREDENTIAL_STATUS_REVOKED"
    title = "Credential revoked"


class CredentialSuspendedError(VerificationError):
    code = "CREDENTIAL_STATUS_SUSPENDED"
    title = "Credential suspended"


class AnchorMismatchError(VerificationError):
    """The anchor record is of another credential (id, issuer or digest differ)."""

    code = "ANCHOR_MISMATCH"
    title = "Anchor does not match the credential"


class TrustFileError(InputError):
    """The trust file is malformed (unknown key, wrong type, duplicate, bad value)."""

    code = "TRUST_FILE_ERROR"
    title = "Malformed trust file"


class TrustFileVersionError(TrustFileError):
    """The trust file declares no version or one this verifier does not know."""

    code = "TRUST_FILE_VERSION_ERROR"
    title = "Unsupported trust file version"


class PinnedDocumentMismatchError(VerificationError):
    """A DID document does not match the SHA-256 pinned for its DID (or none is pinned)."""

    code = "PINNED_DID_DOCUMENT_MISMATCH"
    title = "DID document not pinned by the trust file"


class ProvenanceSubjectError(InputError):
    """The bundle never names the subject asked for."""

    code = "PROVENANCE_SUBJECT"
    title = "Subject not in the bundle"
