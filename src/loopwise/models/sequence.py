"""Order and recency: what a person did last matters more than what they did last quarter.

Two mechanisms, both fed by the :class:`~loopwise.models.interactions.EventLog` behind an
interaction matrix (the matrix alone has summed the order away):

- **Recency-weighted fold-in rows** (:func:`user_rows`): a user's row weighs each interaction by
  ``0.5 ** (r / half_life)``, ``r`` = how many of the user's interactions came after it (0 for
  the newest). Position, not wall-clock time, so one setting fits a shop (minutes between
  events) and a film log (years). The matrix-factorisation, EASE and item-kNN components of the
  hybrid score these rows, so their fold-in follows the person's latest interests.
- **Session transitions** (:class:`TransitionModel`): item-to-item transition counts learned
  from consecutive interactions inside a session (events less than ``session_gap_seconds``
  apart): after item ``i`` came ``j`` within ``window`` steps. A user is scored from their
  *recent* row (:func:`user_rows`'s second matrix: the last ``recent_items`` distinct items,
  weighted ``recent_decay ** k`` for the k-th newest), so the next recommendation continues
  what the person is doing now.

At decide time the recent row comes from the profile's ``recently_viewed`` (newest first) — see
:func:`recent_row_from_ids` and :mod:`loopwise.models.serving`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.catalog.items import Item
from loopwise.models.base import BaseRecommender, check_rows, products, spans
from loopwise.models.interactions import EventLog, InteractionMatrix

#: The smallest recency factor of an interaction in a fold-in row.
MIN_FACTOR = 1e-4


@dataclass(frozen=True, slots=True)
class Recency:
    """How a user's rows are built from their ordered interactions.

    ``half_life``: interactions after which an interaction's weight halves in the fold-in row
    (``None``: all history alike, the plain matrix row; never below :data:`MIN_FACTOR`).
    ``recent_items``/``recent_decay``: the recent row the transition model scores.
    """

    half_life: float | None = 8.0
    recent_items: int = 5
    recent_decay: float = 0.6

    def __post_init__(self) -> None:
        if self.half_life is not None and not self.half_life > 0:
            raise ValueError("half_life must be positive or None")
        if self.recent_items < 1:
            raise ValueError("recent_items must be at least 1")
        if not 0 < self.recent_decay <= 1:
            raise ValueError("recent_decay must be in (0, 1]")


def _positions_from_end(users: np.ndarray) -> np.ndarray:
    """For a log sorted by user: how many later entries each entry's user has."""
    n = users.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], n]
    counts = ends - starts
    last = np.repeat(ends - 1, counts)
    return (last - np.arange(n)).astype(np.int64)


def user_rows(
    log: EventLog, shape: tuple[int, int], recency: Recency
) -> tuple[csr_matrix, csr_matrix]:
    """``(rows, recent)`` for every user of a matrix of ``shape`` (users x items), both float32
    CSR of that shape: the recency-weighted fold-in rows and the recent rows (see the module
    docstring). Users without interactions get empty rows."""
    ordered = log.ordered()
    rank = _positions_from_end(ordered.users)
    weights = ordered.weights.astype(np.float64)
    if recency.half_life is not None:
        # floored so that a long history keeps every item in the row (the "seen" set)
        weights = weights * np.maximum(np.power(0.5, rank / recency.half_life), MIN_FACTOR)
    rows = csr_matrix((weights, (ordered.users, ordered.items)), shape=shape, dtype=np.float64)
    rows.sum_duplicates()
    return rows.astype(np.float32), recent_rows(ordered, shape, recency)


def recent_rows(ordered: EventLog, shape: tuple[int, int], recency: Recency) -> csr_matrix:
    """The last ``recent_items`` distinct items of each user of an ordered log, the newest
    weighing 1 and each older one ``recent_decay`` times the next."""
    n = len(ordered)
    if n == 0:
        return csr_matrix(shape, dtype=np.float32)
    position = np.arange(n)
    # newest occurrence of each (user, item): sort by user, item, then position, keep the last
    order = np.lexsort((position, ordered.items, ordered.users))
    u, i, p = ordered.users[order], ordered.items[order], position[order]
    last = np.r_[(u[1:] != u[:-1]) | (i[1:] != i[:-1]), True]
    u, i, p = u[last], i[last], p[last]
    # distinct items newest first within each user
    order = np.lexsort((-p, u))
    u, i = u[order], i[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    rank = np.arange(u.size) - np.repeat(starts, np.diff(np.r_[starts, u.size]))
    keep = rank < recency.recent_items
    values = np.power(recency.recent_decay, rank[keep]).astype(np.float32)
    return csr_matrix((values, (u[keep], i[keep])), shape=shape, dtype=np.float32)


def recent_row_from_ids(
    item_ids: Sequence[str], index: Mapping[str, int], n_items: int, recency: Recency
) -> csr_matrix:
    """A 1 x ``n_items`` recent row from item ids, newest first (a profile's
    ``recently_viewed``); unknown ids are skipped, repeats count once."""
    cols: list[int] = []
    for item_id in item_ids:
        col = index.get(item_id)
        if col is not None and col not in cols:
            cols.append(col)
            if len(cols) == recency.recent_items:
                break
    values = np.power(recency.recent_decay, np.arange(len(cols))).astype(np.float32)
    return csr_matrix(
        (values, (np.zeros(len(cols), dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(1, n_items),
    )


def session_ids(ordered: EventLog, gap_seconds: float | None) -> np.ndarray:
    """Session number of each entry of an ordered log: a new session starts at each new user
    and after a pause longer than ``gap_seconds`` (``None``: one session per user)."""
    n = len(ordered)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.r_[True, ordered.users[1:] != ordered.users[:-1]]
    if gap_seconds is not None:
        new[1:] |= np.diff(ordered.times) > gap_seconds
    return np.cumsum(new) - 1


class TransitionModel(BaseRecommender):
    """Session-based item-to-item transitions ("what came next"), a first-order sequential
    model in the family of sequential rules and session kNN (Ludewig & Jannach 2018).

    Fit: within each session (see :func:`session_ids`), for every pair of interactions ``a``
    then ``b`` at distance ``d <= window`` steps, ``T[a, b] += step_decay ** (d - 1)`` and, for
    the reverse direction, ``T[b, a] += backward * step_decay ** (d - 1)`` (items seen together
    in a session are related both ways, the forward way more). Each row of ``T`` is then
    divided by its sum (a next-item distribution) and each column by ``popularity ** beta``
    (so a transition into a blockbuster counts less than one into a niche item).

    Defaults (window 5, step decay 0.75, backward 0.8, beta 0.2, no session gap: consecutive
    visits of one person count too, since an intent often carries over to the next visit) are
    what Optuna preferred on validation splits carved from the training part of the generated
    logs (:mod:`loopwise.models.movielens_like`, the simulator: a one-hour gap validated 6%
    lower there); ``loopwise evaluate --tune`` and ``loopwise train --tune`` tune them per data
    set, the gap among 10 minutes, 1 hour, 1 day and none.

    Score: ``recent @ T`` — the recent row (newest item weight 1, older ones decayed) spreads over
    what followed those items. A row without transitions scores 0 everywhere.
    """

    name = "transitions"
    uses_recent = True

    def __init__(
        self,
        window: int = 5,
        step_decay: float = 0.75,
        backward: float = 0.8,
        beta: float = 0.2,
        session_gap_seconds: float | None = None,
        max_neighbours: int = 200,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if max_neighbours < 1:
            raise ValueError("max_neighbours must be at least 1")
        self.window = window
        self.step_decay = step_decay
        self.backward = backward
        self.beta = beta
        self.session_gap_seconds = session_gap_seconds
        self.max_neighbours = max_neighbours
        self.transitions: csr_matrix | None = None

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        n_items = matrix.matrix.shape[1]
        self.n_items = n_items
        log = matrix.log
        if log is None or len(log) < 2:
            self.transitions = csr_matrix((n_items, n_items), dtype=np.float32)
            return
        ordered = log.ordered()
        session = session_ids(ordered, self.session_gap_seconds)
        src: list[np.ndarray] = []
        dst: list[np.ndarray] = []
        val: list[np.ndarray] = []
        for d in range(1, self.window + 1):
            if d >= len(ordered):
                break
            same = session[d:] == session[:-d]
            a, b = ordered.items[:-d][same], ordered.items[d:][same]
            differ = a != b
            a, b = a[differ], b[differ]
            w = np.float32(self.step_decay ** (d - 1))
            src += [a, b]
            dst += [b, a]
            val += [np.full(a.size, w), np.full(a.size, w * np.float32(self.backward))]
        if not src:
            self.transitions = csr_matrix((n_items, n_items), dtype=np.float32)
            return
        t = csr_matrix(
            (np.concatenate(val), (np.concatenate(src), np.concatenate(dst))),
            shape=(n_items, n_items),
            dtype=np.float32,
        )
        t.sum_duplicates()
        t.eliminate_zeros()
        sums = np.asarray(t.sum(axis=1), dtype=np.float32).ravel()
        sums[sums == 0] = 1.0
        popularity = matrix.item_popularity().astype(np.float32)
        damp = np.power(np.maximum(popularity, 1.0), np.float32(self.beta))
        t = csr_matrix(t.multiply(1.0 / sums[:, None]).multiply(1.0 / damp[None, :]))
        self.transitions = _keep_top(t, self.max_neighbours)

    def score_users(self, user_items: csr_matrix, recent: csr_matrix | None = None) -> np.ndarray:
        """Scores from ``recent`` rows when given (see the class docstring), else from
        ``user_items`` as they are."""
        self._require_fitted(self.transitions)
        assert self.transitions is not None
        rows = check_rows(recent if recent is not None else user_items, self.n_items)
        return products(rows, self.transitions)

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """What most often came next after ``item_index`` in a session."""
        self._require_fitted(self.transitions)
        assert self.transitions is not None
        row = self.transitions.getrow(item_index)
        scores = np.full(self.n_items, -np.inf, dtype=np.float32)
        scores[row.indices] = row.data
        return self._similar_from(scores, item_index, n)


#: A visit ends after this long without an interaction (the usual web-analytics timeout).
VISIT_GAP_SECONDS = 30 * 60.0


def session_matrix(log: EventLog, n_items: int, gap_seconds: float | None) -> csr_matrix:
    """Sessions x items, float32 CSR: 1 where the session (see :func:`session_ids`) touched the
    item, however often."""
    ordered = log.ordered()
    if len(ordered) == 0:
        return csr_matrix((0, n_items), dtype=np.float32)
    session = session_ids(ordered, gap_seconds)
    out = csr_matrix(
        (np.ones(len(ordered), dtype=np.float32), (session, ordered.items)),
        shape=(int(session[-1]) + 1, n_items),
        dtype=np.float32,
    )
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


class SessionKNNModel(BaseRecommender):
    """Session-based kNN (SKNN, Jannach & Ludewig 2017; Ludewig & Jannach 2018 found it as
    strong as neural session models): what did the visits most like the person's current one
    contain?

    Fit: cut the log into sessions at pauses longer than ``session_gap_seconds`` (30 minutes,
    the web-analytics visit) and keep the sessions x items matrix ``S`` (binary).

    Score: the query is the *recent* row (the person's last items, the newest weighing most, as
    in V-SKNN's position weights). Its similarity to every past session is ``q . s /
    len(s) ** length_norm`` (``length_norm`` 0.5: cosine up to the query's own norm); the
    ``neighbours`` most similar sessions vote for their items, each vote its similarity, divided
    by ``popularity ** beta`` of the item (sessions a blockbuster is in vote less for it); the
    query's own items score 0 (every neighbour has them: they say nothing new, and left in they
    would top the list and squash the others in a min-max blend). Unlike
    :class:`TransitionModel` (what came *next* within a few steps) every item co-viewed anywhere
    in a similar visit counts, so the whole of what the visit was about is recommended; unlike
    item-kNN over users' whole histories, co-occurrence is counted within visits only.

    Defaults (30-minute gap, 100 neighbours, beta 0.3, length norm 0.5) are what ranked best on
    validation splits carved from the training part of the generated logs (the simulator's
    shop, the MovieLens-style logs). A row without neighbours scores 0 everywhere.
    """

    name = "session_knn"
    uses_recent = True

    def __init__(
        self,
        neighbours: int = 100,
        session_gap_seconds: float | None = VISIT_GAP_SECONDS,
        beta: float = 0.3,
        length_norm: float = 0.5,
    ) -> None:
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        if session_gap_seconds is not None and not session_gap_seconds > 0:
            raise ValueError("session_gap_seconds must be positive or None")
        self.neighbours = neighbours
        self.session_gap_seconds = session_gap_seconds
        self.beta = beta
        self.length_norm = length_norm
        #: items x sessions, each session's column divided by ``len ** length_norm``
        self.similarity_of: csr_matrix | None = None
        #: sessions x items, each item's column divided by ``popularity ** beta``
        self.votes: csr_matrix | None = None

    def fit(self, matrix: InteractionMatrix, items: Mapping[str, Item] | None = None) -> None:
        n_items = matrix.matrix.shape[1]
        self.n_items = n_items
        if matrix.log is None:
            sessions = csr_matrix(matrix.matrix, dtype=np.float32)  # a user's history: a session
            sessions.data[:] = 1.0
        else:
            sessions = session_matrix(matrix.log, n_items, self.session_gap_seconds)
        lengths = np.maximum(np.diff(sessions.indptr), 1).astype(np.float32)
        scaled = sessions.multiply(np.power(lengths, -np.float32(self.length_norm))[:, None])
        self.similarity_of = csr_matrix(csr_matrix(scaled).T, dtype=np.float32)
        popularity = np.maximum(np.diff(sessions.tocsc().indptr), 1).astype(np.float32)
        votes = sessions.multiply(np.power(popularity, -np.float32(self.beta))[None, :])
        self.votes = csr_matrix(votes, dtype=np.float32)

    def score_users(self, user_items: csr_matrix, recent: csr_matrix | None = None) -> np.ndarray:
        """Scores from ``recent`` rows when given (see the class docstring), else from
        ``user_items`` as they are."""
        self._require_fitted(self.votes)
        assert self.votes is not None and self.similarity_of is not None
        rows = check_rows(recent if recent is not None else user_items, self.n_items)
        if rows.shape[0] == 1:
            return self._score_row(rows)[None, :]
        similar = _top_per_row(csr_matrix(rows @ self.similarity_of), self.neighbours)
        scores = np.asarray((similar @ self.votes).toarray(), dtype=np.float32)
        scores[rows.nonzero()] = 0.0  # the query's own items: in every neighbour, no news
        return scores

    def _score_row(self, row: csr_matrix) -> np.ndarray:
        """One row's scores in plain numpy (the decide path: sparse products cost more in
        overhead than in arithmetic at this size); the same neighbours as the batch path."""
        assert self.votes is not None and self.similarity_of is not None
        of, votes = self.similarity_of, self.votes
        items, weights = row.indices, row.data
        if items.size == 0:
            return np.zeros(self.n_items, dtype=np.float32)
        starts, ends = of.indptr[items], of.indptr[items + 1]
        at = spans(starts, ends)
        if at.size == 0:
            return np.zeros(self.n_items, dtype=np.float32)
        # float32 like the batch path's sparse product, so both pick the same neighbours
        sims = np.bincount(
            of.indices[at], of.data[at] * np.repeat(weights, ends - starts), minlength=of.shape[1]
        ).astype(np.float32)
        sessions = np.flatnonzero(sims > 0)  # on a bool array: 5x faster than on floats
        sims = sims[sessions]
        keep = _top_k_positions(sims, self.neighbours)
        sessions, sims = sessions[keep], sims[keep]
        lo, hi = votes.indptr[sessions], votes.indptr[sessions + 1]
        at = spans(lo, hi)
        scores = np.bincount(
            votes.indices[at], votes.data[at] * np.repeat(sims, hi - lo), minlength=self.n_items
        ).astype(np.float32)
        scores[items] = 0.0
        return scores

    def similar_items(self, item_index: int, n: int = 10) -> list[tuple[int, float]]:
        """What the visits with ``item_index`` in them contained."""
        row = csr_matrix(
            (np.ones(1, dtype=np.float32), ([0], [item_index])), shape=(1, self.n_items)
        )
        return self._similar_from(self.score_users(row)[0], item_index, n)


def _top_k_positions(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest of ``values`` (ties: lower position first), ascending."""
    if values.size <= k:
        return np.arange(values.size)
    threshold = np.partition(values, values.size - k)[values.size - k]
    above = np.flatnonzero(values > threshold)
    tied = np.flatnonzero(values == threshold)[: k - above.size]
    return np.sort(np.concatenate([above, tied]))


def _top_per_row(matrix: csr_matrix, k: int) -> csr_matrix:
    """The ``k`` largest entries of each row of a CSR matrix (ties: lower column first),
    vectorised (many short rows: the neighbour sessions of a batch of users)."""
    m = csr_matrix(matrix, dtype=np.float32)
    counts = np.diff(m.indptr)
    if counts.size == 0 or counts.max() <= k:
        return m
    row = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data, row))
    starts = np.repeat(m.indptr[:-1], counts)
    keep = order[np.arange(order.size) - starts < k]
    keep.sort()
    return csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)


def _keep_top(matrix: csr_matrix, k: int) -> csr_matrix:
    """The ``k`` largest entries of each row (all of a row with fewer)."""
    m = csr_matrix(matrix, dtype=np.float32)
    counts = np.diff(m.indptr)
    if counts.size == 0 or counts.max() <= k:
        return m
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for r in np.flatnonzero(counts):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        data, idx = m.data[lo:hi], m.indices[lo:hi]
        if data.size > k:
            top = np.argpartition(-data, k - 1)[:k]
            data, idx = data[top], idx[top]
        rows.append(np.full(data.size, r))
        cols.append(idx)
        vals.append(data)
    return csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=m.shape,
        dtype=np.float32,
    )


def uses_recent(model: object) -> bool:
    """Whether ``model`` scores recent rows (``score_users(rows, recent=...)``)."""
    return bool(getattr(model, "uses_recent", False))
