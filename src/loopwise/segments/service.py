"""The clustering service: fit K-Means on the stored profiles and publish the clusters as
segments ``cluster_<n>`` through the workspace service (stored, then live everywhere)."""

from __future__ import annotations

import logging
from typing import Any

from loopwise.clock import Clock, isoformat
from loopwise.profiles import codec
from loopwise.segments.clusters import fit_clusters
from loopwise.storage.stores import Storage
from loopwise.workspace.service import WorkspaceService

log = logging.getLogger(__name__)


class ClusterService:
    def __init__(self, storage: Storage, workspace: WorkspaceService, clock: Clock) -> None:
        self._storage = storage
        self._workspace = workspace
        self._clock = clock

    def cluster(self, k_min: int = 2, k_max: int = 8, seed: int = 0) -> dict[str, Any]:
        """Fit on every stored profile's attributes now, publish, report. Keys follow the
        previous model's clusters where they match (see segments.clusters)."""
        now = self._clock()
        compiled = self._workspace.compiled
        settings = compiled.settings
        rows = []
        for record in self._storage.profiles.iter():
            try:
                rows.append(codec.decode(record).attributes(now, settings))
            except codec.DamagedProfile as exc:
                log.warning("%s; left out of clustering", exc)
        model = fit_clusters(
            rows, (k_min, k_max), seed, fitted_at=isoformat(now), previous=compiled.clusters
        )
        published = self._workspace.publish_clusters(model)
        return {**model.summary(), "warnings": published.unpublished_cluster_rules()}

    def clusters(self) -> dict[str, Any]:
        """The published clusters (``published: false`` before the first ``cluster``)."""
        compiled = self._workspace.compiled
        if compiled.clusters is None:
            return {"published": False, "clusters": [], "warnings": []}
        return {
            "published": True,
            **compiled.clusters.summary(),
            "warnings": compiled.unpublished_cluster_rules(),
        }
