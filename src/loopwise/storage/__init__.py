"""Storage: the store Protocols (``stores``) and their backends, chosen by URL."""

from __future__ import annotations

from pathlib import Path

from loopwise.storage.stores import Storage


def open_storage(url: str | None, data_dir: Path) -> Storage:
    """``None`` or ``sqlite:///path`` -> SQLite (default ``data_dir/loopwise.db``);
    ``memory://`` -> in memory; ``postgresql://...`` -> PostgreSQL."""
    if url is None or url.startswith("sqlite:"):
        from loopwise.storage.sqlite import SqliteStorage

        path = url.removeprefix("sqlite://") if url else ""
        return SqliteStorage(Path(path) if path.strip("/") else data_dir / "loopwise.db")
    if url.startswith("memory:"):
        from loopwise.storage.memory import MemoryStorage

        return MemoryStorage()
    if url.startswith(("postgresql:", "postgres:")):
        from loopwise.storage.postgres import PostgresStorage

        return PostgresStorage(url)
    raise ValueError(
        f"Unknown database URL {url!r}: use sqlite:///path, memory:// or postgresql://"
    )
