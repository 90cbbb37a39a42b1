"""Every error class has a stable, unique code and renders as RFC 9457 problem details."""

import importlib
import pkgutil

from batterytrace.credentials.errors import BatterytraceError, all_error_classes

import batterytrace


def _import_everything() -> None:
    for package in ("credentials", "ledger", "verifier", "api"):
        pkg = importlib.import_module(f"batterytrace.{package}")
        for info in pkgutil.walk_packages(pkg.__path__, f"batterytrace.{package}."):
            if info.name.endswith(("__main__", ".cli")) or ".demo" in info.name:
                continue
            importlib.import_module(info.name)


def test_codes_are_unique_across_the_project():
    _import_everything()
    by_code: dict[str, type] = {}
    for cls in all_error_classes():
        assert cls.code.isupper() and " " not in cls.code, cls
        other = by_code.setdefault(cls.code, cls)
        assert other is cls, f"{cls.__module__}.{cls.__name__} reuses {cls.code} of {other}"
    assert batterytrace.__version__


def test_problem_details_shape():
    from batterytrace.credentials.errors import ProofVerificationError

    problem = ProofVerificationError("signature does not match", proof=0).to_problem("/x")
    assert problem["type"].endswith("/PROOF_VERIFICATION_ERROR")
    assert problem["status"] == 422 and problem["code"] == "PROOF_VERIFICATION_ERROR"
    assert problem["details"] == {"proof": 0} and problem["instance"] == "/x"
    assert ProofVerificationError.exit_code == 1
    assert issubclass(ProofVerificationError, BatterytraceError)
