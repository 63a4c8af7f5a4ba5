from __future__ import annotations

from datetime import UTC, datetime

from loopwise.config import SAMPLE_WORKSPACE, load_workspace_file
from loopwise.decide.strategies import StrategyRegistry
from loopwise.events.schema import Event
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import reduce
from loopwise.workspace.compiled import CompiledWorkspace

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


def _event(i: int, name: str, properties: dict[str, object]) -> Event:
    return Event(
        type="track", event=name, anonymous_id="a", message_id=f"m{i}", properties=properties,
        timestamp=T0, received_at=T0,
        context={"page": {"url": "https://shop.test/?utm_source=google&utm_medium=cpc"}},
    )  # fmt: skip


def test_membership_reads_only_what_conditions_need_and_agrees_with_full_attributes() -> None:
    compiled = CompiledWorkspace(load_workspace_file(SAMPLE_WORKSPACE), StrategyRegistry.default())
    assert compiled._condition_keys is not None and "pages_30d" not in compiled._condition_keys
    profile = Profile.new("p", T0)
    events = [
        _event(0, "Product Viewed", {"product_id": "run-001", "category": "cycling"}),
        _event(1, "Product Added", {"product_id": "run-001", "price": 400}),
        _event(2, "Order Completed", {"revenue": 400, "products": [{"product_id": "run-001"}]}),
    ]
    for event in events:
        profile = reduce(profile, event, compiled.settings, {})
        full = compiled.registry.evaluate(
            {"profile": profile.attributes(profile.last_seen, compiled.settings), "context": {}}
        )
        assert compiled.membership(profile) == frozenset(full)
    assert "big_spenders" in compiled.membership(profile)
