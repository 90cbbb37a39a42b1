"""Filled-in example credential subjects, one per shipped credential type (`credential
template --type T`): every required field present, valid as they are. They are the examples of
docs/credentials.md; tests/test_cli_guided.py keeps the two equal and checks each validates."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _templates() -> dict[str, dict[str, Any]]:
    text = resources.files(__package__).joinpath("data/credential_templates.json").read_text(
        encoding="utf-8")
    loaded: dict[str, dict[str, Any]] = json.loads(text)
    return loaded


def subject_template(type_name: str) -> dict[str, Any]:
    """A copy of the example credentialSubject of `type_name` (KeyError when none)."""
    return json.loads(json.dumps(_templates()[type_name]))


def template_types() -> list[str]:
    """The types that have a template."""
    return list(_templates())
