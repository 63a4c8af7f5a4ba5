"""The workspace service: the live workspace, changed through one lock and announced to the parts
that depend on it, with every change recorded as a revision.

Every change (admin API, console, the workspace file, a published clustering, a restore) is
validated whole, stored with its revision in ``workspace_history`` (who, when, how, a comment, the
document after and what changed), and only then swapped in: the stored copy and the running one
never disagree. Changes are serialised by the lock within a process and by the history itself
across processes: a revision is recorded only as the next one after the revision the change was
computed on, so a second worker's concurrent edit is retried on top of the first (entries of
different keys both survive), or refused with a 412 when its writer named the revision it edited
(optimistic concurrency: ``If-Match``, the console's forms). Another process's change is picked
up by :meth:`refresh`, which the change watcher calls when the stored ``workspace`` or
``clusters`` revision moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loopwise.clock import Clock, system_clock
from loopwise.config import Workspace, load_workspace_file, parse_workspace
from loopwise.decide.strategies import StrategyRegistry
from loopwise.errors import ConfigError, Conflict, NotFound, ValidationFailed
from loopwise.segments.clusters import ClusterModel
from loopwise.storage.records import WorkspaceChange
from loopwise.storage.stores import Storage, UnitOfWork
from loopwise.workspace.compiled import CompiledWorkspace
from loopwise.workspace.diff import diff_documents
from loopwise.workspace.history import ADMIN_API, Applied, Author, stale

WORKSPACE_CONFIG_KEY = "workspace"
CLUSTERS_CONFIG_KEY = "clusters"  # the published ClusterModel.to_json()
WORKSPACE_REVISION = "workspace"
CLUSTERS_REVISION = "clusters"
SECTIONS = ("slots", "segments", "experiments")
RETRIES = 20  # another worker saved first: recompute on its revision, this many times at most

if TYPE_CHECKING:
    from loopwise.scores.serving import LiveScores

log = logging.getLogger(__name__)

Listener = Callable[[CompiledWorkspace, CompiledWorkspace], None]  # (before, after)
Edit = Callable[[dict[str, Any]], dict[str, Any]]  # the live document -> the changed one


class WorkspaceService:
    def __init__(
        self,
        storage: Storage,
        workspace: Workspace,
        strategies: StrategyRegistry,
        clock: Clock = system_clock,
        scores: LiveScores | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._lock = threading.RLock()
        self.listeners: list[Listener] = []
        # set at start-up when the workspace file and live changes disagree (see open_workspace)
        self.file_conflict: FileConflict | None = None
        self._compiled = CompiledWorkspace(workspace, strategies, stored_clusters(storage), scores)
        self._revisions = storage.config.revisions()
        latest = storage.workspace_history.latest()
        document = workspace.document()
        if latest is None or latest.document != document:
            # an engine built on a workspace of its own (library use, tests): that is a revision
            author = Author("engine", "start", "the workspace the engine was started with")
            before = latest.document if latest is not None else {}
            self._revision = storage.write(
                lambda uow: record_change(uow, author, before, document, clock())
            )
        else:
            self._revision = latest.revision

    @property
    def compiled(self) -> CompiledWorkspace:
        """The live compiled workspace (read it once per request and keep that one)."""
        return self._compiled

    @property
    def workspace(self) -> Workspace:
        return self._compiled.workspace

    @property
    def revision(self) -> int:
        return self._revision

    def document(self) -> dict[str, Any]:
        return self._compiled.workspace.document()

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """The live revision and its document, consistent with each other."""
        with self._lock:
            return self._revision, self.document()

    def _swap(self, compiled: CompiledWorkspace) -> None:
        before, self._compiled = self._compiled, compiled
        for listener in self.listeners:
            listener(before, compiled)

    # -- changes -------------------------------------------------------------------------------
    def apply(self, edit: Edit, *, author: Author, expected: int | None = None) -> Applied:
        """Apply ``edit`` to the live document, validate the result whole, record it as the next
        revision and serve it. ``expected``: the revision the caller edited; a different live
        revision is :class:`StaleRevision` (412) with what changed since. ConfigError (nothing
        applied) when the result is invalid."""
        with self._lock:
            for _ in range(RETRIES):
                self._catch_up()
                base, current = self._revision, self.document()
                if expected is not None and expected != base:
                    raise stale(expected, base, self._changes_since(expected, current))
                document = edit(current)
                workspace = parse_workspace(document)
                compiled = CompiledWorkspace(
                    workspace,
                    self._compiled.strategies,
                    self._compiled.clusters,
                    self._compiled.scores,
                )
                stored = workspace.document()
                try:
                    revision = self._storage.write(self._recorder(author, base, current, stored))
                except Conflict:  # another process recorded a revision first: redo on top of it
                    continue
                self._revision = revision
                self._swap(compiled)
                return Applied(revision, stored)
            raise Conflict(
                "The workspace is being changed by others too fast to apply this change; retry.",
                field="workspace",
            )

    def _recorder(
        self, author: Author, base: int, before: dict[str, Any], after: dict[str, Any]
    ) -> Callable[[UnitOfWork], int]:
        """The write job recording ``after`` as the revision after ``base``."""
        now = self._clock()

        def job(uow: UnitOfWork) -> int:
            revision = record_change(uow, author, before, after, now, base=base)
            self._revisions[WORKSPACE_REVISION] = uow.config.bump(WORKSPACE_REVISION)
            return revision

        return job

    def replace(
        self,
        document: dict[str, Any],
        *,
        author: Author = ADMIN_API,
        expected: int | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Validate, persist and apply a whole workspace; if invalid, ConfigError and no change."""
        if source is not None:
            author = Author(author.actor, source, author.comment)
        return self.apply(lambda _: document, author=author, expected=expected).document

    def apply_entry(
        self,
        section: str,
        key: str,
        document: dict[str, Any] | None,
        *,
        author: Author = ADMIN_API,
        expected: int | None = None,
    ) -> Applied:
        """Put (or with ``document`` None, delete) one entry of ``slots``, ``segments`` or
        ``experiments``; errors name the field inside the entry."""
        if document is not None and "key" in document and document["key"] != key:
            raise ConfigError(
                f'The body\'s key "{document["key"]}" differs from the URL\'s "{key}"; '
                "make them equal or leave key out of the body.",
                field="key",
            )

        def edit(current: dict[str, Any]) -> dict[str, Any]:
            existing = current.get(section, [])
            entries = [e for e in existing if e.get("key") != key]
            if document is not None:
                position = next(
                    (i for i, e in enumerate(existing) if e.get("key") == key), len(entries)
                )
                entries.insert(position, {**document, "key": key})
            elif len(entries) == len(existing):
                raise NotFound(f'No {section[:-1]} "{key}" in the workspace.', field="key")
            return {**current, section: entries}

        try:
            return self.apply(edit, author=author, expected=expected)
        except ConfigError as exc:
            prefix = f"{section}["
            field_path = exc.field or ""
            if field_path.startswith(prefix) and "]" in field_path:
                field_path = field_path.split("]", 1)[1].lstrip(".")
            raise ConfigError(exc.detail, field=field_path or None, **exc.extra) from None

    def replace_entry(
        self,
        section: str,
        key: str,
        document: dict[str, Any] | None,
        *,
        author: Author = ADMIN_API,
        expected: int | None = None,
    ) -> dict[str, Any]:
        """:meth:`apply_entry`, returning the stored entry ({} after a delete)."""
        applied = self.apply_entry(section, key, document, author=author, expected=expected)
        return next((e for e in applied.document.get(section, []) if e["key"] == key), {})

    def restore(self, revision: int, *, author: Author, expected: int | None = None) -> Applied:
        """Make an earlier revision's document live again, as a new revision."""
        earlier = self._storage.workspace_history.get(revision)
        if earlier is None:
            raise NotFound(
                f"No workspace revision {revision}; `loopwise history` lists them.",
                field="revision",
            )
        comment = author.comment or f"restored revision {revision}"
        return self.apply(
            lambda _: earlier.document,
            author=Author(author.actor, "restore", comment),
            expected=expected,
        )

    def history(self, limit: int = 50, before: int | None = None) -> list[WorkspaceChange]:
        return self._storage.workspace_history.list(limit, before)

    def _changes_since(self, revision: int, current: dict[str, Any]) -> list[str]:
        earlier = self._storage.workspace_history.get(revision)
        return diff_documents(earlier.document if earlier else {}, current)

    def publish_clusters(self, model: ClusterModel) -> CompiledWorkspace:
        """Store a fitted cluster model and serve its segments (a revision of its own)."""
        with self._lock:
            self._catch_up()
            document = model.to_json()
            current = self.document()
            keys = [segment.key for segment in model.segments()]
            author = Author(
                "clustering", "clusters", f"published {len(keys)} clusters: {', '.join(keys)}"
            )
            now = self._clock()

            def job(uow: UnitOfWork) -> int:
                uow.config.put(CLUSTERS_CONFIG_KEY, document)
                self._revisions[CLUSTERS_REVISION] = uow.config.bump(CLUSTERS_REVISION)
                revision = record_change(uow, author, current, current, now)
                self._revisions[WORKSPACE_REVISION] = uow.config.bump(WORKSPACE_REVISION)
                return revision

            self._revision = self._storage.write(job)
            self._swap(self._compiled.with_clusters(model))
            return self._compiled

    # -- other processes' changes ---------------------------------------------------------------
    def _catch_up(self) -> None:
        """Before computing a change: load what another process saved meanwhile."""
        self.refresh(self._storage.config.revisions())

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
                latest = self._storage.workspace_history.latest()
                if latest is not None:
                    try:
                        workspace = parse_workspace(latest.document)
                        self._revision = latest.revision
                    except ConfigError as exc:
                        log.warning("stored workspace not applied: %s", exc.detail)
            clusters = (
                stored_clusters(self._storage) if changed_clusters else self._compiled.clusters
            )
            self._revisions.update(revisions)
            self._swap(
                CompiledWorkspace(
                    workspace, self._compiled.strategies, clusters, self._compiled.scores
                )
            )
            return True


def record_change(
    uow: UnitOfWork,
    author: Author,
    before: dict[str, Any],
    after: dict[str, Any],
    at: Any,
    *,
    base: int | None = None,
) -> int:
    """Store ``after`` as the live document and record it as the revision after ``base`` (the
    newest when None); ``Conflict`` when ``base`` is no longer the newest. Returns the revision."""
    latest = uow.workspace_history.latest()
    newest = latest.revision if latest is not None else 0
    if base is not None and base != newest:
        raise Conflict(f"revision {base} is no longer the newest ({newest})", field="revision")
    uow.workspace_history.append(
        WorkspaceChange(
            revision=newest + 1,
            at=at,
            actor=author.actor,
            source=author.source,
            comment=author.comment,
            document=after,
            diff=tuple(diff_documents(before, after)),
        )
    )
    stored = _reconciliation(uow)
    uow.config.put(WORKSPACE_CONFIG_KEY, {**stored, "document": after, "source": author.source})
    return newest + 1


def _reconciliation(uow: UnitOfWork) -> dict[str, Any]:
    """The stored record of the file's last load ({} when missing or damaged: it is rewritten)."""
    try:
        return uow.config.get(WORKSPACE_CONFIG_KEY) or {}
    except ValidationFailed:
        return {}


# -- the workspace file and the live workspace -----------------------------------------------
@dataclass(frozen=True, slots=True)
class FileConflict:
    """The workspace file changed since it was last loaded, and so did the live workspace: the
    live one is kept. ``changes`` says how the file differs from it (what a push would do)."""

    path: Path
    revision: int
    changes: list[str] = field(default_factory=list)

    def message(self) -> str:
        lines = "\n".join(f"    {line}" for line in self.changes[:40])
        more = f"\n    ... and {len(self.changes) - 40} more" if len(self.changes) > 40 else ""
        return (
            f"{self.path} changed since it was last loaded, and the live workspace was changed "
            f"too (revision {self.revision}, through the admin API or the console). The live "
            "workspace is kept; the file differs from it by:\n"
            f"{lines}{more}\n"
            "  Reconcile with `loopwise workspace diff`, then `loopwise workspace pull` (write the "
            "live workspace to the file) or `loopwise workspace push` (apply the file over it)."
        )


@dataclass(frozen=True, slots=True)
class FileChoice:
    workspace: Workspace
    conflict: FileConflict | None = None


def fingerprint(document: dict[str, Any]) -> str:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def mark_file_loaded(uow: UnitOfWork, document: dict[str, Any]) -> None:
    """The file's content as of now is what the live workspace was last reconciled with."""
    stored = _reconciliation(uow)
    uow.config.put(
        WORKSPACE_CONFIG_KEY,
        {**stored, "file_fingerprint": fingerprint(document), "file_document": document},
    )


def _live(storage: Storage, path: Path) -> tuple[dict[str, Any], Workspace | None, int]:
    """The stored reconciliation record, the live workspace (None when unreadable) and its
    revision."""
    try:
        stored = storage.config.get(WORKSPACE_CONFIG_KEY) or {}
    except ValidationFailed as exc:
        log.warning("%s Starting from %s.", exc.detail, path)
        return {}, None, 0
    latest = storage.workspace_history.latest()
    document = latest.document if latest is not None else stored.get("document")
    if document is None:
        return stored, None, 0
    try:
        return stored, parse_workspace(document), latest.revision if latest is not None else 0
    except ConfigError as exc:
        log.warning("stored workspace not applied (%s); starting from %s", exc.detail, path)
        return stored, None, 0


def open_workspace(storage: Storage, path: Path, clock: Clock = system_clock) -> FileChoice:
    """The workspace to start with, given the file and what is stored.

    - Nothing live yet, or the live workspace is what the file last gave: the file (a changed
      file is recorded as a revision from ``file``).
    - The file is unchanged since it was last loaded: the live workspace (it may carry changes
      made through the admin API or the console since).
    - Both changed: the live workspace is kept and the conflict is reported with a diff; nothing
      is lost until someone reconciles (``loopwise workspace pull|push``)."""
    file_workspace = load_workspace_file(path)
    file_document = file_workspace.document()
    stored, live, revision = _live(storage, path)
    file_changed = stored.get("file_fingerprint") != fingerprint(file_document)
    if live is not None and not file_changed:
        return FileChoice(live)
    live_document = live.document() if live is not None else None
    last_from_file = stored.get("file_document")
    if last_from_file is None and stored.get("source") == "file":  # recorded before history
        last_from_file = stored.get("document")
    live_changed = live_document is not None and live_document != last_from_file
    if live is not None and live_document is not None and live_changed:
        conflict = FileConflict(path, revision, diff_documents(live_document, file_document))
        if not conflict.changes:  # both sides made the same change: nothing to reconcile
            storage.write(lambda uow: mark_file_loaded(uow, file_document))
            return FileChoice(live)
        log.warning("%s", conflict.message())
        return FileChoice(live, conflict)
    author = Author(f"file {path.name}", "file", f"loaded {path}")
    before = live_document or {}

    def job(uow: UnitOfWork) -> None:
        if before != file_document or uow.workspace_history.latest() is None:
            record_change(uow, author, before, file_document, clock())
        mark_file_loaded(uow, file_document)
        uow.config.bump(WORKSPACE_REVISION)

    storage.write(job)
    return FileChoice(file_workspace)


def choose_workspace(storage: Storage, path: Path) -> Workspace:
    """:func:`open_workspace`'s workspace (a conflict is logged there)."""
    return open_workspace(storage, path).workspace


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
