"""Erasing one profile id's data from every store: the one list of what a person's data is.

Used by erasure (every profile id a person's data may be under) and by retention (profiles last
seen before the cutoff). Deletes by key, never by decoding rows, so damaged data erases too.
"""

from __future__ import annotations

from loopwise.storage.stores import UnitOfWork

ERASED_TABLES = (
    "events",
    "identities",
    "segment_history",
    "decisions",
    "outcomes",
    "exposures",
    "profiles",
    "journey_states",
    "outbox",
)


def delete_profile_data(uow: UnitOfWork, profile_id: str) -> dict[str, int]:
    """Delete everything stored under ``profile_id``; rows removed per table."""
    decisions, outcomes = uow.decisions.delete_profile(profile_id)
    return {
        "events": uow.events.delete_profile(profile_id),
        "identities": uow.identities.delete_profile(profile_id),
        "segment_history": uow.segment_history.delete_profile(profile_id),
        "decisions": decisions,
        "outcomes": outcomes,
        "exposures": uow.exposures.delete_profile(profile_id),
        "profiles": uow.profiles.delete([profile_id]),
        "journey_states": uow.journeys.delete_profile(profile_id),
        "outbox": uow.outbox.delete_profile(profile_id),
    }


def add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    for table, removed in counts.items():
        total[table] = total.get(table, 0) + removed
