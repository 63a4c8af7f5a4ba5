"""An in-memory :class:`~loopwise.api.port.EnginePort` that records what the routes hand it."""

from __future__ import annotations

import concurrent.futures
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loopwise.api.edge_settings import CorsSettings, RateLimitSettings
from loopwise.api.keys import KeyRing
from loopwise.catalog.items import Item
from loopwise.clock import FixedClock
from loopwise.decide.request import DecideRequest, DecideResponse, Reason, SlotDecision
from loopwise.errors import ConfigError, Conflict, NotFound
from loopwise.events.schema import Event
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy.settings import PrivacySettings
from loopwise.workspace.history import Applied, Author, stale

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeIngestResult:
    accepted: int = 0
    duplicates: int = 0
    anonymised: int = 0


@dataclass
class FakeEngine:
    keys: KeyRing
    clock: Callable[[], datetime] = field(default_factory=lambda: FixedClock(NOW))
    settings_country_header: str | None = "CF-IPCountry"
    is_healthy: bool = True
    batches: list[list[Event]] = field(default_factory=list)
    seen_message_ids: set[str] = field(default_factory=set)
    decide_calls: list[tuple[DecideRequest, dict[str, str]]] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspace: dict[str, Any] = field(
        default_factory=lambda: {"workspace": "test", "slots": [], "segments": []}
    )
    replays: int = 0
    consent: dict[str, privacy_consent.ConsentState] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> results
    cluster_calls: list[tuple[int, int, int]] = field(default_factory=list)
    cluster_profiles: int = 30  # fewer than 20: cluster() refuses like the engine
    settings_truncate_ip: bool = True
    geolocation: Any = None
    settings_cors: CorsSettings = field(default_factory=CorsSettings)
    settings_rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    model_history: list[str] = field(default_factory=list)
    score_history: list[str] = field(default_factory=list)
    rollbacks: list[str] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)  # documents, oldest first
    authors: list[Author] = field(default_factory=list)

    def health(self) -> dict[str, Any]:
        state = "ok" if self.is_healthy else "failing: database or disk is full"
        return {"ok": self.is_healthy, "backend": "fake", "read": "ok", "write": state}

    def submit_ingest(self, events: list[Event]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        result = FakeIngestResult()
        for event in events:
            if event.message_id in self.seen_message_ids:
                result.duplicates += 1
            else:
                self.seen_message_ids.add(event.message_id)
                result.accepted += 1
        self.batches.append(list(events))
        future.set_result(result)
        return future

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]

    def decide(self, request: DecideRequest, headers: Mapping[str, str]) -> DecideResponse:
        self.decide_calls.append((request, {k.lower(): v for k, v in headers.items()}))
        slots = [
            SlotDecision(
                slot=s.slot,
                kind="block",
                reasons=[Reason(kind="fallback", text="fake engine")],
            )
            for s in request.slots
        ]
        return DecideResponse(
            decision_id="d_fake",
            profile_id=request.user.user_id or request.user.anonymous_id or "",
            segments=["returning_visitor"],
            slots=slots,
        )

    def profile_view(self, identifier: str) -> dict[str, Any] | None:
        return self.profiles.get(identifier)

    def erase_profile(self, identifier: str) -> dict[str, Any]:
        if self.profiles.pop(identifier, None) is None:
            raise NotFound(f'No profile for "{identifier}".', field="identifier")
        return {
            "profile_id": identifier,
            "identifiers": [identifier],
            "removed": {"profiles": 1},
            "erased_at": NOW.isoformat(),
        }

    def export_profile(self, identifier: str) -> dict[str, Any]:
        view = self.profiles.get(identifier)
        if view is None:
            raise NotFound(f'No profile for "{identifier}".', field="identifier")
        return {"profile_id": identifier, "identifiers": [identifier], **view}

    def put_items(self, items: list[Item]) -> int:
        for item in items:
            self.items[item.id] = item
        return len(items)

    def get_item(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    def list_items(self, offset: int, limit: int) -> tuple[list[Item], int]:
        ordered = sorted(self.items)
        return [self.items[i] for i in ordered[offset : offset + limit]], len(ordered)

    def delete_items(self, item_ids: list[str]) -> int:
        return sum(self.items.pop(i, None) is not None for i in item_ids)

    def get_decision(self, decision_id: str) -> dict[str, Any] | None:
        return self.decisions.get(decision_id)

    def workspace_document(self) -> dict[str, Any]:
        return self.workspace

    def replace_workspace(self, document: dict[str, Any]) -> dict[str, Any]:
        slots = document.get("slots", [])
        if not isinstance(slots, list):
            raise ConfigError("slots must be a list of slot objects.", field="slots")
        self.workspace = document
        return document

    def _put(self, section: str, key: str, document: dict[str, Any]) -> dict[str, Any]:
        if "kind" in document and document["kind"] not in ("block", "list"):
            raise ConfigError('kind must be "block" or "list".', field="kind")
        entries = [e for e in self.workspace[section] if e["key"] != key]
        entry = {**document, "key": key}
        self.workspace[section] = [*entries, entry]
        return entry

    def _delete(self, section: str, key: str) -> None:
        entries = [e for e in self.workspace[section] if e["key"] != key]
        if len(entries) == len(self.workspace[section]):
            raise NotFound(f'No {section[:-1]} "{key}" in the workspace.', field="key")
        self.workspace[section] = entries

    def put_slot(self, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return self._put("slots", key, document)

    def delete_slot(self, key: str) -> None:
        self._delete("slots", key)

    def put_segment(self, key: str, document: dict[str, Any]) -> dict[str, Any]:
        return self._put("segments", key, document)

    def delete_segment(self, key: str) -> None:
        self._delete("segments", key)

    # -- revisions (the real engine's are tested in tests/workspace) ---------------------------
    def _revisions(self) -> list[dict[str, Any]]:
        if not self.revisions:
            self.revisions.append(copy.deepcopy(self.workspace))
        return self.revisions

    def workspace_snapshot(self) -> tuple[int, dict[str, Any]]:
        return len(self._revisions()), self.workspace

    def change_workspace(
        self,
        section: str | None,
        key: str | None,
        document: dict[str, Any] | None,
        *,
        author: Author,
        expected: int | None,
    ) -> Applied:
        current = len(self._revisions())
        if expected is not None and expected != current:
            raise stale(expected, current, ["~ something"])
        if section is None or key is None:
            self.replace_workspace(document or {})
        elif document is None:
            self._delete(section, key)
        else:
            self.workspace.setdefault(section, [])
            self._put(section, key, document)
        self.revisions.append(copy.deepcopy(self.workspace))
        self.authors.append(author)
        return Applied(len(self.revisions), self.workspace)

    def workspace_history(self, limit: int, before: int | None) -> list[dict[str, Any]]:
        numbers = range(len(self._revisions()), 0, -1)
        return [{"revision": n} for n in numbers if before is None or n < before][:limit]

    def workspace_revision(self, revision: int) -> dict[str, Any] | None:
        revisions = self._revisions()
        if not 1 <= revision <= len(revisions):
            return None
        return {"revision": revision, "document": revisions[revision - 1]}

    def restore_workspace(self, revision: int, *, author: Author, expected: int | None) -> Applied:
        found = self.workspace_revision(revision)
        if found is None:
            raise NotFound(f"No workspace revision {revision}.", field="revision")
        return self.change_workspace(
            None, None, copy.deepcopy(found["document"]), author=author, expected=expected
        )

    def replay(self) -> dict[str, Any]:
        self.replays += 1
        return {"profiles": len(self.profiles), "events": len(self.events), "differing": 0}

    def get_consent(self, user_id: str, country: str | None = None) -> dict[str, Any]:
        state = self.consent.get(user_id, privacy_consent.EMPTY)
        return {"user_id": user_id, **privacy_consent.view(state, country, PrivacySettings())}

    def put_consent(self, user_id: str, body: Any) -> dict[str, Any]:
        choices, source = privacy_consent.parse_choices(body, PrivacySettings())
        state = self.consent.get(user_id, privacy_consent.EMPTY)
        self.consent[user_id] = privacy_consent.with_choices(
            state, choices, self.clock(), source, "1"
        )
        return self.get_consent(user_id)

    def consent_history(self, user_id: str) -> list[dict[str, Any]]:
        return []

    def list_experiments(self) -> list[dict[str, Any]]:
        return [
            {"key": key, "slot": r["slot"], "status": r["status"]}
            for key, r in self.experiments.items()
        ]

    def list_journeys(self) -> list[dict[str, Any]]:
        return [{"key": "cart"}]

    def journey(self, key: str) -> dict[str, Any]:
        if key != "cart":
            raise NotFound(f'No journey "{key}".', field="key")
        return {"key": "cart", "steps": []}

    def outbox(self, status: str | None, limit: int) -> dict[str, Any]:
        return {"counts": {"pending": 0}}

    def retry_delivery(self, delivery_id: int) -> dict[str, Any]:
        raise NotFound(f"No dead delivery {delivery_id}.", field="delivery_id")

    def experiment_results(self, key: str, segment: str | None = None) -> dict[str, Any]:
        if key not in self.experiments:
            raise NotFound(f'No experiment "{key}".', field="key")
        if segment is not None and segment != "mobile_users":
            raise NotFound(f'No segment "{segment}".', field="segment")
        return {**self.experiments[key], "segment": segment}

    def cluster(self, k_min: int, k_max: int, seed: int) -> dict[str, Any]:
        self.cluster_calls.append((k_min, k_max, seed))
        if self.cluster_profiles < 20:
            raise Conflict(
                f"Only {self.cluster_profiles} profiles; clustering needs at least 20.",
                field="profiles",
            )
        return {"k": k_min, "clusters": [{"key": "cluster_1", "name": "Lapsed, hiking"}]}

    def clusters(self) -> dict[str, Any]:
        if not self.cluster_calls:
            return {"published": False, "clusters": [], "warnings": []}
        return {"published": True, **self.cluster(*self.cluster_calls[-1]), "warnings": []}

    # -- off-policy evaluation and bandits (routes_admin) ----------------------------------------
    def run_ope(self, document: dict[str, Any]) -> dict[str, Any]:
        return {"policy": document.get("policy"), "estimates": {}}

    def bandit_state(self) -> list[dict[str, Any]]:
        return []

    # -- trained models (routes_models) --------------------------------------------------------
    def train_models(self, wait: bool = True) -> dict[str, Any]:
        from loopwise.errors import Conflict

        if self.workspace.get("training_running"):
            raise Conflict("A training is already running.", field="training")
        self.model_history.append(f"v{len(self.model_history) + 1}")
        if not wait:
            return {"status": "running", "running": True}
        return {"version": self.model_history[-1]}

    def model_versions(self) -> dict[str, Any]:
        return {
            "current": self.model_history[-1] if self.model_history else None,
            "versions": [{"version": v} for v in reversed(self.model_history)],
        }

    # -- predictive scores (routes_scores) -----------------------------------------------------
    def train_scores(self) -> dict[str, Any]:
        self.score_history.append(f"v{len(self.score_history) + 1}")
        return {"version": self.score_history[-1], "scores": ["convert"], "report": {}}

    def score_versions(self) -> dict[str, Any]:
        return {"versions": [{"version": v} for v in reversed(self.score_history)]}

    def evaluate_scores(self, version: str | None = None, output: Any = None) -> dict[str, Any]:
        if not self.score_history or (version and version not in self.score_history):
            raise NotFound("No score model version; train one first.", field="version")
        return {"version": version or self.score_history[-1], "report": {}}

    def rollback_models(self, version: str | None = None) -> dict[str, Any]:
        from loopwise.errors import Conflict

        if version is not None:
            if version not in self.model_history:
                raise NotFound(f"No model version {version!r}.")
            self.rollbacks.append(version)
            return {"current": version}
        if len(self.model_history) < 2:
            raise Conflict("Nothing to roll back to.", field="version")
        self.model_history.pop()
        self.rollbacks.append(self.model_history[-1])
        return {"current": self.model_history[-1]}
