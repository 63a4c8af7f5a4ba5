"""LightGBM's trees as arrays, evaluated with numpy: the serving path of every score at once.

A LightGBM ``Booster.predict`` call costs far more than the 0.2 ms a profile update may spend
on all its scores, so the trees of every served score are laid out as complete binary trees of
one depth (a leaf above that depth is padded with always-left splits down to it) in flat arrays,
and one person's raw scores are every split's comparison at once, then ``depth`` vectorised steps
over all trees: ``node = left_child[node] + goes_right[node]``. The result equals
``Booster.predict(..., raw_score=True)`` (a test holds them equal) for the numeric, never-missing
features :mod:`loopwise.scores.features` produces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _depth(node: Mapping[str, Any]) -> int:
    if "leaf_value" in node or "left_child" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def _fill(
    node: Mapping[str, Any],
    position: int,
    depth: int,
    max_depth: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    leaves: np.ndarray,
) -> None:
    internal = (1 << max_depth) - 1
    if depth == max_depth:
        leaves[position - internal] = float(node.get("leaf_value", 0.0))
        return
    if "leaf_value" in node or "left_child" not in node:  # pad: always left, same leaf
        feature[position] = 0
        threshold[position] = np.inf
        _fill(node, 2 * position + 1, depth + 1, max_depth, feature, threshold, leaves)
        _fill(node, 2 * position + 2, depth + 1, max_depth, feature, threshold, leaves)
        return
    if node.get("decision_type", "<=") != "<=":
        raise ValueError("only numerical splits can be compiled (features are numeric)")
    feature[position] = int(node["split_feature"])
    threshold[position] = float(node["threshold"])
    _fill(node["left_child"], 2 * position + 1, depth + 1, max_depth, feature, threshold, leaves)
    _fill(node["right_child"], 2 * position + 2, depth + 1, max_depth, feature, threshold, leaves)


@dataclass(frozen=True)
class Forest:
    """The trees of several models, each model a contiguous run of trees."""

    depth: int
    feature: np.ndarray  # (trees * internal,) int
    threshold: np.ndarray  # (trees * internal,) float
    leaves: np.ndarray  # (trees * 2**depth,) float
    starts: np.ndarray  # first tree of each model
    trees: int

    @classmethod
    def from_dumps(cls, dumps: Sequence[Mapping[str, Any]]) -> Forest:
        """From ``Booster.dump_model()`` of each model, in order."""
        structures = [[t["tree_structure"] for t in dump["tree_info"]] for dump in dumps]
        depth = max((_depth(s) for model in structures for s in model), default=0)
        depth = max(depth, 1)
        internal, width = (1 << depth) - 1, 1 << depth
        trees = sum(len(model) for model in structures)
        feature = np.zeros(max(trees, 1) * internal, dtype=np.intp)
        threshold = np.full(max(trees, 1) * internal, np.inf)
        leaves = np.zeros(max(trees, 1) * width)
        starts = []
        index = 0
        for model in structures:
            starts.append(index)
            for structure in model:
                f = np.zeros(internal, dtype=np.intp)
                t = np.full(internal, np.inf)
                v = np.zeros(width)
                _fill(structure, 0, 0, depth, f, t, v)
                feature[index * internal : (index + 1) * internal] = f
                threshold[index * internal : (index + 1) * internal] = t
                leaves[index * width : (index + 1) * width] = v
                index += 1
        return cls(depth, feature, threshold, leaves, np.array(starts, dtype=np.intp), trees)

    def __post_init__(self) -> None:
        # the serving layout: every node's left child as a flat index (a right child is the
        # left one + 1); the last level's children index the leaves, numbered after the nodes
        internal = (1 << self.depth) - 1
        tree = np.repeat(np.arange(self.trees, dtype=np.intp), internal)
        local = np.tile(np.arange(internal, dtype=np.intp), self.trees)
        child = 2 * local + 1
        total = self.trees * internal
        left = np.where(
            child < internal,
            tree * internal + child,
            total + tree * (internal + 1) + (child - internal),
        )
        object.__setattr__(self, "_left", left)
        roots = np.arange(self.trees, dtype=np.intp) * internal
        object.__setattr__(self, "_roots", roots)
        object.__setattr__(self, "_values", np.concatenate([np.zeros(total), self.leaves]))

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw (log-odds) score of each model for one feature vector."""
        if self.trees == 0:
            return np.zeros(len(self.starts))
        right = x[self.feature] > self.threshold  # every split at once
        left: np.ndarray = self._left  # type: ignore[attr-defined]
        node: np.ndarray = self._roots  # type: ignore[attr-defined]
        for _ in range(self.depth):
            node = left[node] + right[node]
        values: np.ndarray = self._values  # type: ignore[attr-defined]
        return np.add.reduceat(values[node], self.starts)

    def raw_many(self, x: np.ndarray) -> np.ndarray:
        """Raw scores for a matrix of feature vectors: (rows, models)."""
        if self.trees == 0:
            return np.zeros((x.shape[0], len(self.starts)))
        internal = (1 << self.depth) - 1
        rows = np.arange(x.shape[0], dtype=np.intp)[:, None]
        base = np.arange(self.trees, dtype=np.intp)[None, :] * internal
        node = np.zeros((x.shape[0], self.trees), dtype=np.intp)
        for _ in range(self.depth):
            at = base + node
            node = 2 * node + 1 + (x[rows, self.feature[at]] > self.threshold[at])
        tree = np.arange(self.trees, dtype=np.intp)[None, :]
        values = self.leaves[tree * (internal + 1) + node - internal]
        return np.add.reduceat(values, self.starts, axis=1)
