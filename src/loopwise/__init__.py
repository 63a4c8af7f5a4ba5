"""Loopwise: a self-hosted, real-time content personalization engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Engine", "__version__"]

if TYPE_CHECKING:
    from loopwise.engine import Engine


def __getattr__(name: str) -> Any:
    # Lazy so that `import loopwise.segments.conditions` does not pull in the whole engine.
    if name == "Engine":
        from loopwise.engine import Engine

        return Engine
    raise AttributeError(name)
