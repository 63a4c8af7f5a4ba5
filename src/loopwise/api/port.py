"""What the HTTP edge needs from the engine, as a Protocol, so the routes are testable without it.

``loopwise.engine.Engine`` satisfies :class:`EnginePort`; the tests use an in-memory fake. Route
handlers reach the engine of their app through :func:`engine_of` and read JSON bodies through
:func:`check_content_type` and :func:`read_json` (one set of rules and errors for every route).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, cast

from starlette.requests import Request

from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.api.keys import KeyRing
from loopwise.catalog.items import Item
from loopwise.channels.batch import Campaign, DecideBatchRequest
from loopwise.channels.rerank import RerankRequest
from loopwise.decide.edge_exposures import EdgeExposuresRequest
from loopwise.decide.request import DecideRequest, DecideResponse
from loopwise.errors import UnsupportedMediaType
from loopwise.events.limits import parse_json
from loopwise.events.normalize import Locate
from loopwise.events.schema import Event
from loopwise.workspace.history import Applied, Author


class IngestResult(Protocol):
    accepted: int
    duplicates: int
    anonymised: int


class KeysPort(Protocol):
    """What every route's authentication reads."""

    @property
    def keys(self) -> KeyRing: ...


class EdgeSettingsPort(Protocol):
    """The live workspace settings the middleware applies (CORS, rate limits)."""

    @property
    def settings_cors(self) -> CorsSettings: ...

    @property
    def settings_rate_limits(self) -> RateLimitSettings: ...


class IngestPort(KeysPort, Protocol):
    # Read-only here (the routes never assign them); plain attributes satisfy a property.
    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def settings_country_header(self) -> str | None:
        """Header carrying the visitor's country (set by a CDN/proxy), or None."""
        ...

    @property
    def settings_truncate_ip(self) -> bool:
        """Whether ``context.ip`` is stored truncated (the workspace's profiles.truncate_ip)."""
        ...

    @property
    def geolocation(self) -> Locate | None:
        """The IP address lookup for ingest, or None when the workspace turned it off."""
        ...

    def submit_ingest(self, events: list[Event]) -> concurrent.futures.Future[Any]:
        """Resolves to an :class:`IngestResult` once the events are durable. (``Future`` is
        invariant, so ``Future[IngestResult]`` would reject an engine's concrete result class.)"""
        ...


class DecidePort(KeysPort, Protocol):
    @property
    def settings_country_header(self) -> str | None:
        """Header carrying the visitor's country (set by a CDN/proxy), or None."""
        ...

    @property
    def geolocation(self) -> Locate | None:
        """Where a browser's decide comes from, as its events would say (None: turned off)."""
        ...

    def decide(self, request: DecideRequest, headers: Mapping[str, str]) -> DecideResponse: ...

    def get_decision(self, decision_id: str) -> dict[str, Any] | None: ...


class ChannelsPort(KeysPort, Protocol):
    """Campaign decisions and search reranking (api/routes_channels.py)."""

    @property
    def settings_country_header(self) -> str | None: ...

    def decide_batch(self, request: DecideBatchRequest) -> Campaign:
        """Validates against the live workspace (ValidationFailed naming the field); the
        campaign decides as its ``rows()`` are read."""
        ...

    def rerank(self, request: RerankRequest, headers: Mapping[str, str]) -> dict[str, Any]:
        """The reply, shaped as ``channels.rerank.RerankResponse``."""
        ...


class ProfilesPort(KeysPort, Protocol):
    def profile_view(self, identifier: str) -> dict[str, Any] | None: ...

    def erase_profile(self, identifier: str) -> dict[str, Any]:
        """Erase a person (NotFound when unknown); returns the receipt."""
        ...

    def export_profile(self, identifier: str) -> dict[str, Any]:
        """Everything held about a person (NotFound when unknown)."""
        ...


class ConsentPort(KeysPort, Protocol):
    def get_consent(self, user_id: str, country: str | None = None) -> dict[str, Any]: ...

    def put_consent(self, user_id: str, body: Any) -> dict[str, Any]:
        """Validates ``body`` (ValidationFailed naming the field); durable when it returns."""
        ...

    def consent_history(self, user_id: str) -> list[dict[str, Any]]: ...


class ItemsPort(KeysPort, Protocol):
    @property
    def clock(self) -> Callable[[], datetime]: ...

    def put_items(self, items: list[Item]) -> int: ...

    def get_item(self, item_id: str) -> Item | None: ...

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]: ...

    def delete_items(self, item_ids: list[str]) -> int: ...


class WorkspacePort(KeysPort, Protocol):
    def workspace_document(self) -> dict[str, Any]: ...

    def replace_workspace(self, document: dict[str, Any]) -> dict[str, Any]: ...

    def put_slot(self, key: str, document: dict[str, Any]) -> dict[str, Any]: ...

    def delete_slot(self, key: str) -> None: ...

    def put_segment(self, key: str, document: dict[str, Any]) -> dict[str, Any]: ...

    def delete_segment(self, key: str) -> None: ...

    def workspace_snapshot(self) -> tuple[int, dict[str, Any]]:
        """The live workspace revision (the ETag) and its document."""
        ...

    def change_workspace(
        self,
        section: str | None,
        key: str | None,
        document: dict[str, Any] | None,
        *,
        author: Author,
        expected: int | None,
    ) -> Applied:
        """Replace the whole workspace (``section`` None) or put/delete (``document`` None) one
        entry; StaleRevision (412) when ``expected`` is not the live revision."""
        ...

    def workspace_history(self, limit: int, before: int | None) -> list[dict[str, Any]]: ...

    def workspace_revision(self, revision: int) -> dict[str, Any] | None:
        """One revision with its whole ``document``."""
        ...

    def restore_workspace(
        self, revision: int, *, author: Author, expected: int | None
    ) -> Applied: ...

    def replay(self) -> dict[str, Any]: ...

    def cluster(self, k_min: int, k_max: int, seed: int) -> dict[str, Any]:
        """Fit K-Means on the profiles, publish the clusters as segments, return the report."""
        ...

    def clusters(self) -> dict[str, Any]: ...


class ExperimentsPort(KeysPort, Protocol):
    def list_experiments(self) -> list[dict[str, Any]]: ...

    def experiment_results(self, key: str, segment: str | None = None) -> dict[str, Any]:
        """Raises NotFound for an unknown experiment or segment."""
        ...

    def experiment_results_over_time(self, key: str) -> dict[str, Any]:
        """Per day of first exposure, the lift so far. Raises NotFound for an unknown key."""
        ...


class ModelsPort(KeysPort, Protocol):
    def train_models(self, wait: bool = True) -> dict[str, Any]:
        """Train and serve a new model version (``wait=False``: start it in the background)."""
        ...

    def model_versions(self) -> dict[str, Any]: ...

    def rollback_models(self, version: str | None = None) -> dict[str, Any]: ...


class EdgePort(KeysPort, Protocol):
    def workspace_document(self) -> dict[str, Any]: ...

    def record_edge_exposures(self, request: EdgeExposuresRequest) -> dict[str, Any]:
        """Store the first exposures of experiments the edge decided (durable on return)."""
        ...


class HealthPort(Protocol):
    def health(self) -> dict[str, Any]:
        """``{"ok": bool, "read": "ok" | problem, "write": "ok" | problem, "backend": ...}``."""
        ...


class EnginePort(
    IngestPort,
    DecidePort,
    ProfilesPort,
    ConsentPort,
    ItemsPort,
    WorkspacePort,
    ExperimentsPort,
    ModelsPort,
    EdgePort,
    HealthPort,
    EdgeSettingsPort,
    ChannelsPort,
    Protocol,
):
    """Everything the HTTP app needs, for ``create_app``; each route module sees the engine
    through its own narrow port (a ``_engine(request) -> <Port>`` accessor at its top)."""


def engine_of(request: Request) -> EnginePort:
    """The engine ``create_app`` attached to this request's app."""
    return cast(EnginePort, request.app.state.engine)


def check_content_type(headers: Mapping[str, str]) -> None:
    """JSON bodies only, when a type is given: ``application/json``, ``*+json``, or ``text/plain``
    (what ``navigator.sendBeacon`` sends for a string)."""
    value = headers.get("content-type")
    if not value:
        return
    media = value.partition(";")[0].strip().lower()
    if media in ("application/json", "text/plain") or media.endswith("+json"):
        return
    raise UnsupportedMediaType(
        f"Content-Type {media!r} is not supported; send JSON with Content-Type: application/json.",
        field="Content-Type",
    )


def check_json_headers(headers: Mapping[str, str]) -> None:
    """A JSON Content-Type (or none) and no Content-Encoding: the rules of every non-ingest body."""
    check_content_type(headers)
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported here; send the body uncompressed.",
            field="Content-Encoding",
        )


async def read_json(request: Request) -> Any:
    """The request's JSON body (uncompressed; the body-size limit was enforced on receipt). An
    object naming a key twice is refused (400 naming it): these are admin, workspace, catalog
    and consent documents, where a silently dropped value would be a change nobody saw."""
    check_json_headers(request.headers)
    return parse_json(await request.body(), unique_keys=True)
