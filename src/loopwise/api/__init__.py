"""The HTTP edge: ``loopwise.api.app.create_app(engine)`` builds the FastAPI app.

Nothing is imported here on purpose: the engine imports :mod:`loopwise.api.keys`, and that must
not pull in FastAPI and every route module.
"""

from __future__ import annotations
