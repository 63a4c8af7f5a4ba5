"""The PostgreSQL backend (psycopg 3 with a connection pool)."""

from loopwise.storage.postgres.migrate import migrate
from loopwise.storage.postgres.storage import PostgresStorage, PostgresUnitOfWork

__all__ = ["PostgresStorage", "PostgresUnitOfWork", "migrate"]
