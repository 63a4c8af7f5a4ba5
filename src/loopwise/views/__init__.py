"""The read path's in-memory state: views over the stores, changed only after a commit.

Every view is filled from its store on demand and learns of changes in ``on_commit`` callbacks
(never inside a write job), so nothing in memory is ahead of disk. Each is bounded (an LRU), so
memory stays flat however much the stores hold, and each documents its locking.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopwise.views.consent import ConsentView
from loopwise.views.exposures import ExposureView
from loopwise.views.identities import IdentityView
from loopwise.views.item_stats import ItemStatsView
from loopwise.views.profiles import ProfileView


@dataclass(slots=True)
class Views:
    profiles: ProfileView
    identities: IdentityView
    consent: ConsentView
    exposures: ExposureView
    item_stats: ItemStatsView
