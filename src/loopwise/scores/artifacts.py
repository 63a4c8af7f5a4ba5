"""Versioned score models on disk, laid out like the recommenders' (models/artifacts.py).

Under ``<data_dir>/scores/``::

    v1-20261123T101500Z/
        scores.json              feature spec, per score its definition, LightGBM model text and
                                 calibrator (JSON: no pickle)
        metadata.json            version, created_at, data window, parameters, the test report
        calibration-<key>.png    the reliability diagram of each score (test slice)
    current                      the current version's directory name, replaced atomically

Versions number up from the highest ever written; ``save`` keeps the newest ``keep`` versions and
never deletes the current one. A version is written under a temporary name and renamed, so a
crash leaves the old or the new version current, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loopwise.clock import isoformat
from loopwise.errors import Conflict, NotFound

SCORES_DIR = "scores"
CURRENT = "current"
STATE_FILE = "scores.json"
METADATA_FILE = "metadata.json"
_VERSION = re.compile(r"^v(\d+)-(\d{8}T\d{6}Z)$")


@dataclass(frozen=True, slots=True)
class Version:
    name: str
    number: int
    path: Path

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / METADATA_FILE).read_text("utf-8"))
        return data

    def document(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / STATE_FILE).read_text("utf-8"))
        return data

    def plots(self) -> list[Path]:
        return sorted(self.path.glob("calibration-*.png"))


class ScoreArtifactStore:
    def __init__(self, data_dir: Path, keep: int = 5) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.root = Path(data_dir) / SCORES_DIR
        self.keep = keep

    def versions(self) -> list[Version]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _VERSION.match(entry.name)
            if match and (entry / STATE_FILE).is_file() and (entry / METADATA_FILE).is_file():
                found.append(Version(entry.name, int(match.group(1)), entry))
        return sorted(found, key=lambda v: v.number)

    def pointer(self) -> str | None:
        try:
            return (self.root / CURRENT).read_text("utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def current(self) -> Version | None:
        name = self.pointer()
        return next((v for v in self.versions() if v.name == name), None) if name else None

    def get(self, name: str) -> Version:
        version = next((v for v in self.versions() if v.name == name), None)
        if version is None:
            raise NotFound(
                f"No score model version {name!r}; list them with `loopwise evaluate-scores "
                "--list`.",
                field="version",
            )
        return version

    def listing(self) -> dict[str, Any]:
        current = self.current()
        out = []
        for version in reversed(self.versions()):
            try:
                meta = version.metadata()
            except (OSError, ValueError):
                meta = {"damaged": True}
            report = meta.get("report", {}) if isinstance(meta, dict) else {}
            out.append(
                {
                    "version": version.name,
                    "created_at": meta.get("created_at"),
                    "current": current is not None and version.name == current.name,
                    "scores": meta.get("scores", []),
                    "data_window": meta.get("data_window", {}),
                    "auc": {key: (r.get("overall") or {}).get("auc") for key, r in report.items()},
                }
            )
        return {"current": current.name if current else None, "versions": out}

    def save(
        self,
        document: dict[str, Any],
        metadata: dict[str, Any],
        plots: dict[str, bytes],
        created_at: datetime,
    ) -> tuple[Version, dict[str, Any]]:
        self.root.mkdir(parents=True, exist_ok=True)
        number = max((v.number for v in self.versions()), default=0) + 1
        for entry in self.root.iterdir():
            match = _VERSION.match(entry.name)
            if match:
                number = max(number, int(match.group(1)) + 1)
        name = f"v{number}-{created_at.strftime('%Y%m%dT%H%M%SZ')}"
        metadata = {"version": name, "created_at": isoformat(created_at), **metadata}
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            (staging / STATE_FILE).write_text(json.dumps(document), "utf-8")
            (staging / METADATA_FILE).write_text(
                json.dumps(metadata, indent=2, sort_keys=True) + "\n", "utf-8"
            )
            for file_name, png in plots.items():
                (staging / file_name).write_bytes(png)
            os.replace(staging, self.root / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        version = Version(name, number, self.root / name)
        self.set_current(version.name)
        self.prune()
        return version, metadata

    def set_current(self, name: str) -> Version:
        version = self.get(name)
        tmp = self.root / f".{CURRENT}.tmp"
        tmp.write_text(version.name + "\n", "utf-8")
        os.replace(tmp, self.root / CURRENT)
        return version

    def previous(self) -> Version:
        current = self.current()
        if current is None:
            raise Conflict("No score model is current yet; run `loopwise train-scores` first.")
        older = [v for v in self.versions() if v.number < current.number]
        if not older:
            raise Conflict(
                f"{current.name} is the oldest kept score model version.", field="version"
            )
        return older[-1]

    def prune(self) -> list[str]:
        current = self.current()
        versions = self.versions()
        removed = []
        for version in versions[: max(0, len(versions) - self.keep)]:
            if current is not None and version.name == current.name:
                continue
            shutil.rmtree(version.path, ignore_errors=True)
            removed.append(version.name)
        return removed
