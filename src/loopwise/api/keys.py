"""API keys: three kinds with fixed scopes, stored as SHA-256 hashes, compared in constant time.

The write key is public (it ships in the browser snippet), so it alone is also kept in plain text.
Server and admin keys are only ever shown once, when generated; the data directory holds their
hashes. Several keys per kind may be valid at once so keys can be rotated without downtime
(``LOOPWISE_SERVER_KEY="new,old"``). Nothing here logs a key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from loopwise.errors import ConfigError

KEYS_FILE = "keys.json"


class KeyKind(StrEnum):
    WRITE = "write"
    SERVER = "server"
    ADMIN = "admin"


class Scope(StrEnum):
    INGEST = "ingest"
    DECIDE = "decide"
    READ_PROFILES = "read_profiles"
    CONSENT = "consent"  # read and set a person's consent, read its audit history
    ADMIN = "admin"


SCOPES: dict[KeyKind, frozenset[Scope]] = {
    KeyKind.WRITE: frozenset({Scope.INGEST}),
    KeyKind.SERVER: frozenset({Scope.INGEST, Scope.DECIDE, Scope.READ_PROFILES, Scope.CONSENT}),
    KeyKind.ADMIN: frozenset(Scope),
}

ENV_VARS: dict[KeyKind, str] = {
    KeyKind.WRITE: "LOOPWISE_WRITE_KEY",
    KeyKind.SERVER: "LOOPWISE_SERVER_KEY",
    KeyKind.ADMIN: "LOOPWISE_ADMIN_KEY",
}


def has_scope(kind: KeyKind, scope: Scope) -> bool:
    return scope in SCOPES[kind]


def hash_key(key: str) -> str:
    """Hex SHA-256: keys are long random tokens, so a fast hash is enough (no password KDF)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key(kind: KeyKind) -> str:
    return f"lw_{kind.value}_{secrets.token_urlsafe(32)}"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class KeyRing:
    """The valid keys, as hashes per kind. Empty by default (every request is then refused)."""

    def __init__(
        self,
        hashes: Mapping[KeyKind, Iterable[str]] | None = None,
        *,
        write_key_plain: str | None = None,
    ) -> None:
        self._entries: list[tuple[bytes, KeyKind]] = [
            (digest.encode("ascii"), kind)
            for kind, digests in (hashes or {}).items()
            for digest in digests
        ]
        self._write_key_plain = write_key_plain

    @classmethod
    def from_plain(cls, keys: Mapping[KeyKind, Iterable[str]]) -> KeyRing:
        """A ring from plain keys (tests, embedding); the first write key is kept for the page."""
        plain = {kind: list(values) for kind, values in keys.items()}
        write = plain.get(KeyKind.WRITE) or []
        hashes = {kind: [hash_key(k) for k in values] for kind, values in plain.items()}
        return cls(hashes, write_key_plain=write[0] if write else None)

    @property
    def write_key_plain(self) -> str | None:
        return self._write_key_plain

    def kinds(self) -> set[KeyKind]:
        return {kind for _, kind in self._entries}

    def authenticate(self, key: str) -> KeyKind | None:
        """The kind of ``key``, or None. Checks every stored hash without stopping early, so the
        time taken does not reveal which kind (or whether any) matched."""
        if not key:
            return None
        presented = hash_key(key).encode("ascii")
        found: KeyKind | None = None
        for digest, kind in self._entries:
            if hmac.compare_digest(presented, digest) and found is None:
                found = kind
        return found

    @classmethod
    def load_or_create(
        cls, data_dir: Path, environ: Mapping[str, str]
    ) -> tuple[KeyRing, dict[str, str]]:
        """Keys from the environment where set, else from ``data_dir/keys.json``; kinds found in
        neither are generated and stored. Returns the ring and the plain keys generated now
        (empty on later starts) so the caller can show them exactly once."""
        path = data_dir / KEYS_FILE
        stored = _read_file(path)
        hashes: dict[KeyKind, list[str]] = {}
        write_plain: str | None = None
        generated: dict[str, str] = {}
        for kind in KeyKind:
            from_env = _split(environ.get(ENV_VARS[kind], ""))
            if from_env:
                hashes[kind] = [hash_key(k) for k in from_env]
                if kind is KeyKind.WRITE:
                    write_plain = from_env[0]
                continue
            entry = stored.get(kind.value)
            if entry is None:
                key = generate_key(kind)
                generated[kind.value] = key
                entry = {"hashes": [hash_key(key)]}
                if kind is KeyKind.WRITE:
                    entry["plain"] = key
                stored[kind.value] = entry
            hashes[kind] = list(entry["hashes"])
            if kind is KeyKind.WRITE:
                write_plain = entry.get("plain")
        if generated:
            _write_file(path, stored)
        return cls(hashes, write_key_plain=write_plain), generated


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    fix = f"Fix {path} or delete it to generate new keys (clients must then get the new ones)."
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise ConfigError(f"{path} is not valid JSON. {fix}", field=KEYS_FILE) from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a JSON object. {fix}", field=KEYS_FILE)
    for kind in KeyKind:
        entry = document.get(kind.value)
        if entry is None:
            continue
        digests = entry.get("hashes") if isinstance(entry, dict) else None
        valid = isinstance(digests, list) and all(
            isinstance(d, str) and len(d) == 64 for d in digests
        )
        plain = entry.get("plain") if isinstance(entry, dict) else None
        if not valid or (plain is not None and not isinstance(plain, str)):
            raise ConfigError(
                f'{path}: "{kind.value}" must be {{"hashes": [64-character SHA-256 hex, ...]}}. '
                + fix,
                field=f"{KEYS_FILE}.{kind.value}",
            )
    return document


def _write_file(path: Path, document: dict[str, Any]) -> None:
    """Atomic replace; the file is created 0600 so other local users cannot read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
