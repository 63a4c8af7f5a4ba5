"""The decision log as logged bandit data: one round per decision of one block slot.

The action is the variant shown, its propensity the one logged with the decision (a bandit logs
the exact probability it drew the variant with, and its whole distribution), the reward whether
an outcome of the chosen kind followed (a click on that slot, or a conversion attributed to the
decision). The reward model's features are the person's segments at decision time and, for a
bandit, its segment bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import DictVectorizer

from loopwise.bandits.rewards import REWARD_KINDS, rewarded
from loopwise.clock import parse_timestamp
from loopwise.errors import ValidationFailed
from loopwise.ope.data import LoggedData


def _slot_entry(decision: Mapping[str, Any], slot: str) -> Mapping[str, Any] | None:
    for entry in decision.get("slots") or ():
        if isinstance(entry, Mapping) and entry.get("slot") == slot:
            return entry
    return None


def block_slots(decisions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``slot -> decisions`` for the block slots in the log (to say which --slot to pick)."""
    counts: dict[str, int] = {}
    for decision in decisions:
        for entry in decision.get("slots") or ():
            if isinstance(entry, Mapping) and entry.get("kind") == "block":
                key = str(entry.get("slot"))
                counts[key] = counts.get(key, 0) + 1
    return counts


def read_decisions(
    decisions: Iterable[Mapping[str, Any]],
    slot: str,
    variants: Sequence[str],
    *,
    reward: str = "click",
    start: datetime | None = None,
    end: datetime | None = None,
) -> LoggedData:
    """The rounds of ``slot`` made in [start, end). ``variants`` are the slot's variants now;
    variants seen only in the log are added after them."""
    if reward not in REWARD_KINDS:
        raise ValidationFailed(
            f"Unknown reward {reward!r}; use one of {', '.join(REWARD_KINDS)}.", field="reward"
        )
    names = list(variants)
    index = {name: a for a, name in enumerate(names)}
    actions: list[int] = []
    pscores: list[float] = []
    rewards: list[float] = []
    dists: list[dict[str, float] | None] = []
    contexts: list[dict[str, Any]] = []
    for decision in decisions:
        created = parse_timestamp(decision.get("created_at"))
        if created is None or (start is not None and created < start):
            continue
        if end is not None and created >= end:
            continue
        if not decision.get("profile_id"):
            continue  # logged without analytics consent: outcomes are never attributed to it
        entry = _slot_entry(decision, slot)
        if entry is None or entry.get("kind") != "block" or not entry.get("variant"):
            continue
        variant = str(entry["variant"])
        if variant not in index:
            index[variant] = len(names)
            names.append(variant)
        propensity = float(entry.get("propensity") or 1.0)
        trace = entry.get("bandit") if isinstance(entry.get("bandit"), Mapping) else None
        dist: dict[str, float] | None = None
        if trace is not None and isinstance(trace.get("probabilities"), Mapping):
            dist = {str(k): float(v) for k, v in trace["probabilities"].items()}
        elif propensity >= 1.0:
            dist = {variant: 1.0}  # a fixed choice: nothing else could have been shown
        actions.append(index[variant])
        pscores.append(min(max(propensity, 1e-12), 1.0))
        rewards.append(1.0 if rewarded(decision, slot, reward) else 0.0)
        dists.append(dist)
        contexts.append(
            {
                "segments": list(decision.get("segments") or ()),
                "bandit": dict(trace) if trace is not None else None,
            }
        )
    n = len(actions)
    logging_dist = None
    if n and all(d is not None for d in dists):
        logging_dist = np.zeros((n, len(names)))
        for i, dist in enumerate(dists):
            assert dist is not None
            for name, probability in dist.items():
                a = index.get(name)
                if a is not None:
                    logging_dist[i, a] = probability
    rows = [
        {**{f"segment={s}": 1.0 for s in c["segments"]}, **_bucket_feature(c["bandit"])}
        for c in contexts
    ]
    features = (
        sparse.csr_matrix(DictVectorizer().fit_transform(rows))
        if rows
        else sparse.csr_matrix((0, 0))
    )
    if features.shape[1] == 0:
        features = sparse.csr_matrix((n, 1))
    return LoggedData(
        action=np.asarray(actions, dtype=np.int64),
        position=np.zeros(n, dtype=np.int64),
        reward=np.asarray(rewards, dtype=np.float64),
        pscore=np.asarray(pscores, dtype=np.float64),
        action_names=names,
        features=features,
        len_list=1,
        logging_dist=logging_dist,
        source={"format": "loopwise", "slot": slot, "reward": reward},
        contexts=contexts,
    )


def _bucket_feature(trace: Mapping[str, Any] | None) -> dict[str, float]:
    if trace is None or not trace.get("bucket"):
        return {}
    return {f"bucket={trace['bucket']}": 1.0}
