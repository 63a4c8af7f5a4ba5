"""Workspace changes through the admin API apply without restart and persist."""

from __future__ import annotations

from tests.e2e.conftest import ADMIN_KEY, SERVER_KEY, Server, start_server, stop_server


def test_put_slot_applies_now_and_survives_restart(server: Server) -> None:
    slot = {
        "kind": "block",
        "variants": [
            {"id": "a", "content": {"headline": "Hello A"}},
            {"id": "b", "content": {"headline": "Hello B"}},
        ],
        "default_variant": "a",
        "rules": [
            {
                "id": "mobile-b",
                "when": {"context.device.type": "mobile"},
                "then": {"variant": "b"},
                "priority": 5,
            }
        ],
    }
    with server.client(ADMIN_KEY) as admin:
        response = admin.put("/v1/admin/slots/banner", json=slot)
        assert response.status_code == 200, response.text
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    with server.client(SERVER_KEY) as client:
        body = client.post(
            "/v1/decide",
            json={
                "user": {"anonymous_id": "admin-test"},
                "context": {"userAgent": iphone},
                "slots": [{"slot": "banner"}],
            },
        ).json()
    assert body["slots"][0]["variant"]["id"] == "b"
    assert body["slots"][0]["rule"] == "mobile-b"


def test_invalid_change_is_rejected_and_nothing_applies(server: Server) -> None:
    bad = {
        "kind": "block",
        "variants": [{"id": "a", "content": {}}],
        "rules": [{"id": "r", "when": {"profile.sessions": {"$in": 3}}, "then": {"variant": "a"}}],
    }
    with server.client(ADMIN_KEY) as admin:
        before = admin.get("/v1/admin/workspace").json()
        response = admin.put("/v1/admin/slots/broken", json=bad)
        assert response.status_code == 400
        problem = response.json()
        assert "$in" in problem["detail"]
        assert problem["field"].startswith("rules[0].when")
        assert admin.get("/v1/admin/workspace").json() == before


def test_admin_changes_persist_across_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = start_server(tmp_path / "data")
    try:
        with first.client(ADMIN_KEY) as admin:
            segment = {"name": "Night owls", "condition": {"context.time.hour": {"$gte": 22}}}
            assert admin.put("/v1/admin/segments/night_owls", json=segment).status_code == 200
    finally:
        stop_server(first)
    second = start_server(tmp_path / "data")
    try:
        with second.client(ADMIN_KEY) as admin:
            keys = [s["key"] for s in admin.get("/v1/admin/workspace").json()["segments"]]
        assert "night_owls" in keys
    finally:
        stop_server(second)


def test_typed_saved_groups_target_segments_over_http(server: Server) -> None:
    """GrowthBook's typed saved groups through the admin API: a list group and a condition group
    referenced with $savedGroup put people in a segment; a reference to a missing group is a 400
    that changes nothing."""
    with server.client(ADMIN_KEY) as admin:
        document = admin.get("/v1/admin/workspace").json()
        document["saved_groups"] = {
            "beta": {"type": "list", "attributeKey": "profile.user_id", "values": ["sg-u1"]},
            "pro": {"type": "condition", "condition": {"profile.traits.plan": "pro"}},
        }
        segment = {
            "key": "pro_beta",
            "name": "Pro beta testers",
            "condition": {
                "$and": [{"$savedGroup": {"id": "beta"}}, {"$savedGroup": {"id": "pro"}}]
            },
        }
        document["segments"] = [*document.get("segments", []), segment]
        response = admin.put("/v1/admin/workspace", json=document)
        assert response.status_code == 200, response.text
        broken = {"name": "X", "condition": {"$savedGroup": {"id": "nope"}}}
        refused = admin.put("/v1/admin/segments/broken", json=broken)
        assert refused.status_code == 400, refused.text
        assert refused.json()["field"].endswith("$savedGroup")
        assert "broken" not in [
            s["key"] for s in admin.get("/v1/admin/workspace").json()["segments"]
        ]
    with server.client(SERVER_KEY) as client:
        for user in ("sg-u1", "sg-u2"):
            sent = client.post("/v1/identify", json={"userId": user, "traits": {"plan": "pro"}})
            assert sent.status_code == 200, sent.text
        segments = {
            user: client.get(f"/v1/profiles/{user}").json()["segments"]
            for user in ("sg-u1", "sg-u2")
        }
    assert "pro_beta" in segments["sg-u1"]
    assert "pro_beta" not in segments["sg-u2"]
