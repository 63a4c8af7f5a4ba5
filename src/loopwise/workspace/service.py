"""The workspace service: the live workspace, changed through one lock and announced to the parts
that depend on it.

Every change (admin API, console, a published clustering) is validated whole, stored, and only then
swapped in (the stored copy and the running one never disagree); changes are serialised, so two
concurrent edits of different entries both survive. Another process's change (``loopwise cluster``
or a second worker) is picked up by :meth:`refresh`, which the change watcher calls when the
stored ``workspace`` or ``clusters`` revision moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from loopwise.config import Workspace, load_workspace_file, parse_workspace
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import ConfigError, NotFound, ValidationFailed
from loopwise.segments.clusters import ClusterModel
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.workspace.compiled import CompiledWorkspace

WORKSPACE_CONFIG_KEY = "workspace"
CLUSTERS_CONFIG_KEY = "clusters"  # the published ClusterModel.to_json()
WORKSPACE_REVISION = "workspace"
CLUSTERS_REVISION = "clusters"

log = logging.getLogger(__name__)

Listener = Callable[[CompiledWorkspace, CompiledWorkspace], None]  # (before, after)


class WorkspaceService:
    def __init__(
        self,
        storage: Storage,
        workspace: Workspace,
        strategies: StrategyRegistry,
    ) -> None:
        self._storage = storage
        self._lock = threading.RLock()
        self.listeners: list[Listener] = []
        self._compiled = CompiledWorkspace(workspace, strategies, stored_clusters(storage))
        self._revisions = storage.config.revisions()

    @property
    def compiled(self) -> CompiledWorkspace:
        """The live compiled workspace (read it once per request and keep that one)."""
        return self._compiled

    @property
    def workspace(self) -> Workspace:
        return self._compiled.workspace

    def document(self) -> dict[str, Any]:
        return self._compiled.workspace.document()

    def _swap(self, compiled: CompiledWorkspace) -> None:
        before, self._compiled = self._compiled, compiled
        for listener in self.listeners:
            listener(before, compiled)

    # -- changes -------------------------------------------------------------------------------
    def replace(self, document: dict[str, Any], *, source: str = "admin") -> dict[str, Any]:
        """Validate, persist and apply a whole workspace; if invalid, ConfigError and no change."""
        with self._lock:
            workspace = parse_workspace(document)
            compiled = CompiledWorkspace(
                workspace, self._compiled.strategies, self._compiled.clusters
            )
            stored = workspace.document()
            previous = self._storage.config.get(WORKSPACE_CONFIG_KEY) or {}

            def job(uow: UnitOfWork) -> None:
                uow.config.put(
                    WORKSPACE_CONFIG_KEY, {**previous, "document": stored, "source": source}
                )
                self._revisions[WORKSPACE_REVISION] = uow.config.bump(WORKSPACE_REVISION)

            self._storage.write(job)
            self._swap(compiled)
            return stored

    def replace_entry(
        self, section: str, key: str, document: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Put (or with ``document`` None, delete) one entry of ``slots`` or ``segments``; errors
        name the field inside the entry."""
        with self._lock:
            current = self.document()
            entries = [e for e in current.get(section, []) if e.get("key") != key]
            if document is not None:
                if "key" in document and document["key"] != key:
                    raise ConfigError(
                        f'The body\'s key "{document["key"]}" differs from the URL\'s "{key}"; '
                        "make them equal or leave key out of the body.",
                        field="key",
                    )
                entry = {**document, "key": key}
                position = next(
                    (i for i, e in enumerate(current.get(section, [])) if e.get("key") == key),
                    len(entries),
                )
                entries.insert(position, entry)
            elif len(entries) == len(current.get(section, [])):
                raise NotFound(f'No {section[:-1]} "{key}" in the workspace.', field="key")
            current[section] = entries
            try:
                self.replace(current)
            except ConfigError as exc:
                index = next((i for i, e in enumerate(entries) if e.get("key") == key), 0)
                prefix = f"{section}[{index}]"
                field_path = exc.field or ""
                if field_path.startswith(prefix):
                    field_path = field_path[len(prefix) :].lstrip(".")
                raise ConfigError(exc.detail, field=field_path or None, **exc.extra) from None
            return next((e for e in self.document()[section] if e["key"] == key), {})

    def publish_clusters(self, model: ClusterModel) -> CompiledWorkspace:
        """Store a fitted cluster model and serve its segments."""
        with self._lock:
            document = model.to_json()

            def job(uow: UnitOfWork) -> None:
                uow.config.put(CLUSTERS_CONFIG_KEY, document)
                self._revisions[CLUSTERS_REVISION] = uow.config.bump(CLUSTERS_REVISION)

            self._storage.write(job)
            self._swap(self._compiled.with_clusters(model))
            return self._compiled

    # -- other processes' changes ---------------------------------------------------------------
    def refresh(self, revisions: dict[str, int]) -> bool:
        """Reload what another process changed (its revision moved); True when something did."""
        with self._lock:
            changed_workspace = revisions.get(WORKSPACE_REVISION, 0) != self._revisions.get(
                WORKSPACE_REVISION, 0
            )
            changed_clusters = revisions.get(CLUSTERS_REVISION, 0) != self._revisions.get(
                CLUSTERS_REVISION, 0
            )
            if not changed_workspace and not changed_clusters:
                return False
            workspace = self._compiled.workspace
            if changed_workspace:
                stored = self._storage.config.get(WORKSPACE_CONFIG_KEY) or {}
                if "document" in stored:
                    try:
                        workspace = parse_workspace(stored["document"])
                    except ConfigError as exc:
                        log.warning("stored workspace not applied: %s", exc.detail)
            clusters = (
                stored_clusters(self._storage) if changed_clusters else self._compiled.clusters
            )
            self._revisions.update(revisions)
            self._swap(CompiledWorkspace(workspace, self._compiled.strategies, clusters))
            return True


def choose_workspace(storage: Storage, path: Path) -> Workspace:
    """The file is the source of truth unless the admin API changed the workspace after the file
    was last loaded (then the stored copy wins until the file changes again)."""
    file_workspace = load_workspace_file(path)
    file_document = file_workspace.document()
    fingerprint = orjson.dumps(file_document, option=orjson.OPT_SORT_KEYS).decode()
    try:
        stored = storage.config.get(WORKSPACE_CONFIG_KEY)
    except ValidationFailed as exc:
        log.warning("%s Starting from %s.", exc.detail, path)
        stored = None
    if stored and stored.get("file_fingerprint") == fingerprint and "document" in stored:
        try:
            return parse_workspace(stored["document"])
        except ConfigError as exc:
            log.warning("stored workspace not applied (%s); starting from %s", exc.detail, path)

    def job(uow: UnitOfWork) -> None:
        uow.config.put(
            WORKSPACE_CONFIG_KEY,
            {"file_fingerprint": fingerprint, "document": file_document, "source": "file"},
        )
        uow.config.bump(WORKSPACE_REVISION)

    storage.write(job)
    return file_workspace


def stored_clusters(storage: Storage) -> ClusterModel | None:
    """The published cluster model; a damaged one is skipped (with a warning) so the engine
    still starts and ``loopwise cluster`` can publish a new one."""
    try:
        document = storage.config.get(CLUSTERS_CONFIG_KEY)
    except ValidationFailed as exc:
        log.warning("clusters not loaded: %s", exc.detail)
        return None
    if document is None:
        return None
    try:
        return ClusterModel.from_json(document)
    except ValidationFailed as exc:
        log.warning("clusters not loaded: %s", exc.detail)
        return None
