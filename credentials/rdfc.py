"""The eddsa-rdfc-2022 transformation, for verification only.

hashData = sha256(canonProofConfig) || sha256(canonDocument), where each canonical form is the
RDF Dataset Canonicalization (RDFC-1.0, `URDNA2015` in PyLD) of the JSON-LD document as
N-Quads. Three traps make this path dangerous, and each has a guard here:

- Remote contexts: the document loader serves ONLY the contexts bundled under
  `data/contexts/<host>/<path>` (listed in `data/contexts/index.json`), never the network, and
  a private context cache so that no other PyLD user's loader can feed ours.
- Silent data loss: JSON-LD drops terms no context defines and triples whose IRIs are relative
  (with `base` None), so a signature could "verify" over a document carrying unsigned claims.
  Any dropped property or relative IRI raises DATA_LOSS_DETECTION_ERROR.
- Hostile graphs: canonicalizing many indistinguishable blank nodes is factorial. A work budget
  (and a wall-clock backstop) stops it with CANONICALIZATION_LIMIT_ERROR.

PyLD is imported lazily: the project issues with eddsa-jcs-2022 and most runs never load it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import (
    BatterytraceError,
    DataLossDetectionError,
    ProofVerificationError,
    VerificationError,
)

CONTEXTS_DIR = Path(__file__).resolve().parent / "data" / "contexts"
CONTEXT_INDEX = CONTEXTS_DIR / "index.json"

# Units of canonicalization work: one per blank-node lookup made while trying permutations,
# DEEP_ITERATION_COST per Hash N-Degree Quads call, one per issuer entry copied. Real
# credentials spend nothing (their blank nodes are told apart by their own quads); a poison
# graph of a dozen indistinguishable blank nodes would spend billions.
WORK_BUDGET = 1_000_000
DEEP_ITERATION_COST = 20
TIME_BUDGET_SECONDS = 3.0

_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


class ContextUnavailableError(VerificationError):
    """A JSON-LD context is not among the bundled copies (nothing is fetched)."""

    code = "JSONLD_CONTEXT_UNAVAILABLE_ERROR"
    title = "JSON-LD context not available offline"


class JsonLdProcessingError(VerificationError):
    """The document is not valid JSON-LD (bad context, keyword misuse, ...)."""

    code = "JSONLD_PROCESSING_ERROR"
    title = "JSON-LD processing failed"


class CanonicalizationLimitError(VerificationError):
    """RDF canonicalization exceeded its work budget (a hostile blank-node graph)."""

    code = "CANONICALIZATION_LIMIT_ERROR"
    title = "RDF canonicalization too costly"


# --- the document loader ----------------------------------------------------------------


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    return json.loads(CONTEXT_INDEX.read_text(encoding="utf-8"))


def _context_path(url: str) -> Path | None:
    listed = _index().get(url)
    if listed is not None:
        return CONTEXTS_DIR / listed
    # A context dropped in at its URL path (another part of the project may add its own) is
    # served too; anything that could step outside the folder is refused.
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.query or parts.fragment or not parts.path:
        return None
    segments = [parts.hostname or "", *parts.path.strip("/").split("/")]
    if any(seg in ("", ".", "..") or "\\" in seg for seg in segments):
        return None
    path = CONTEXTS_DIR.joinpath(*segments)
    return path if path.is_file() else None


@lru_cache(maxsize=64)
def _load_context_text(url: str) -> str:
    path = _context_path(url)
    if path is None or not path.is_file():
        raise ContextUnavailableError(f"JSON-LD context {url} is not bundled", url=url)
    return path.read_text(encoding="utf-8")


def load_bundled_context(url: str) -> Any:
    """The parsed bundled copy of a context URL; ContextUnavailableError if there is none."""
    return json.loads(_load_context_text(url))


def bundled_context_urls() -> list[str]:
    """The context URLs listed in the bundled index."""
    return sorted(_index())


def document_loader(url: str, options: Any = None) -> dict[str, Any]:
    """A PyLD document loader that serves only bundled contexts and never the network."""
    return {
        "contextUrl": None,
        "documentUrl": url,
        "document": load_bundled_context(url),
    }


# --- data-loss detection ----------------------------------------------------------------


def _raise_dropped(expanded_property: str | None) -> None:
    raise DataLossDetectionError(
        f"JSON-LD expansion dropped the property {expanded_property!r}: no context defines it",
        property=expanded_property,
    )


def _check_iri(value: Any, where: str) -> None:
    if not isinstance(value, str):
        return
    if value.startswith("_:") or value.startswith("@") or _ABSOLUTE_IRI.match(value):
        return
    raise DataLossDetectionError(
        f"relative IRI {value!r} in {where} would be dropped from the signed RDF", iri=value
    )


def _check_expanded(node: Any) -> None:
    """Walk expanded JSON-LD: every @id, @type and property must be an absolute IRI."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key == "@id":
                _check_iri(value, "@id")
            elif key == "@type":
                for type_ in value if isinstance(value, list) else [value]:
                    _check_iri(type_, "@type")
            elif key == "@value":
                continue  # a literal, possibly an @json value: not IRIs
            elif key == "@reverse":
                for prop, values in value.items():
                    _check_iri(prop, "a @reverse property")
                    stack.append(values)
            elif key.startswith("@"):
                stack.append(value)
            else:
                _check_iri(key, "a property")
                stack.append(value)


# --- bounded canonicalization -----------------------------------------------------------


class _Budget:
    __slots__ = ("calls", "deadline", "left")

    def __init__(self) -> None:
        self.left = WORK_BUDGET
        self.calls = 0
        self.deadline = time.monotonic() + TIME_BUDGET_SECONDS

    def spend(self, units: int = 1) -> None:
        self.left -= units
        self.calls += 1
        # The clock is read every 1024 calls only: time.monotonic is not free.
        if self.left < 0 or (not self.calls & 1023 and time.monotonic() > self.deadline):
            raise CanonicalizationLimitError(
                "RDF canonicalization exceeded its work budget (hostile blank-node graph?)"
            )


def _bounded_urdna2015(budget: _Budget) -> Any:
    from pyld.canon import URDNA2015
    from pyld.identifier_issuer import IdentifierIssuer

    class CountingIssuer(IdentifierIssuer):
        # The canonical issuer is asked about every blank node of every permutation tried,
        # so counting these questions measures the permutation work.
        def has_id(self, old: str) -> bool:
            budget.spend()
            return super().has_id(old)

    class CopyCountingIssuer(IdentifierIssuer):
        # Hash N-Degree Quads deep-copies its temporary issuer for every permutation; that
        # copy is most of the cost on hostile graphs, so it is charged by size (and made
        # cheaper than copy.deepcopy's generic walk).
        def __deepcopy__(self, memo: dict[int, Any]) -> CopyCountingIssuer:
            budget.spend(1 + len(self.order))
            twin = CopyCountingIssuer(self.prefix)
            twin.counter = self.counter
            twin.existing = dict(self.existing)
            twin.order = list(self.order)
            return twin

    class BoundedURDNA2015(URDNA2015):
        def __init__(self) -> None:
            super().__init__()
            self.canonical_issuer = CountingIssuer("_:c14n")

        def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
            budget.spend(DEEP_ITERATION_COST)
            if not isinstance(issuer, CopyCountingIssuer):
                # Only the top-level call (main, step 6.2) passes a plain issuer; its
                # identity does not matter to the caller, which reads the returned one.
                issuer = copy.deepcopy(issuer)
                issuer.__class__ = CopyCountingIssuer
            return super().hash_n_degree_quads(id_, issuer)

    return BoundedURDNA2015()


_context_cache: Any = None


def _options() -> dict[str, Any]:
    global _context_cache
    from cachetools import LRUCache
    from pyld.context_resolver import ContextResolver

    if _context_cache is None:
        # Private to this module: PyLD's default cache is shared by every loader.
        _context_cache = LRUCache(maxsize=100)
    return {
        "base": None,
        "documentLoader": document_loader,
        "contextResolver": ContextResolver(_context_cache, document_loader),
        "processingMode": "json-ld-1.1",
        "extractAllScripts": False,
    }


def _unwrap(exc: BaseException) -> VerificationError | None:
    """The project error that PyLD wrapped (our loader raises inside it), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, VerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def canonize(document: dict[str, Any]) -> str:
    """RDFC-1.0 canonical N-Quads of a JSON-LD document, with bundled contexts only.

    Raises DataLossDetectionError, ContextUnavailableError, JsonLdProcessingError or
    CanonicalizationLimitError.
    """
    from pyld import jsonld

    processor = jsonld.JsonLdProcessor(on_property_dropped=_raise_dropped)
    options = _options()
    try:
        expanded = processor.expand(document, options)
        _check_expanded(expanded)
        dataset = processor.to_rdf(expanded, options)
    except jsonld.JsonLdError as exc:
        wrapped = _unwrap(exc)
        if wrapped is not None:
            raise wrapped from exc
        raise JsonLdProcessingError(f"invalid JSON-LD: {exc.args[0]}") from exc
    except BatterytraceError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # PyLD has paths that fail with plain Python errors on odd input.
        raise JsonLdProcessingError(f"invalid JSON-LD: {type(exc).__name__}: {exc}") from exc
    budget = _Budget()
    return _bounded_urdna2015(budget).main(dataset, {"format": "application/n-quads"})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def rdfc_hash_data(unsecured_document: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    """eddsa-rdfc-2022 hashData: sha256(canonical proof config) || sha256(canonical document).

    `proof_config` is the proof without `proofValue` (dropped here if present). As the
    cryptosuite requires, a proof `@context` must be a prefix of the document's and then
    replaces it (terms only a later context defines become data loss); without one, the
    proof config takes the document's `@context`.
    """
    config = {k: v for k, v in proof_config.items() if k != "proofValue"}
    document = unsecured_document
    if "@context" in config:
        proof_context = _as_list(config["@context"])
        if _as_list(document.get("@context"))[: len(proof_context)] != proof_context:
            raise ProofVerificationError("the document @context does not start with the proof's")
        document = {**document, "@context": config["@context"]}
    elif "@context" in document:
        config["@context"] = document["@context"]
    canon_proof = canonize(config).encode("utf-8")
    canon_document = canonize(document).encode("utf-8")
    return hashlib.sha256(canon_proof).digest() + hashlib.sha256(canon_document).digest()


__all__ = [
    "CanonicalizationLimitError",
    "ContextUnavailableError",
    "JsonLdProcessingError",
    "bundled_context_urls",
    "canonize",
    "document_loader",
    "load_bundled_context",
    "rdfc_hash_data",
]
