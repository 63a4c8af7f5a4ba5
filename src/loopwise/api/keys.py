"""API keys: three kinds with fixed scopes, stored as SHA-256 hashes, compared in constant time.

The write key is public (it ships in the browser snippet), so it alone is also kept in plain text.
Server and admin keys are only ever shown once, when generated; the data directory holds their
hashes. Several keys per kind may be valid at once so keys can be rotated without downtime
(``loopwise keys create`` / ``revoke``, which a running server picks up from ``keys.json``; or
``LOOPWISE_SERVER_KEY="new,old"``, read at start). Nothing here logs a key.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from loopwise.api.user_tokens import load_or_create_identity_secret
from loopwise.errors import ConfigError, NotFound

KEYS_FILE = "keys.json"
RELOAD_CHECK_SECONDS = 1.0  # how often a running server looks at keys.json's mtime
KEY_ID_LENGTH = 12  # a key's id: the first hex digits of its hash (never the key itself)


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
    EXPLAIN = "explain"  # "Why am I seeing this?": any key, the browser's write key included
    # decide for the caller only: its own anonymous id, or a userId proven by a user token
    # (loopwise.api.public_decide); the browser's write key has this, not DECIDE
    PUBLIC_DECIDE = "public_decide"


SCOPES: dict[KeyKind, frozenset[Scope]] = {
    KeyKind.WRITE: frozenset({Scope.INGEST, Scope.EXPLAIN, Scope.PUBLIC_DECIDE}),
    KeyKind.SERVER: frozenset(
        {
            Scope.INGEST,
            Scope.DECIDE,
            Scope.PUBLIC_DECIDE,
            Scope.READ_PROFILES,
            Scope.CONSENT,
            Scope.EXPLAIN,
        }
    ),
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
        identity_secret: str | None = None,
    ) -> None:
        # signs user tokens (loopwise.api.user_tokens): a write-key userId counts only with one
        self.identity_secret = identity_secret
        self._entries: list[tuple[bytes, KeyKind]] = [
            (digest.encode("ascii"), kind)
            for kind, digests in (hashes or {}).items()
            for digest in digests
        ]
        self._write_key_plain = write_key_plain
        # set by load_or_create: the file to follow and the kinds the environment pins
        self._source: Path | None = None
        self._environ: dict[str, str] = {}
        self._mtime: tuple[int, int, int] | None = None  # _stamp of the file last read
        self._next_check = 0.0
        self._reload_lock = threading.Lock()

    @classmethod
    def from_plain(
        cls, keys: Mapping[KeyKind, Iterable[str]], *, identity_secret: str | None = None
    ) -> KeyRing:
        """A ring from plain keys (tests, embedding); the first write key is kept for the page."""
        plain = {kind: list(values) for kind, values in keys.items()}
        write = plain.get(KeyKind.WRITE) or []
        hashes = {kind: [hash_key(k) for k in values] for kind, values in plain.items()}
        return cls(
            hashes, write_key_plain=write[0] if write else None, identity_secret=identity_secret
        )

    @property
    def write_key_plain(self) -> str | None:
        self._maybe_reload()
        return self._write_key_plain

    def _maybe_reload(self) -> None:
        """Pick up keys created or revoked by ``loopwise keys`` while the server runs: at most one
        ``stat`` per second, and a re-read only when the file changed (mtime, inode, size). A
        file that is unreadable mid-edit keeps the current keys (the next change is picked up)."""
        if self._source is None or time.monotonic() < self._next_check:
            return
        if not self._reload_lock.acquire(blocking=False):
            return  # another request is checking right now
        try:
            self._next_check = time.monotonic() + RELOAD_CHECK_SECONDS
            try:
                mtime = _stamp(self._source)
            except OSError:
                return
            if mtime == self._mtime:
                return
            try:
                stored = _read_file(self._source)
            except ConfigError:
                return
            hashes, plain = _ring_parts(stored, self._environ)
            self._entries = [
                (digest.encode("ascii"), kind)
                for kind, digests in hashes.items()
                for digest in digests
            ]
            self._write_key_plain = plain
            self._mtime = mtime
        finally:
            self._reload_lock.release()

    def kinds(self) -> set[KeyKind]:
        return {kind for _, kind in self._entries}

    def authenticate(self, key: str) -> KeyKind | None:
        """The kind of ``key``, or None. Checks every stored hash without stopping early, so the
        time taken does not reveal which kind (or whether any) matched."""
        if not key:
            return None
        self._maybe_reload()
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
        with _locked(path):  # a `keys create` at the same time must not be lost
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
                    digest = hash_key(key)
                    info: dict[str, Any] = {"created_at": _now(), "prefix": _prefix(kind, key)}
                    entry = {"hashes": [digest], "created": {digest: info}}
                    if kind is KeyKind.WRITE:
                        entry["plain"] = key
                        info["plain"] = key
                    stored[kind.value] = entry
                hashes[kind] = list(entry["hashes"])
                if kind is KeyKind.WRITE:
                    write_plain = entry.get("plain")
            if generated:
                _write_file(path, stored)
        secret = load_or_create_identity_secret(data_dir, environ)
        ring = cls(hashes, write_key_plain=write_plain, identity_secret=secret)
        ring._source = path
        ring._environ = {var: environ[var] for var in ENV_VARS.values() if var in environ}
        ring._mtime = _stamp(path) if path.exists() else None
        ring._next_check = time.monotonic() + RELOAD_CHECK_SECONDS
        return ring, generated


def _stamp(path: Path) -> tuple[int, int, int]:
    """What tells a changed keys.json apart: mtime alone misses a second write within one
    timestamp tick (1 s on some filesystems); every write is a rename, so a new inode."""
    info = path.stat()
    return info.st_mtime_ns, info.st_ino, info.st_size


def _ring_parts(
    stored: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[dict[KeyKind, list[str]], str | None]:
    """Hashes per kind and the public write key: the environment wins per kind over the file."""
    hashes: dict[KeyKind, list[str]] = {}
    write_plain: str | None = None
    for kind in KeyKind:
        from_env = _split(environ.get(ENV_VARS[kind], ""))
        if from_env:
            hashes[kind] = [hash_key(k) for k in from_env]
            if kind is KeyKind.WRITE:
                write_plain = from_env[0]
            continue
        entry = stored.get(kind.value)
        if entry is None:
            continue
        hashes[kind] = list(entry["hashes"])
        if kind is KeyKind.WRITE:
            write_plain = entry.get("plain")
    return hashes, write_plain


# -- key management (``loopwise keys``) ---------------------------------------------------------


def key_id(digest: str) -> str:
    return digest[:KEY_ID_LENGTH]


def _prefix(kind: KeyKind, key: str) -> str:
    """Enough of a key to recognise it in a list (4 random characters), not to use it."""
    return key[: len(f"lw_{kind.value}_") + 4]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def create_key(data_dir: Path, kind: KeyKind) -> tuple[str, str]:
    """Add a new key of ``kind`` to ``data_dir/keys.json`` beside the existing ones (so clients
    can move over before the old key is revoked). Returns ``(id, key)``; only the hash is stored
    (and, for the public write key, the key itself: it becomes the one the snippet serves)."""
    path = data_dir / KEYS_FILE
    with _locked(path):
        return _create_key(path, kind)


def _create_key(path: Path, kind: KeyKind) -> tuple[str, str]:
    stored = _read_file(path)
    key = generate_key(kind)
    digest = hash_key(key)
    entry = stored.setdefault(kind.value, {"hashes": []})
    entry["hashes"] = [*entry["hashes"], digest]
    info: dict[str, Any] = {"created_at": _now(), "prefix": _prefix(kind, key)}
    if kind is KeyKind.WRITE:
        entry["plain"] = key
        info["plain"] = key
    entry.setdefault("created", {})[digest] = info
    _write_file(path, stored)
    return key_id(digest), key


def list_keys(data_dir: Path) -> list[dict[str, Any]]:
    """``[{"kind", "id", "prefix", "created_at"}]`` for every stored key; never a secret key."""
    stored = _read_file(data_dir / KEYS_FILE)
    rows: list[dict[str, Any]] = []
    for kind in KeyKind:
        entry = stored.get(kind.value) or {}
        created = entry.get("created") or {}
        for digest in entry.get("hashes", []):
            info = created.get(digest) or {}
            rows.append(
                {
                    "kind": kind.value,
                    "id": key_id(digest),
                    "prefix": info.get("prefix"),
                    "created_at": info.get("created_at"),
                }
            )
    return rows


def revoke_key(data_dir: Path, ident: str) -> dict[str, Any]:
    """Remove the key whose id is ``ident`` (running servers stop accepting it within a second).
    The last key of a kind cannot be revoked: create its replacement first."""
    path = data_dir / KEYS_FILE
    with _locked(path):
        return _revoke_key(path, ident)


def _revoke_key(path: Path, ident: str) -> dict[str, Any]:
    stored = _read_file(path)
    matches = [
        (kind, digest)
        for kind in KeyKind
        for digest in (stored.get(kind.value) or {}).get("hashes", [])
        if ident and key_id(digest) == ident.strip()
    ]
    if not matches:
        raise NotFound(
            f'No key with id "{ident}" in {path}. See the ids with `loopwise keys list`.',
            field="id",
        )
    kind, digest = matches[0]
    entry = stored[kind.value]
    if len(entry["hashes"]) == 1:
        raise ConfigError(
            f"{ident} is the only {kind.value} key; create its replacement first "
            f"(`loopwise keys create --kind {kind.value}`), move clients to it, then revoke.",
            field="id",
        )
    entry["hashes"] = [d for d in entry["hashes"] if d != digest]
    created = entry.get("created") or {}
    created.pop(digest, None)
    if kind is KeyKind.WRITE and entry.get("plain") and hash_key(entry["plain"]) == digest:
        remaining = [created[d]["plain"] for d in entry["hashes"] if "plain" in created.get(d, {})]
        if remaining:
            entry["plain"] = remaining[-1]
        else:
            entry.pop("plain")
    _write_file(path, stored)
    return {"kind": kind.value, "id": ident}


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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of ``path`` between processes: two ``loopwise keys`` runs at
    once (or one and a first ``serve``) would otherwise each write back the file they read, and
    one new key would be lost. Readers need no lock: writes are atomic renames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield
