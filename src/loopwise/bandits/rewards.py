"""What counts as a bandit's (and an off-policy estimate's) reward for one slot of a decision."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REWARD_KINDS = {"click": ("click",), "conversion": ("purchase",), "impression": ("impression",)}


def counts_for(outcome: Mapping[str, Any], slot: str, reward: str) -> bool:
    """Whether ``outcome`` (a decision's attributed outcome) is a ``reward`` for ``slot``: a
    click on that slot (a click naming another slot of the page does not count), or a
    conversion attributed to the decision."""
    kind = outcome.get("kind")
    if kind not in REWARD_KINDS.get(reward, ()):
        return False
    on = outcome.get("slot")
    return not (kind in ("click", "impression") and on is not None and on != slot)


def rewarded(decision: Mapping[str, Any], slot: str, reward: str) -> bool:
    return any(
        isinstance(outcome, Mapping) and counts_for(outcome, slot, reward)
        for outcome in decision.get("outcomes") or ()
    )
