"""batterytrace: a traceability ledger with verifiable credentials for EV batteries.

The parts live in top-level folders mapped to `batterytrace.credentials`, `batterytrace.ledger`,
`batterytrace.verifier` and `batterytrace.api` (see DESIGN.md).
"""

__version__ = "0.1.0"
