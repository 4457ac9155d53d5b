"""Errors services raise for callers to show: field-level, all at once."""

from __future__ import annotations


class ValidationFailed(ValueError):
    """Field -> message for every bad field, so a form or CLI can show them all at once."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
