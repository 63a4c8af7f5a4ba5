"""Where an event comes from, by its IP address, read from offline databases at the ingest edge.

Two sources, both local files (nothing is asked of a service):

- a MaxMind-format **city** database the operator supplies (GeoLite2 City or GeoIP2 City, read by
  MaxMind's own reader ``maxminddb``; ``LOOPWISE_GEOIP_CITY=/path/GeoLite2-City.mmdb``): country,
  region and city;
- the **country** table bundled with the ``iptocc`` package (built from the five Regional Internet
  Registries' public delegation files, refreshed with each release; MIT or Apache-2.0), so country
  works out of the box. It gives the country a block is registered to, which agrees with MaxMind
  for most addresses but not all; a city database, when given, wins.

The location is looked up before the address is truncated (:mod:`loopwise.events.normalize`) and
only fills what the event does not say itself (``context.location``). The workspace turns it off
with ``profiles.geolocation: false``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loopwise.errors import ConfigError

CITY_DATABASE_ENV = "LOOPWISE_GEOIP_CITY"


@dataclass(frozen=True, slots=True)
class Location:
    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    region: str | None = None  # the first subdivision's English name (e.g. "England")
    city: str | None = None

    def as_context(self) -> dict[str, str]:
        """The Segment ``context.location`` fields this location knows."""
        values = {"country": self.country, "region": self.region, "city": self.city}
        return {key: value for key, value in values.items() if value}


class Geolocator(Protocol):
    def locate(self, ip: str) -> Location | None:
        """The location of a public address, or None (private, unknown or not an address)."""
        ...


def _public(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


class CountryDatabase:
    """The country table bundled with ``iptocc`` (loaded once, in memory)."""

    def __init__(self) -> None:
        import iptocc

        self._lookup = iptocc.country_code

    def locate(self, ip: str) -> Location | None:
        address = _public(ip)
        code = self._lookup(address) if address is not None else None
        return Location(country=code.upper()) if isinstance(code, str) and code else None


class CityDatabase:
    """A MaxMind-format city database (GeoLite2 City), memory-mapped by ``maxminddb``."""

    def __init__(self, path: Path) -> None:
        import maxminddb
        from maxminddb.errors import InvalidDatabaseError

        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, InvalidDatabaseError) as exc:
            raise ConfigError(
                f"Cannot read the city database {str(path)!r} ({exc}); give a GeoLite2 City "
                f"(.mmdb) file in {CITY_DATABASE_ENV}, or unset it to use countries only.",
                field=CITY_DATABASE_ENV,
            ) from None

    def locate(self, ip: str) -> Location | None:
        address = _public(ip)
        if address is None:
            return None
        record = self._reader.get(address)
        if not isinstance(record, Mapping):
            return None
        country = _text(record, "country", "iso_code")
        subdivisions = record.get("subdivisions")
        region = None
        if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
            region = _name(subdivisions[0]) or _text(subdivisions[0], "iso_code")
        city = record.get("city")
        location = Location(
            country=country.upper() if country else None,
            region=region,
            city=_name(city) if isinstance(city, Mapping) else None,
        )
        return location if location.as_context() else None

    def close(self) -> None:
        self._reader.close()


class ChainedGeolocator:
    """The first source that knows the address; a country-only answer is completed by none."""

    def __init__(self, *sources: Geolocator) -> None:
        self.sources = sources

    def locate(self, ip: str) -> Location | None:
        for source in self.sources:
            found = source.locate(ip)
            if found is not None:
                return found
        return None


def open_geolocator(environ: Mapping[str, str]) -> Geolocator:
    """The city database named in ``LOOPWISE_GEOIP_CITY`` (if any), then the bundled countries."""
    countries = CountryDatabase()
    city_file = environ.get(CITY_DATABASE_ENV)
    if not city_file:
        return countries
    return ChainedGeolocator(CityDatabase(Path(city_file)), countries)


def _text(record: Mapping[str, Any], *path: str) -> str | None:
    current: Any = record
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current if isinstance(current, str) and current else None


def _name(record: Mapping[str, Any]) -> str | None:
    return _text(record, "names", "en")
