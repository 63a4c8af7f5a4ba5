"""A MovieLens-style rating log generator, for offline evaluation without a download.

No public ratings data ships with Loopwise, so benchmarks and tests generate a log with the
shape of MovieLens (users who each rate at least 20 films over months or years, a long-tailed
catalog, films released over the period) and with the dynamics that real logs show and that a
sequence-aware recommender can use — each a parameter of :class:`MovieLensLikeConfig`:

- **genres and tastes**: each film has one to three of 18 genres and a latent vector; each user
  has a genre mixture and a latent taste (``taste · v + appeal``, a popularity skew);
- **drifting interests**: a user's genre mixture moves from a first to a second mixture over
  their active period (``drift``: 0 = fixed tastes, 1 = fully replaced by the end);
- **sessions with an intent**: users rate in sessions (``session_length`` films a few minutes
  apart, days between sessions); each session picks one genre of the current mixture and
  stays mostly in it;
- **order inside a session**: the next film is, with ``continuation``, one close to the last
  (the next film of its series, else a latent neighbour of the same genre) — binge-watching a
  series, the way ratings of sequels follow each other in MovieLens;
- **release dates**: a film exists only from its release; recent releases get a boost
  (``novelty_boost``), so what is popular moves over time.

Output: :class:`~loopwise.models.interactions.Interaction` rows with event ``rating`` (implicit
feedback, as MovieLens ratings are used in the issue's protocol), and :func:`write_ratings` writes
them in MovieLens 1M's ``ratings.dat`` format (``user::item::rating::timestamp``) for
``loopwise evaluate --format movielens``. The figures measured on it say what it is: a
controlled test bed, not evidence about a particular public dataset.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopwise.models.interactions import Interaction

GENRES = 18
DAY = 86_400.0
START = 946_684_800.0  # 2000-01-01T00:00:00Z, MovieLens 1M's era


@dataclass(frozen=True, slots=True)
class MovieLensLikeConfig:
    n_users: int = 1_500
    n_items: int = 10_000
    interactions: int = 100_000
    dims: int = 16
    drift: float = 0.6
    session_length: float = 6.0
    continuation: float = 0.5
    series_share: float = 0.3
    novelty_boost: float = 1.0
    span_days: float = 1_000.0
    temperature: float = 0.7
    seed: int = 0


def generate(config: MovieLensLikeConfig | None = None) -> list[Interaction]:
    """A seeded rating log (time order within each user; see the module docstring)."""
    c = config or MovieLensLikeConfig()
    if c.n_users < 1 or c.n_items < 10 or c.interactions < 20 * c.n_users:
        raise ValueError("need n_users >= 1, n_items >= 10 and interactions >= 20 * n_users")
    rng = np.random.default_rng(c.seed)
    # -- catalog: genres, latent vectors, appeal, release day, series
    genre_of = rng.integers(0, GENRES, c.n_items)
    extra = rng.random(c.n_items) < 0.4
    second = np.where(extra, rng.integers(0, GENRES, c.n_items), genre_of)
    genre_weights = np.zeros((c.n_items, GENRES))
    genre_weights[np.arange(c.n_items), genre_of] = 1.0
    genre_weights[np.arange(c.n_items), second] += 0.5
    centres = rng.normal(0.0, 1.0, (GENRES, c.dims))
    vectors = genre_weights @ centres / genre_weights.sum(axis=1, keepdims=True)
    vectors += rng.normal(0.0, 0.6, (c.n_items, c.dims))
    appeal = rng.normal(0.0, 1.0, c.n_items)
    release = np.where(rng.random(c.n_items) < 0.5, -rng.exponential(2000.0, c.n_items), 0.0)
    later = release == 0.0
    release[later] = rng.uniform(0.0, c.span_days, int(later.sum()))
    next_in_series = np.full(c.n_items, -1, dtype=np.int64)
    in_series = np.flatnonzero(rng.random(c.n_items) < c.series_share)
    rng.shuffle(in_series)
    pos = 0
    while pos < in_series.size - 1:
        size = int(rng.integers(2, 6))
        members = np.sort(in_series[pos : pos + size])  # a series keeps genre and look
        for a, b in itertools.pairwise(members):
            genre_of[b] = genre_of[a]
            vectors[b] = 0.7 * vectors[a] + 0.3 * vectors[b]
            release[b] = max(release[b], release[a] + rng.uniform(30.0, 400.0))
            next_in_series[a] = b
        pos += size
    by_genre = [np.flatnonzero(genre_of == g) for g in range(GENRES)]
    neighbours = _neighbours(vectors, by_genre, 8)
    # -- users: activity (>= 20 ratings, long-tailed), start, genre mixtures, taste
    activity = 20 + rng.pareto(1.3, c.n_users) * 20.0
    counts = np.maximum(20, np.round(activity / activity.sum() * c.interactions)).astype(int)
    out: list[Interaction] = []
    everything = np.arange(c.n_items)
    for u in range(c.n_users):
        n = int(counts[u])
        start = rng.uniform(0.0, c.span_days * 0.8)
        length = min(c.span_days - start, rng.exponential(c.span_days / 3.0) + 30.0)
        first = rng.dirichlet(np.full(GENRES, 0.3))
        later_mix = rng.dirichlet(np.full(GENRES, 0.3))
        taste = first @ centres + rng.normal(0.0, 0.5, c.dims)
        taste_later = later_mix @ centres + rng.normal(0.0, 0.5, c.dims)
        seen = np.zeros(c.n_items, dtype=bool)
        sessions = max(1, round(n / c.session_length))
        session_days = np.sort(rng.uniform(start, start + length, sessions))
        per_session = np.bincount(rng.integers(0, sessions, n - sessions), minlength=sessions) + 1
        user = str(u + 1)
        for day, size in zip(session_days, per_session, strict=True):
            t = (day - start) / max(length, 1.0)
            mix = (1.0 - c.drift * t) * first + c.drift * t * later_mix
            vector = (1.0 - c.drift * t) * taste + c.drift * t * taste_later
            genre = int(rng.choice(GENRES, p=mix / mix.sum()))
            pool = by_genre[genre] if by_genre[genre].size else everything
            chooser = _Chooser(pool, vector, vectors, appeal, release, day, c)
            clock = START + day * DAY + rng.uniform(0.0, DAY)
            last = -1
            for _ in range(int(size)):
                item = -1
                if last >= 0 and rng.random() < c.continuation:
                    item = _continue(last, next_in_series, neighbours, seen, release, day, rng)
                if item < 0:
                    item = chooser.pick(seen, rng)
                if item < 0:
                    fallback = _Chooser(everything, vector, vectors, appeal, release, day, c)
                    item = fallback.pick(seen, rng)
                if item < 0:
                    break
                seen[item] = True
                clock += rng.uniform(20.0, 300.0)
                out.append(Interaction(user, str(item + 1), round(clock), "rating", 1.0))
                last = item
    return out


def _neighbours(vectors: np.ndarray, by_genre: list[np.ndarray], k: int) -> np.ndarray:
    """The ``k`` latent nearest films of each film within its genre (-1 pads small genres)."""
    out = np.full((vectors.shape[0], k), -1, dtype=np.int64)
    for pool in by_genre:
        if pool.size < 2:
            continue
        v = vectors[pool]
        sq = (v * v).sum(axis=1)
        dist = sq[:, None] + sq[None, :] - 2.0 * v @ v.T
        np.fill_diagonal(dist, np.inf)
        kk = min(k, pool.size - 1)
        near = np.argsort(dist, axis=1)[:, :kk]
        out[pool, :kk] = pool[near]
    return out


class _Chooser:
    """Films of ``pool`` released by ``day``, by softmax of taste, appeal and a boost for recent
    releases; :meth:`pick` draws one not yet seen."""

    def __init__(
        self,
        pool: np.ndarray,
        taste: np.ndarray,
        vectors: np.ndarray,
        appeal: np.ndarray,
        release: np.ndarray,
        day: float,
        c: MovieLensLikeConfig,
    ) -> None:
        self.pool = pool[release[pool] <= day]
        age = np.maximum(day - release[self.pool], 0.0)
        logits = (vectors[self.pool] @ taste) * 0.5 + appeal[self.pool]
        logits = (logits + c.novelty_boost * np.exp(-age / 90.0)) / c.temperature
        self.weights = np.exp(logits - logits.max()) if logits.size else logits

    def pick(self, seen: np.ndarray, rng: np.random.Generator) -> int:
        if self.pool.size == 0:
            return -1
        cumulative = np.cumsum(np.where(seen[self.pool], 0.0, self.weights))
        if cumulative[-1] <= 0:
            return -1
        j = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return int(self.pool[min(j, self.pool.size - 1)])


def _continue(
    last: int,
    next_in_series: np.ndarray,
    neighbours: np.ndarray,
    seen: np.ndarray,
    release: np.ndarray,
    day: float,
    rng: np.random.Generator,
) -> int:
    """The next film of ``last``'s series when released and unseen, else a released, unseen one
    of ``last``'s latent nearest neighbours within its genre."""
    following = int(next_in_series[last])
    if following >= 0 and not seen[following] and release[following] <= day:
        return following
    near = neighbours[last]
    near = near[near >= 0]
    near = near[~seen[near] & (release[near] <= day)]
    if near.size == 0:
        return -1
    return int(near[rng.integers(near.size)])


def write_ratings(interactions: list[Interaction], path: Path | str) -> Path:
    """Write ``interactions`` as MovieLens 1M ``ratings.dat`` (rating 4 for every row)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as handle:
        for it in interactions:
            handle.write(f"{it.user}::{it.item}::4::{int(it.timestamp)}\n")
    return path
