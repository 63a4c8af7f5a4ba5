"""Versioned model artifacts on disk.

Layout under ``<data_dir>/models/``::

    v1-20261123T101500Z/
        models.pkl       pickled TrainedModels state (item ids, item users, models, settings)
        metadata.json    version, created_at, data window, parameters, event weights, holdout
                         metrics, training seconds, library versions
    v2-20261123T111500Z/
    current              the current version's directory name, replaced atomically

Versions number up from the highest ever written (``v<N>``), so a rolled-back-to version never
shares a number with a newer one. ``save`` keeps the newest ``keep`` versions (and never deletes
the current one). Pickles are trusted input: they are written by this process into the data
directory, which only the operator controls.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loopwise.clock import isoformat
from loopwise.errors import Conflict, NotFound
from loopwise.models.training import TrainedModels

MODELS_DIR = "models"
CURRENT = "current"
STATE_FILE = "models.pkl"
METADATA_FILE = "metadata.json"
_VERSION = re.compile(r"^v(\d+)-(\d{8}T\d{6}Z)$")


@dataclass(frozen=True, slots=True)
class Version:
    """A stored version: ``name`` is its directory (``v3-20261123T101500Z``)."""

    name: str
    number: int
    path: Path

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / METADATA_FILE).read_text("utf-8"))
        return data


class ArtifactStore:
    """Model versions of one data directory. Not thread-safe by itself: the engine serialises
    saves and rollbacks."""

    def __init__(self, data_dir: Path, keep: int = 5) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.root = Path(data_dir) / MODELS_DIR
        self.keep = keep

    # -- reading -------------------------------------------------------------------------------
    def versions(self) -> list[Version]:
        """Complete versions (with state and metadata), oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _VERSION.match(entry.name)
            if match and (entry / STATE_FILE).is_file() and (entry / METADATA_FILE).is_file():
                found.append(Version(entry.name, int(match.group(1)), entry))
        return sorted(found, key=lambda v: v.number)

    def current(self) -> Version | None:
        """The version ``current`` points to (None before the first training, or when the
        pointer names a version that is gone)."""
        pointer = self.root / CURRENT
        try:
            name = pointer.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError):  # missing, or damaged on disk: no current version
            return None
        return next((v for v in self.versions() if v.name == name), None)

    def get(self, name: str) -> Version:
        version = next((v for v in self.versions() if v.name == name), None)
        if version is None:
            raise NotFound(f"No model version {name!r}; list them with `loopwise models list`.")
        return version

    def load(self, version: Version) -> TrainedModels:
        with (version.path / STATE_FILE).open("rb") as handle:
            state = pickle.load(handle)  # our own artifact, see the module docstring
        if not isinstance(state, TrainedModels):
            raise ValueError(f"{version.path / STATE_FILE} does not hold trained models")
        state.metadata = version.metadata()
        return state

    def loadable(self, version: Version) -> TrainedModels:
        """:meth:`load`, with any failure (damaged files, a pickle of other library versions) a
        Conflict naming the version: choosing it must fail before ``current`` moves."""
        try:
            return self.load(version)
        except Exception as exc:
            raise Conflict(
                f"Model version {version.name} cannot be loaded ({type(exc).__name__}); "
                "choose another version or train a new one with `loopwise train`.",
                field="version",
            ) from exc

    def listing(self) -> dict[str, Any]:
        """``{"current": name|None, "versions": [metadata summary, newest first]}``."""
        current = self.current()
        out = []
        for version in reversed(self.versions()):
            damaged = False
            try:
                meta = version.metadata()
            except (OSError, ValueError):  # a damaged metadata.json must not hide the others
                meta, damaged = {}, True
            if not isinstance(meta, dict):
                meta, damaged = {}, True
            out.append(
                {
                    "version": version.name,
                    "created_at": meta.get("created_at"),
                    "current": current is not None and version.name == current.name,
                    "models": meta.get("models", []),
                    "data_window": meta.get("data_window", {}),
                    "metrics": meta.get("metrics", {}),
                    "training_seconds": meta.get("training_seconds"),
                    **({"damaged": True} if damaged else {}),
                }
            )
        return {"current": current.name if current else None, "versions": out}

    # -- writing -------------------------------------------------------------------------------
    def save(self, trained: TrainedModels, created_at: datetime) -> Version:
        """Write a new version, point ``current`` at it, prune old ones. A crash leaves either
        the old or the new version current, never a half-written one (the directory is written
        under a temporary name and renamed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        number = max((v.number for v in self.versions()), default=0) + 1
        for entry in self.root.iterdir():  # numbers of pruned versions are not reused either
            match = _VERSION.match(entry.name)
            if match:
                number = max(number, int(match.group(1)) + 1)
        name = f"v{number}-{created_at.strftime('%Y%m%dT%H%M%SZ')}"
        metadata = {"version": name, "created_at": isoformat(created_at), **trained.metadata}
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            with (staging / STATE_FILE).open("wb") as handle:
                pickle.dump(trained, handle, protocol=pickle.HIGHEST_PROTOCOL)
            (staging / METADATA_FILE).write_text(
                json.dumps(metadata, indent=2, sort_keys=True) + "\n", "utf-8"
            )
            os.replace(staging, self.root / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        trained.metadata = metadata
        version = Version(name, number, self.root / name)
        self._point(version)
        self.prune()
        return version

    def _point(self, version: Version) -> None:
        tmp = self.root / f".{CURRENT}.tmp"
        tmp.write_text(version.name + "\n", "utf-8")
        os.replace(tmp, self.root / CURRENT)

    def set_current(self, name: str) -> Version:
        version = self.get(name)
        self._point(version)
        return version

    def rollback(self) -> Version:
        """Point ``current`` at the version before it (by number). Conflict when there is none."""
        version = self.previous()
        self._point(version)
        return version

    def previous(self) -> Version:
        """The version before the current one (by number). Conflict when there is none."""
        versions = self.versions()
        current = self.current()
        if current is None:
            raise Conflict("No model is current yet; train one first with `loopwise train`.")
        older = [v for v in versions if v.number < current.number]
        if not older:
            raise Conflict(
                f"{current.name} is the oldest kept model version; there is nothing to roll "
                "back to.",
                field="version",
            )
        return older[-1]

    def prune(self) -> list[str]:
        """Delete all but the newest ``keep`` versions (the current one is always kept)."""
        current = self.current()
        versions = self.versions()
        doomed = versions[: max(0, len(versions) - self.keep)]
        removed = []
        for version in doomed:
            if current is not None and version.name == current.name:
                continue
            shutil.rmtree(version.path, ignore_errors=True)
            removed.append(version.name)
        return removed
