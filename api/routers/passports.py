"""The battery passport page and its JSON twin (placeholder until the passport router lands)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["passports"])
