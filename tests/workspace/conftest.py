"""Workspace tests run on every storage backend."""

from __future__ import annotations

from tests.storage.conftest import pg_schema, storage

__all__ = ["pg_schema", "storage"]
