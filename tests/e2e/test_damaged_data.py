"""Damaged stored rows (a profile, an event, an item, the stored workspace) never stop the
server, never block a person's erasure or export, and are repaired where they can be."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from loopwise.profiles.identity import profile_id_for
from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, Server, start_server, stop_server


def damage(db: Path, pid: str) -> None:
    conn = sqlite3.connect(db)
    try:
        record = orjson.loads(
            conn.execute("SELECT record FROM profiles WHERE id = ?", (pid,)).fetchone()[0]
        )
        record["cart_value"] = None  # what an overflow to infinity used to store
        conn.execute("UPDATE profiles SET record = ? WHERE id = ?", (orjson.dumps(record), pid))
        conn.execute(  # an event row that is not JSON at all
            "UPDATE events SET record = x'00ff00' WHERE seq = (SELECT min(seq) FROM events "
            "WHERE profile_id != ?)",
            (pid,),
        )
        conn.execute("UPDATE items SET record = 'not json' WHERE id = 'yoga-001'")
        conn.execute("UPDATE config SET value = '{broken' WHERE key = 'workspace'")
        conn.commit()
    finally:
        conn.close()


def test_damaged_rows_are_survived_repaired_and_erasable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    cart = {
        "type": "track",
        "userId": "X",
        "event": "Product Added",
        "properties": {"product_id": "run-001", "price": 120.0, "quantity": 1},
    }
    bystander = {"type": "page", "userId": "bystander", "name": "Home"}
    try:
        with server.client(SERVER_KEY) as client:
            assert client.post("/v1/batch", json={"batch": [cart, bystander]}).status_code == 200
    finally:
        stop_server(server)
    damage(data / "loopwise.db", profile_id_for("X"))

    server = start_server(data)  # starts: damaged rows are reported, not fatal
    try:
        with server.client(SERVER_KEY) as client:
            view = client.get("/v1/profiles/X")
            assert view.status_code == 200, view.text
            assert view.json()["profile"]["cart"]["value"] == 120.0  # rebuilt from its events
            more = {**cart, "properties": {"product_id": "run-002", "price": 80.0}}
            mixed = {"batch": [more, {**bystander, "name": "About"}]}
            assert client.post("/v1/batch", json=mixed).status_code == 200
            decided = client.post(
                "/v1/decide", json={"user": {"user_id": "X"}, "slots": [{"slot": "hero"}]}
            )
            assert decided.status_code == 200, decided.text
            assert client.get("/v1/profiles/bystander").json()["profile"]["events"] == 2
        with server.client(ADMIN_KEY) as admin:
            replayed = admin.post("/v1/admin/replay")
            assert replayed.status_code == 200, replayed.text
            exported = admin.get("/v1/profiles/X/export")
            assert exported.status_code == 200, exported.text
            assert exported.json()["profile"]["cart"]["value"] == 200.0
            erased = admin.delete("/v1/profiles/X")
            assert erased.status_code == 200, erased.text
            assert erased.json()["removed"]["events"] == 2
            assert admin.get("/v1/profiles/X").status_code == 404
        assert "Traceback" not in server.log()
    finally:
        stop_server(server)
    conn = sqlite3.connect(data / "loopwise.db")
    try:
        left = conn.execute(
            "SELECT count(*) FROM profiles WHERE id = ?", (profile_id_for("X"),)
        ).fetchone()[0]
    finally:
        conn.close()
    assert left == 0


def test_a_damaged_profile_is_repaired_on_disk_by_replay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server: Server = start_server(data)
    try:
        with server.client(SERVER_KEY) as client:
            body = {"type": "track", "userId": "Y", "event": "Order Completed",
                    "properties": {"revenue": 50}}  # fmt: skip
            assert client.post("/v1/track", json=body).status_code == 200
    finally:
        stop_server(server)
    damage(data / "loopwise.db", profile_id_for("Y"))
    server = start_server(data)
    try:
        with server.client(ADMIN_KEY) as admin:
            report = admin.post("/v1/admin/replay").json()
            assert report["differing"] >= 1
    finally:
        stop_server(server)
    conn = sqlite3.connect(data / "loopwise.db")
    try:
        blob = conn.execute(
            "SELECT record FROM profiles WHERE id = ?", (profile_id_for("Y"),)
        ).fetchone()[0]
    finally:
        conn.close()
    assert orjson.loads(blob)["revenue"] == 50
