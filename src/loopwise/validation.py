"""Positioned pydantic errors: a validator can point at a path inside the value it checks."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


def invalid_at(title: str, loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A pydantic error at ``loc`` (relative to the model being validated), so the workspace loader
    reports a precise path such as ``slots[0].rules[2].then.variant``."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "{message}", {"message": message}),
                loc=loc,
                input=value,
            )
        ],
    )
