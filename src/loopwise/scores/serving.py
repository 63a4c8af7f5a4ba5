"""Serving: the scores of a live profile, recomputed when the profile changes, and why.

:class:`ScoreModel` is one trained version: the feature spec, every score's trees compiled into
one :class:`~loopwise.scores.forest.Forest` and its calibrator; LightGBM boosters are rebuilt
from the stored model text only when an explanation is asked for (SHAP values through
``pred_contrib``). :class:`LiveScores` holds the served version (swapped whole) and computes a
profile's scores once per profile state: a profile is immutable once published, so the values
are remembered on the profile object itself (``Profile.scores_memo``) with the version and the
settings they were computed with — a new state, a new version or new settings recompute them.
Being part of the profile, they go wherever it goes: erased with it, never stored (derived).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopwise.profiles.model import Profile
from loopwise.profiles.settings import ProfileSettings
from loopwise.scores.calibration import Calibrator
from loopwise.scores.features import FeatureSpec, describe, scoring_attributes
from loopwise.scores.forest import Forest
from loopwise.scores.spec import ScoreDefinition, nest


@dataclass(frozen=True)
class Contribution:
    feature: str
    description: str
    value: float
    contribution: float  # SHAP value, in log-odds

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "description": self.description,
            "value": round(self.value, 6),
            "contribution": round(self.contribution, 6),
        }


@dataclass(frozen=True)
class Explanation:
    key: str
    definition: ScoreDefinition
    value: float
    version: str
    top: tuple[Contribution, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.key,
            "label": self.definition.label_text(),
            "value": round(self.value, 6),
            "version": self.version,
            "top_features": [c.to_json() for c in self.top],
        }


class ScoreModel:
    """One trained version, ready to serve."""

    def __init__(self, document: Mapping[str, Any], version: str) -> None:
        self.version = version
        self.spec = FeatureSpec.from_json(document["features"])
        entries = list(document["scores"])
        self.definitions = [ScoreDefinition.model_validate(e["definition"]) for e in entries]
        self.keys = [d.key for d in self.definitions]
        self.calibrators = [Calibrator.from_json(e["calibrator"]) for e in entries]
        self._model_text = [str(e["model"]) for e in entries]
        import lightgbm

        boosters = [lightgbm.Booster(model_str=text) for text in self._model_text]
        for booster in boosters:
            if booster.num_feature() != len(self.spec):
                raise ValueError(
                    f"a score model of version {version} reads {booster.num_feature()} "
                    f"features, its spec has {len(self.spec)}"
                )
        self.forest = Forest.from_dumps([b.dump_model() for b in boosters])
        self._boosters = boosters
        self._explain_lock = threading.Lock()

    def definition(self, key: str) -> ScoreDefinition | None:
        return next((d for d in self.definitions if d.key == key), None)

    def features(self, profile: Profile, settings: ProfileSettings) -> np.ndarray:
        """The served feature vector of a profile (the training code's, see features.py)."""
        return self.spec.vector(scoring_attributes(profile, settings))

    def predict(self, x: np.ndarray) -> dict[str, float]:
        raw = self.forest.raw(x).tolist()
        return {
            key: round(calibrator.one(r), 6)
            for key, calibrator, r in zip(self.keys, self.calibrators, raw, strict=True)
        }

    def predict_many(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, (rows, scores)."""
        raw = self.forest.raw_many(x)
        return (
            np.column_stack([c.apply(raw[:, j]) for j, c in enumerate(self.calibrators)])
            if len(self.calibrators)
            else np.zeros((x.shape[0], 0))
        )

    def contributions(self, key: str, x: np.ndarray, top: int) -> tuple[Contribution, ...]:
        """The features that moved this person's score most (SHAP values from LightGBM's
        ``pred_contrib``; positive raises the score)."""
        index = self.keys.index(key)
        with self._explain_lock:  # a Booster is not safe to predict from several threads
            shap = self._boosters[index].predict(x.reshape(1, -1), pred_contrib=True)[0]
        values = np.asarray(shap[:-1])  # the last column is the expected value
        order = np.argsort(-np.abs(values), kind="stable")
        names = self.spec.names
        out = []
        for i in order[:top]:
            if values[i] == 0.0:
                break
            out.append(Contribution(names[i], describe(names[i]), float(x[i]), float(values[i])))
        return tuple(out)


class LiveScores:
    """The served score model of an engine (None before the first training)."""

    def __init__(self, model: ScoreModel | None = None) -> None:
        self.model = model
        self.listeners: list[Callable[[], None]] = []  # told after every swap

    @property
    def version(self) -> str | None:
        model = self.model
        return model.version if model is not None else None

    def install(self, model: ScoreModel | None) -> None:
        self.model = model
        for listener in list(self.listeners):
            listener()

    def values(
        self,
        profile: Profile,
        settings: ProfileSettings,
        attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, float] | None:
        """``{score key: probability}`` of a profile state (None when no model is served);
        computed once per state, version and settings. ``attributes``: the profile's
        attributes at its last event with at least the categories table, when the caller has
        them already (segment evaluation does), else they are computed here."""
        model = self.model
        if model is None:
            return None
        memo = profile.scores_memo
        if memo is not None and memo[0] is model and memo[1] is settings:
            values: dict[str, float] = memo[2]
            return values
        if attributes is None:
            attributes = scoring_attributes(profile, settings)
        values = model.predict(model.spec.vector(attributes))
        profile.scores_memo = (model, settings, values)
        return values

    def attribute(
        self,
        profile: Profile,
        settings: ProfileSettings,
        attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """``profile.scores``: the values nested as conditions read them."""
        values = self.values(profile, settings, attributes)
        return nest(values) if values is not None else None

    def explain(
        self, profile: Profile, settings: ProfileSettings, keys: Iterable[str], top: int
    ) -> list[Explanation]:
        model = self.model
        values = self.values(profile, settings)
        if model is None or values is None:
            return []
        x = model.features(profile, settings)
        out = []
        for key in dict.fromkeys(keys):
            definition = model.definition(key)
            if definition is None:
                continue
            out.append(
                Explanation(
                    key, definition, values[key], model.version, model.contributions(key, x, top)
                )
            )
        return out

    def on_profiles(self, profiles: Iterable[Profile], settings: ProfileSettings) -> int:
        """Recompute the scores of changed profiles (after their commit); how many."""
        if self.model is None:
            return 0
        count = 0
        for profile in profiles:
            self.values(profile, settings)
            count += 1
        return count
