"""Storage: small store Protocols (:mod:`loopwise.storage.stores`) and their backends — memory,
SQLite (the default) and PostgreSQL — chosen by a database URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from loopwise.errors import ValidationFailed
from loopwise.storage.stores import Storage

DEFAULT_FILE = "loopwise.db"
URL_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, postgresql://user@host/db "
    "or memory://"
)


def open_storage(url: str | None, data_dir: Path, *, schema: str | None = None) -> Storage:
    """The backend ``url`` names.

    - ``None``, ``""`` or ``sqlite://`` — SQLite at ``data_dir/loopwise.db``;
    - ``sqlite:///path`` — SQLite at ``path`` (relative to the working directory, as
      SQLAlchemy reads it; ``sqlite:////abs/path`` for an absolute one);
    - ``memory://`` — in memory, gone when the process ends;
    - ``postgresql://…`` or ``postgres://…`` — PostgreSQL (libpq's URL), migrated on open; a
      ``schema=NAME`` query parameter (or the ``schema`` argument) puts every table in that
      schema.
    """
    scheme = url_scheme(url)
    if scheme in ("", "sqlite"):
        from loopwise.storage.sqlite import SqliteStorage

        return SqliteStorage(sqlite_path(url, data_dir))
    if scheme == "memory":
        from loopwise.storage.memory import MemoryStorage

        return MemoryStorage()
    if scheme in ("postgresql", "postgres"):
        from loopwise.storage.postgres import PostgresStorage

        conninfo, named = split_schema(url or "")
        return PostgresStorage(conninfo, schema=schema or named)
    raise _bad_url(f"the scheme {scheme!r} is not one Loopwise stores to")


def url_scheme(url: str | None) -> str:
    """``sqlite``, ``memory``, ``postgresql`` ... in lower case; "" for no URL."""
    if not url:
        return ""
    if ":" not in url:
        raise _bad_url("it has no scheme")
    return url.split(":", 1)[0].lower()


def sqlite_path(url: str | None, data_dir: Path) -> Path:
    """The file a ``sqlite:`` URL (or no URL) names."""
    if not url:
        return data_dir / DEFAULT_FILE
    rest = url[len("sqlite:") :]
    if not rest.startswith("//"):
        raise _bad_url("a SQLite URL starts with sqlite:// (sqlite:///path.db)")
    path = rest[3:]  # after "sqlite:///"; an absolute path keeps its own leading "/"
    return Path(path) if path else data_dir / DEFAULT_FILE


def split_schema(url: str) -> tuple[str, str | None]:
    """``url`` without its ``schema`` query parameter (libpq refuses parameters it does not
    know), and that parameter's value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    kept = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=kept)), schema or None


def _bad_url(why: str) -> ValidationFailed:
    # the URL itself is left out: it may carry a password
    return ValidationFailed(
        f"The database URL cannot be used: {why}. Give one of {URL_FORMS}.",
        field="database_url",
    )


__all__ = ["Storage", "open_storage", "split_schema", "sqlite_path", "url_scheme"]
