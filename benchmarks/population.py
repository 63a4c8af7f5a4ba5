"""A benchmark population: a large catalog and many profiles, built through the real reducer.

``build_engine`` ingests ``templates`` seeded users through ``Engine.ingest`` (the real path:
identity, reducer, segments, item statistics), then copies their profiles under new ids until the
engine holds ``profiles`` of them — stored and linked through a write job like any profile, then
reloaded by a fresh engine on the same storage, exactly as a restarted server sees them. Cloning
keeps the 100k-profile setup within seconds; every clone is a real, distinct profile record.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from loopwise.catalog.importer import read_items
from loopwise.catalog.items import Item
from loopwise.clock import FixedClock
from loopwise.config import SAMPLE_WORKSPACE, Workspace, load_workspace_file
from loopwise.engine import Engine
from loopwise.events.normalize import parse_request
from loopwise.profiles import codec
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.memory import MemoryStorage
from loopwise.storage.records import ProfileRecord
from loopwise.storage.stores import Storage, UnitOfWork

START = datetime(2026, 11, 1, tzinfo=UTC)
EVENT_NAMES = ["Product Viewed"] * 8 + ["Product Added", "Order Completed"]


def sample_workspace() -> Workspace:
    return load_workspace_file(SAMPLE_WORKSPACE)


def catalog(size: int, workspace: Workspace) -> list[Item]:
    """``size`` items: the sample catalog's 200 products, then copies of them under new ids (same
    categories, tags and prices), so rules and affinities behave as on the sample shop."""
    base = list(read_items(SAMPLE_WORKSPACE.parent / str(workspace.items)))
    items = base[:size]
    copy = 1
    while len(items) < size:
        for item in base:
            if len(items) >= size:
                break
            record = item.to_record()
            record["id"] = f"{item.id}-c{copy}"
            items.append(Item.from_record(record))
        copy += 1
    return items


def user_events(
    rng: random.Random, anon: str, items: list[Item], count: int, now: datetime
) -> list[dict[str, Any]]:
    """``count`` track calls of one user who favours one category (70% of views)."""
    favourite = rng.choice(items).categories[0]
    pool = [i for i in items[:2000] if favourite in i.categories] or items
    events = []
    for _ in range(count):
        item = rng.choice(pool if rng.random() < 0.7 else items)
        name = rng.choice(EVENT_NAMES)
        props: dict[str, Any] = {"product_id": item.id}
        if name == "Order Completed":
            props = {
                "order_id": str(uuid.uuid4()),
                "revenue": item.price or 10,
                "products": [{"product_id": item.id}],
            }
        events.append(
            {
                "type": "track",
                "anonymousId": anon,
                "event": name,
                "properties": props,
                "messageId": str(uuid.uuid4()),
                "timestamp": (now - timedelta(minutes=rng.randint(0, 5000))).isoformat(),
            }
        )
    return events


def build_engine(
    profiles: int,
    items: int,
    templates: int = 2000,
    events_per_user: int = 10,
    seed: int = 1,
    storage: Storage | None = None,
) -> tuple[Engine, list[str]]:
    """An engine with ``items`` items and ``profiles`` warm profiles, on ``storage`` (memory
    storage unless given); returns it and the anonymous ids of its users."""
    workspace = sample_workspace()
    clock = FixedClock(START)
    storage = MemoryStorage() if storage is None else storage
    seeding = Engine(workspace, storage, clock=clock, seed=seed)
    catalog_items = catalog(items, workspace)
    seeding.put_items(catalog_items)
    rng = random.Random(seed)
    templates = min(templates, profiles)
    ids = [f"bench-{u}" for u in range(templates)]
    for start in range(0, templates, 50):
        batch = [
            event
            for anon in ids[start : start + 50]
            for event in user_events(rng, anon, catalog_items, events_per_user, clock())
        ]
        seeding.ingest(parse_request({"batch": batch}, kind="batch", received_at=clock()))
    templates_stored = [seeding.services.views.profiles.get(profile_id_for(a)) for a in ids]
    clones: list[tuple[str, ProfileRecord]] = []
    for u in range(templates, profiles):
        anon = f"bench-{u}"
        template = templates_stored[u % templates]
        assert template is not None
        clone = template.copy()
        clone.id = profile_id_for(anon)
        clone.anonymous_ids = [anon]
        clones.append((anon, codec.encode(clone)))
        ids.append(anon)

    def install(uow: UnitOfWork) -> None:
        uow.profiles.upsert([record for _, record in clones])
        uow.identities.link({anon: record.id for anon, record in clones})

    storage.write(install)
    engine = Engine(workspace, storage, clock=clock, seed=seed)  # a "restarted server"
    views = engine.services.views
    for anon in ids:  # warm: every profile in the engine's cache, as on a busy server
        views.profiles.get(profile_id_for(anon))
        views.identities.resolve(anon)
    return engine, ids
