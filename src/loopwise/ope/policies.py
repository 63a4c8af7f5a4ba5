"""Candidate policies for a block slot, evaluated on the slot's logged decisions.

A candidate gives, for each logged round, the probability of each of the slot's variants. By
name:

- ``uniform`` — every variant equally often;
- ``variant:<id>`` — always that variant;
- ``logged`` — the logging policy itself (its estimate is the logs' own reward rate: a check);
- ``bandit`` — the slot's live bandit as it stands now (its current arm probabilities for the
  person's segment bucket, or for the logged features of a contextual bandit).

Or from a file (YAML or JSON)::

    slot: hero                 # optional; must match --slot when both are given
    variants: {a: 0.2, b: 0.8} # the default distribution
    segments:                  # per segment (first listed segment the person is in wins)
      vip: {b: 1.0}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from loopwise.errors import ValidationFailed
from loopwise.ope.data import LoggedData

# (data) -> (rounds, actions)
Candidate = Callable[[LoggedData], NDArray[np.float64]]
# the live bandit's arm probabilities for one logged round (segments, trace) of one slot
BanditProbabilities = Callable[[Mapping[str, Any]], Mapping[str, float]]

NAMED = ("uniform", "logged", "bandit", "variant:<id>")
PROBABILITY_TOLERANCE = 1e-6


def _distribution(value: Any, variants: Sequence[str], field: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise ValidationFailed(
            "give the variant probabilities as a mapping, e.g. {a: 0.5, b: 0.5}", field=field
        )
    out: dict[str, float] = {}
    for key, probability in value.items():
        if str(key) not in variants:
            raise ValidationFailed(
                f"unknown variant {key!r}; the slot's variants are {', '.join(variants)}",
                field=f"{field}.{key}",
            )
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise ValidationFailed("a probability is a number", field=f"{field}.{key}")
        if not 0.0 <= float(probability) <= 1.0:
            raise ValidationFailed("a probability is between 0 and 1", field=f"{field}.{key}")
        out[str(key)] = float(probability)
    total = sum(out.values())
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise ValidationFailed(
            f"the probabilities add up to {total:g}; they must add up to 1", field=field
        )
    return out


def _matrix(data: LoggedData, per_round: Callable[[int], Mapping[str, float]]) -> NDArray[Any]:
    index = {name: a for a, name in enumerate(data.action_names)}
    pi = np.zeros((data.n_rounds, data.n_actions))
    for i in range(data.n_rounds):
        for name, probability in per_round(i).items():
            a = index.get(name)
            if a is not None:
                pi[i, a] = probability
    return pi


def from_document(document: Any, variants: Sequence[str], *, field: str = "policy") -> Candidate:
    """A candidate from a policy document (the file's or the HTTP body's ``policy`` object)."""
    if not isinstance(document, Mapping):
        raise ValidationFailed(
            "a policy document is a mapping with variants (and optionally segments)", field=field
        )
    unknown = set(document) - {"slot", "variants", "segments", "name"}
    if unknown:
        raise ValidationFailed(
            f"unknown policy field(s): {', '.join(sorted(map(str, unknown)))}; use variants, "
            "segments, slot",
            field=f"{field}.{sorted(map(str, unknown))[0]}",
        )
    default = _distribution(document.get("variants"), variants, f"{field}.variants")
    by_segment: dict[str, dict[str, float]] = {}
    segments = document.get("segments") or {}
    if not isinstance(segments, Mapping):
        raise ValidationFailed("segments maps segment keys to distributions", field=field)
    for key, value in segments.items():
        by_segment[str(key)] = _distribution(value, variants, f"{field}.segments.{key}")

    def candidate(data: LoggedData) -> NDArray[np.float64]:
        def per_round(i: int) -> Mapping[str, float]:
            member = set(data.contexts[i].get("segments") or ()) if data.contexts else set()
            for key, dist in by_segment.items():
                if key in member:
                    return dist
            return default

        return _matrix(data, per_round)

    return candidate


def named(
    name: str,
    variants: Sequence[str],
    *,
    bandit: BanditProbabilities | None = None,
) -> Candidate:
    if name == "uniform":
        return from_document({"variants": {v: 1.0 / len(variants) for v in variants}}, variants)
    if name.startswith("variant:"):
        variant = name.removeprefix("variant:")
        if variant not in variants:
            raise ValidationFailed(
                f"unknown variant {variant!r}; the slot's variants are {', '.join(variants)}",
                field="policy",
            )
        return from_document({"variants": {variant: 1.0}}, variants)
    if name == "logged":

        def logged(data: LoggedData) -> NDArray[np.float64]:
            if data.logging_dist is None:
                raise ValidationFailed(
                    "these logs do not carry the logging policy's full distribution",
                    field="policy",
                )
            return data.logging_dist

        return logged
    if name == "bandit":
        if bandit is None:
            raise ValidationFailed(
                "the slot has no bandit (strategy: bandit) to evaluate", field="policy"
            )

        def live(data: LoggedData) -> NDArray[np.float64]:
            return _matrix(data, lambda i: bandit(data.contexts[i]))

        return live
    raise ValidationFailed(
        f"Unknown policy {name!r}: use one of {', '.join(NAMED)} or a policy file "
        "(YAML/JSON with variants and segments).",
        field="policy",
    )


def load_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationFailed(f"cannot read policy file {path}: {exc}", field="policy") from exc
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"policy file {path} is not valid: {exc}", field="policy") from exc
