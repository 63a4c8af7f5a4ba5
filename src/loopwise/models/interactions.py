"""Interactions and the user x item matrix every recommender trains on.

An :class:`Interaction` is one thing a user did to an item (viewed, added to cart, bought). The
:class:`InteractionMatrix` sums them into a sparse ``users x items`` confidence matrix, the input
format of the ``implicit`` library: row ``u`` holds user ``u``'s weighted interactions, one column
per item. The same matrix is built offline (evaluation, training jobs) and from the engine's event
log (:func:`interactions_from_events`), so training and serving agree on what an event is worth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from loopwise.events.kinds import EventKind, classify, item_ids
from loopwise.events.schema import Event
from loopwise.storage.records import LoggedEvent

DAY_SECONDS = 86_400.0

#: Weight of one interaction per event name; names not listed weigh :data:`DEFAULT_WEIGHT`.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "item_view": 1.0,
    "Product Viewed": 1.0,
    "click": 1.0,
    "add_to_cart": 3.0,
    "Product Added": 3.0,
    "purchase": 5.0,
    "Order Completed": 5.0,
}
DEFAULT_WEIGHT = 1.0

# Event kinds that say a user was interested in an item, with the event name they become.
_KIND_EVENTS: dict[EventKind, str] = {
    EventKind.ITEM_VIEW: "item_view",
    EventKind.CLICK: "click",
    EventKind.ADD_TO_CART: "add_to_cart",
    EventKind.PURCHASE: "purchase",
}


@dataclass(frozen=True, slots=True)
class Interaction:
    """One user-item interaction. ``timestamp`` is epoch seconds (UTC); ``weight`` multiplies the
    event's weight (1.0 for a plain event)."""

    user: str
    item: str
    timestamp: float
    event: str = "view"
    weight: float = 1.0


class Index:
    """A stable id ↔ row (or column) map: ids in first-seen order."""

    __slots__ = ("_ids", "_pos")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        for key in ids:
            self.add(key)

    def add(self, key: str) -> int:
        pos = self._pos.get(key)
        if pos is None:
            pos = self._pos[key] = len(self._ids)
            self._ids.append(key)
        return pos

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._pos

    def __getitem__(self, key: str) -> int:
        return self._pos[key]

    def get(self, key: str) -> int | None:
        return self._pos.get(key)

    def id_of(self, pos: int) -> str:
        return self._ids[pos]

    @property
    def ids(self) -> Sequence[str]:
        return self._ids


@dataclass(frozen=True, slots=True)
class EventLog:
    """The interactions behind a matrix, one entry each, in input order: what the sequence-aware
    models (:mod:`loopwise.models.sequence`) need and the summed matrix forgets.

    Attributes
    ----------
    users, items : ndarray of int64, shape (n,)
        Row and column of each interaction in the matrix.
    times : ndarray of float64, shape (n,)
        Epoch seconds.
    weights : ndarray of float32, shape (n,)
        Event weight times the interaction's own weight (before any time decay).
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return int(self.users.size)

    def ordered(self) -> EventLog:
        """The log sorted by user, then time (ties keep input order)."""
        order = np.lexsort((np.arange(self.users.size), self.times, self.users))
        return EventLog(
            self.users[order], self.items[order], self.times[order], self.weights[order]
        )


@dataclass(slots=True)
class InteractionMatrix:
    """Users x items confidence matrix.

    Attributes
    ----------
    matrix : csr_matrix of float32, shape (n_users, n_items)
        ``matrix[u, i]`` is the summed (optionally time-decayed) weight of user ``u``'s
        interactions with item ``i``; zero where there was none.
    user_index, item_index : Index
        Map user / item ids to rows / columns and back (``id_of``).
    """

    matrix: csr_matrix
    user_index: Index
    item_index: Index
    #: The interactions one by one (order and time), when built from interactions.
    log: EventLog | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.user_index), len(self.item_index))

    @classmethod
    def build(
        cls,
        interactions: Iterable[Interaction],
        event_weights: Mapping[str, float] | None = None,
        half_life_days: float | None = None,
        now: float | None = None,
        *,
        item_ids: Iterable[str] = (),
        user_ids: Iterable[str] = (),
    ) -> InteractionMatrix:
        """Sum interactions into a matrix.

        Each interaction adds ``event_weights.get(event, 1) * weight``, times
        ``0.5 ** (age_days / half_life_days)`` when ``half_life_days`` is set (age relative to
        ``now``, default the newest interaction; interactions after ``now`` are not boosted).
        ``item_ids`` / ``user_ids`` add columns / rows even without interactions (catalog items a
        content model can still score, users with an empty history); they come first, in order.
        """
        weights = DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights
        users, items = Index(user_ids), Index(item_ids)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        stamps: list[float] = []
        for it in interactions:
            rows.append(users.add(it.user))
            cols.append(items.add(it.item))
            vals.append(weights.get(it.event, DEFAULT_WEIGHT) * it.weight)
            stamps.append(it.timestamp)
        data = np.asarray(vals, dtype=np.float64)
        log = EventLog(
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            np.asarray(stamps, dtype=np.float64),
            data.astype(np.float32),
        )
        if half_life_days is not None and data.size:
            if half_life_days <= 0:
                raise ValueError("half_life_days must be positive")
            ts = np.asarray(stamps, dtype=np.float64)
            ref = float(ts.max()) if now is None else now
            age_days = np.maximum(ref - ts, 0.0) / DAY_SECONDS
            data *= np.power(0.5, age_days / half_life_days)
        matrix = csr_matrix(
            (data, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(len(users), len(items)),
            dtype=np.float64,
        )
        matrix.sum_duplicates()
        return cls(matrix.astype(np.float32), users, items, log)

    def rows_for(self, histories: Sequence[Mapping[str, float]]) -> csr_matrix:
        """A ``len(histories) x n_items`` matrix from ``{item id: weight}`` dicts, e.g. a live
        profile's recent items, for scoring users the model never saw. Unknown items are
        dropped."""
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, history in enumerate(histories):
            for item, weight in history.items():
                col = self.item_index.get(item)
                if col is not None:
                    rows.append(r)
                    cols.append(col)
                    vals.append(weight)
        out = csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),
            shape=(len(histories), len(self.item_index)),
            dtype=np.float32,
        )
        out.sum_duplicates()
        return out

    def item_popularity(self) -> np.ndarray:
        """Number of users who interacted with each item, shape (n_items,), int64."""
        return np.diff(self.matrix.tocsc().indptr).astype(np.int64)


def interactions_from_events(
    events: Iterable[Event], profile_of: Callable[[Event], str]
) -> Iterator[Interaction]:
    """Interactions in an event log: item views, clicks, add-to-carts and purchases (one
    interaction per item id of the event, via :func:`loopwise.events.kinds.item_ids`), named
    ``item_view``/``click``/``add_to_cart``/``purchase``. ``profile_of`` maps an event to its
    canonical profile id (events it maps to ``""`` are skipped)."""
    for event in events:
        name = _KIND_EVENTS.get(classify(event))
        if name is None:
            continue
        user = profile_of(event)
        if not user:
            continue
        stamp = event.timestamp.timestamp()
        for item in item_ids(event):
            yield Interaction(user, item, stamp, name, 1.0)


def interactions_from_logged(logged: Iterable[LoggedEvent]) -> Iterator[Interaction]:
    """Interactions of the stored log, each under the profile its event was applied to."""
    for entry in logged:
        yield from interactions_from_events([entry.event], _constant(entry.profile_id))


def _constant(value: str) -> Callable[[Event], str]:
    return lambda _event: value
