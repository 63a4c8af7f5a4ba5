"""Geolocation at the ingest edge: the bundled country table, a MaxMind-format city database
(written here with mmdb-writer, read by MaxMind's reader), looked up before the address is
truncated, never against the country the client states, and off where the workspace says so."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopwise.errors import ConfigError
from loopwise.events.geolocation import (
    CITY_DATABASE_ENV,
    CityDatabase,
    CountryDatabase,
    Location,
    open_geolocator,
)
from loopwise.events.normalize import parse_request

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LONDON = {
    "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
    "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
    "city": {"names": {"en": "London"}},
}


@pytest.fixture(scope="module")
def city_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GeoLite2-City-shaped database: 81.2.69.0/24 is London."""
    netaddr = pytest.importorskip("netaddr")
    mmdb_writer = pytest.importorskip("mmdb_writer")
    writer = mmdb_writer.MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City", languages=["en"]
    )
    writer.insert_network(netaddr.IPSet(["81.2.69.0/24"]), LONDON)
    path = tmp_path_factory.mktemp("geo") / "GeoLite2-City.mmdb"
    writer.to_db_file(str(path))
    return path


def test_the_bundled_country_table_works_out_of_the_box() -> None:
    countries = CountryDatabase()
    assert countries.locate("8.8.8.8") == Location(country="US")
    assert countries.locate("::ffff:8.8.8.8") == Location(country="US")
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "not an address", ""):
        assert countries.locate(private) is None


def test_a_city_database_gives_country_region_and_city(city_file: Path) -> None:
    city = CityDatabase(city_file)
    assert city.locate("81.2.69.142") == Location("GB", "England", "London")
    assert city.locate("8.8.8.8") is None  # not in this file
    chained = open_geolocator({CITY_DATABASE_ENV: str(city_file)})
    assert chained.locate("81.2.69.142") == Location("GB", "England", "London")
    assert chained.locate("8.8.8.8") == Location(country="US")  # the bundled table fills in


def test_an_unreadable_city_database_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(ConfigError) as info:
        open_geolocator({CITY_DATABASE_ENV: str(bad)})
    assert info.value.field == CITY_DATABASE_ENV
    with pytest.raises(ConfigError):
        open_geolocator({CITY_DATABASE_ENV: str(tmp_path / "missing.mmdb")})


def parse(message: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    body = {"anonymousId": "a1", "event": "Viewed", **message}
    [event] = parse_request(body, kind="track", received_at=NOW, **kwargs)
    return event.context


def test_ingest_locates_before_truncating_and_never_overrides_the_stated_country(
    city_file: Path,
) -> None:
    locate = open_geolocator({CITY_DATABASE_ENV: str(city_file)}).locate
    context = parse({"context": {"ip": "81.2.69.142"}}, locate=locate)
    assert context["location"] == {"country": "GB", "region": "England", "city": "London"}
    assert context["ip"] == "81.2.69.0"  # stored truncated, after the lookup
    stated = parse({"context": {"ip": "81.2.69.142", "location": {"country": "DE"}}}, locate=locate)
    assert stated["location"] == {"country": "DE"}
    own = parse({"context": {"ip": "81.2.69.142", "location": {"city": "Camden"}}}, locate=locate)
    assert own["location"] == {"city": "Camden", "country": "GB", "region": "England"}
    by_client = parse({}, locate=locate, client_ip="81.2.69.7")  # the browser's own address
    assert by_client["location"]["city"] == "London" and "ip" not in by_client
    assert "location" not in parse({"context": {"ip": "81.2.69.142"}})  # no lookup given


def test_over_http_the_profile_gets_the_location_unless_the_workspace_turns_it_off(
    city_file: Path,
) -> None:
    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyKind, KeyRing
    from loopwise.clock import FixedClock
    from loopwise.config import parse_workspace
    from loopwise.engine import Engine
    from loopwise.storage.memory import MemoryStorage

    ring = KeyRing.from_plain({KeyKind.WRITE: ["lw_w"], KeyKind.SERVER: ["lw_s"]})
    geolocator = open_geolocator({CITY_DATABASE_ENV: str(city_file)})
    for enabled in (True, False):
        # no opt-in region, so the London visitor's events are stored without a consent choice
        no_opt_in = {"defaults": {"regions": {}}}
        workspace = parse_workspace({"profiles": {"geolocation": enabled}, "privacy": no_opt_in})
        engine = Engine(
            workspace, MemoryStorage(), keys=ring, clock=FixedClock(NOW), geolocator=geolocator
        )
        with TestClient(create_app(engine)) as client:
            body = {"anonymousId": "visitor", "event": "Viewed", "context": {"ip": "81.2.69.142"}}
            sent = client.post("/v1/track", json=body, headers={"Authorization": "Bearer lw_w"})
            assert sent.status_code == 200
            profile = client.get(
                "/v1/profiles/visitor", headers={"Authorization": "Bearer lw_s"}
            ).json()["profile"]
        where = (profile["country"], profile["region"], profile["city"])
        assert where == (("GB", "England", "London") if enabled else (None, None, None))
        engine.close()


def test_a_browser_decide_is_located_like_its_events(city_file: Path) -> None:
    from loopwise.api.app import create_app
    from loopwise.api.keys import KeyKind, KeyRing
    from loopwise.clock import FixedClock
    from loopwise.config import parse_workspace
    from loopwise.engine import Engine
    from loopwise.storage.memory import MemoryStorage

    ring = KeyRing.from_plain({KeyKind.WRITE: ["lw_w"]})
    workspace = parse_workspace({
        "segments": [{"key": "london", "name": "London", "condition": {"context.city": "London"}}],
        "slots": [{"key": "hero", "kind": "block", "variants": [{"id": "a", "content": {}}]}],
    })  # fmt: skip
    geolocator = open_geolocator({CITY_DATABASE_ENV: str(city_file)})
    engine = Engine(
        workspace, MemoryStorage(), keys=ring, clock=FixedClock(NOW), geolocator=geolocator
    )
    body = {"user": {"anonymous_id": "a1"}, "context": {"ip": "81.2.69.142"},
            "slots": [{"slot": "hero"}]}  # fmt: skip
    with TestClient(create_app(engine)) as client:
        decided = client.post("/v1/decide", json=body, headers={"Authorization": "Bearer lw_w"})
    assert decided.status_code == 200, decided.text
    assert "london" in decided.json()["segments"]
    engine.close()
