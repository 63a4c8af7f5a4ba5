"""Workspace tests run on every storage backend."""

from __future__ import annotations

from tests.storage.conftest import storage

__all__ = ["storage"]
