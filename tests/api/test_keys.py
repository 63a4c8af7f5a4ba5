"""Key generation, storage (hashed, 0600), environment overrides, and constant-time checks."""

from __future__ import annotations

import hmac
import os
import stat
import threading
from pathlib import Path

import orjson
import pytest

from loopwise.api import keys as keys_module
from loopwise.api.keys import (
    KEYS_FILE,
    KeyKind,
    KeyRing,
    Scope,
    create_key,
    has_scope,
    hash_key,
    list_keys,
    revoke_key,
)
from loopwise.errors import ConfigError, NotFound


def test_first_start_generates_prefixed_keys_and_stores_them_safely(tmp_path: Path) -> None:
    ring, new = KeyRing.load_or_create(tmp_path / "data", {})
    assert set(new) == {"write", "server", "admin"}
    for kind, key in new.items():
        assert key.startswith(f"lw_{kind}_") and len(key) > 30
        assert ring.authenticate(key) == KeyKind(kind)
    path = tmp_path / "data" / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert new["server"] not in text and new["admin"] not in text
    assert hash_key(new["server"]) in text and hash_key(new["admin"]) in text
    assert new["write"] in text  # public: the sample page embeds it
    assert ring.write_key_plain == new["write"]


def test_second_start_returns_no_new_keys_and_accepts_the_old_ones(tmp_path: Path) -> None:
    _, first = KeyRing.load_or_create(tmp_path, {})
    before = (tmp_path / KEYS_FILE).read_bytes()
    ring, second = KeyRing.load_or_create(tmp_path, {})
    assert second == {}
    assert (tmp_path / KEYS_FILE).read_bytes() == before
    assert ring.authenticate(first["admin"]) is KeyKind.ADMIN
    assert ring.write_key_plain == first["write"]


def test_environment_keys_override_the_file(tmp_path: Path) -> None:
    _, generated = KeyRing.load_or_create(tmp_path, {})
    env = {"LOOPWISE_SERVER_KEY": "server-new, server-old", "LOOPWISE_WRITE_KEY": "w-env"}
    ring, new = KeyRing.load_or_create(tmp_path, env)
    assert new == {}
    assert ring.authenticate("server-new") is KeyKind.SERVER
    assert ring.authenticate("server-old") is KeyKind.SERVER  # rotation: both valid
    assert ring.authenticate(generated["server"]) is None
    assert ring.authenticate(generated["admin"]) is KeyKind.ADMIN  # not overridden
    assert ring.write_key_plain == "w-env"


def test_all_keys_from_environment_writes_no_file(tmp_path: Path) -> None:
    env = {
        "LOOPWISE_WRITE_KEY": "w",
        "LOOPWISE_SERVER_KEY": "s",
        "LOOPWISE_ADMIN_KEY": "a",
    }
    ring, new = KeyRing.load_or_create(tmp_path, env)
    assert new == {}
    assert not (tmp_path / KEYS_FILE).exists()
    assert [ring.authenticate(k) for k in ("w", "s", "a")] == list(KeyKind)


def test_only_missing_kinds_are_generated(tmp_path: Path) -> None:
    ring, new = KeyRing.load_or_create(tmp_path, {"LOOPWISE_ADMIN_KEY": "a"})
    assert set(new) == {"write", "server"}
    stored = orjson.loads((tmp_path / KEYS_FILE).read_bytes())
    assert "admin" not in stored
    assert ring.authenticate("a") is KeyKind.ADMIN


def test_unknown_and_empty_keys_are_refused() -> None:
    ring = KeyRing.from_plain({KeyKind.SERVER: ["s"]})
    assert ring.authenticate("t") is None
    assert ring.authenticate("") is None
    assert KeyRing().authenticate("s") is None
    assert ring.write_key_plain is None


def test_authenticate_compares_every_hash_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ring = KeyRing.from_plain(
        {KeyKind.WRITE: ["w1", "w2"], KeyKind.SERVER: ["s"], KeyKind.ADMIN: ["a"]}
    )
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    assert ring.authenticate("w1") is KeyKind.WRITE  # matches the very first entry
    assert len(calls) == 4  # ...and still compared against all the others
    calls.clear()
    assert ring.authenticate("nope") is None
    assert len(calls) == 4


def test_corrupt_key_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / KEYS_FILE).write_text("{not json")
    with pytest.raises(ConfigError) as caught:
        KeyRing.load_or_create(tmp_path, {})
    assert caught.value.field == KEYS_FILE
    assert "delete it" in caught.value.detail
    (tmp_path / KEYS_FILE).write_text('{"server": {"hashes": ["short"]}}')
    with pytest.raises(ConfigError) as caught:
        KeyRing.load_or_create(tmp_path, {})
    assert caught.value.field == "keys.json.server"


@pytest.mark.parametrize(
    ("kind", "allowed"),
    [
        (KeyKind.WRITE, {Scope.INGEST, Scope.EXPLAIN, Scope.PUBLIC_DECIDE}),
        (
            KeyKind.SERVER,
            {
                Scope.INGEST,
                Scope.DECIDE,
                Scope.PUBLIC_DECIDE,
                Scope.READ_PROFILES,
                Scope.CONSENT,
                Scope.EXPLAIN,
            },
        ),
        (KeyKind.ADMIN, set(Scope)),
    ],
)
def test_scopes_per_kind(kind: KeyKind, allowed: set[Scope]) -> None:
    assert {scope for scope in Scope if has_scope(kind, scope)} == allowed


def _recheck_now(ring: KeyRing) -> None:
    ring._next_check = 0.0  # skip the once-a-second throttle instead of sleeping


def test_rotation_without_downtime_in_a_running_ring(tmp_path: Path) -> None:
    ring, first = KeyRing.load_or_create(tmp_path, {})
    old = first["server"]
    new_id, new = create_key(tmp_path, KeyKind.SERVER)
    _recheck_now(ring)
    assert ring.authenticate(new) is KeyKind.SERVER
    assert ring.authenticate(old) is KeyKind.SERVER  # both work while clients move over
    old_id = next(
        row["id"] for row in list_keys(tmp_path) if row["kind"] == "server" and row["id"] != new_id
    )
    revoke_key(tmp_path, old_id)
    _recheck_now(ring)
    assert ring.authenticate(old) is None
    assert ring.authenticate(new) is KeyKind.SERVER


def test_reload_is_throttled_and_skips_an_unchanged_file(tmp_path: Path) -> None:
    ring, _ = KeyRing.load_or_create(tmp_path, {})
    _, new = create_key(tmp_path, KeyKind.ADMIN)
    assert ring.authenticate(new) is None  # not re-read within the second after loading
    _recheck_now(ring)
    assert ring.authenticate(new) is KeyKind.ADMIN


def test_environment_kinds_are_not_changed_by_the_file(tmp_path: Path) -> None:
    ring, _ = KeyRing.load_or_create(tmp_path, {"LOOPWISE_ADMIN_KEY": "env-admin"})
    _, new = create_key(tmp_path, KeyKind.ADMIN)
    _recheck_now(ring)
    assert ring.authenticate("env-admin") is KeyKind.ADMIN
    assert ring.authenticate(new) is None


def test_list_never_shows_a_key_and_revoke_guards_the_last_key(tmp_path: Path) -> None:
    _, first = KeyRing.load_or_create(tmp_path, {})
    _, second_write = create_key(tmp_path, KeyKind.WRITE)
    rows = list_keys(tmp_path)
    assert [row["kind"] for row in rows] == ["write", "write", "server", "admin"]
    assert all(row["created_at"] and len(row["id"]) == 12 for row in rows)
    text = str(rows)
    assert all(key not in text for key in [*first.values(), second_write])
    admin_id = next(row["id"] for row in rows if row["kind"] == "admin")
    with pytest.raises(ConfigError):
        revoke_key(tmp_path, admin_id)
    with pytest.raises(NotFound):
        revoke_key(tmp_path, "nope")
    # the newest write key is the one the snippet serves; revoking it falls back to the other
    ring, _ = KeyRing.load_or_create(tmp_path, {})
    assert ring.write_key_plain == second_write
    revoke_key(tmp_path, hash_key(second_write)[:12])
    ring, _ = KeyRing.load_or_create(tmp_path, {})
    assert ring.write_key_plain == first["write"]


def test_two_key_changes_at_once_both_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `loopwise keys create` runs at the same moment: the second must not write over the
    first one's new key with the file it read before that key was there."""
    KeyRing.load_or_create(tmp_path, {})
    write_file = keys_module._write_file
    paused, go = threading.Event(), threading.Event()

    def slow_first_write(path: Path, document: dict[str, object]) -> None:
        if not paused.is_set():
            paused.set()
            go.wait(timeout=10)
        write_file(path, document)

    monkeypatch.setattr(keys_module, "_write_file", slow_first_write)
    made: list[str] = []
    first = threading.Thread(target=lambda: made.append(create_key(tmp_path, KeyKind.SERVER)[0]))
    first.start()
    assert paused.wait(timeout=10)
    second = threading.Thread(target=lambda: made.append(create_key(tmp_path, KeyKind.SERVER)[0]))
    second.start()
    second.join(timeout=0.3)  # without a lock it writes now, before the first one
    go.set()
    first.join(timeout=10)
    second.join(timeout=10)
    stored = {row["id"] for row in list_keys(tmp_path)}
    assert len(made) == 2 and set(made) <= stored


def test_a_revoke_within_the_same_mtime_tick_is_still_seen(tmp_path: Path) -> None:
    """Filesystems with coarse timestamps (1 s on ext3, HFS+, many network mounts) give a
    scripted create-then-revoke the same mtime: the revoke must still reach a running server."""
    ring, first = KeyRing.load_or_create(tmp_path, {})
    path = tmp_path / KEYS_FILE
    _, new = create_key(tmp_path, KeyKind.SERVER)
    _recheck_now(ring)
    assert ring.authenticate(new) is KeyKind.SERVER
    seen = path.stat().st_mtime_ns
    revoke_key(tmp_path, hash_key(first["server"])[:12])
    os.utime(path, ns=(seen, seen))  # the same tick as the file the ring last read
    _recheck_now(ring)
    assert ring.authenticate(first["server"]) is None
