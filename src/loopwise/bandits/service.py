"""The bandit service: chooses block-slot variants and learns online from the feedback loop.

Choosing (decide's hot path, in memory): the slot's learner for the person's bucket (the first of
``bandit.segments`` they are in, else ``all``) gives each variant its probability of being best,
the exploration floor is mixed in, and the variant is drawn from that distribution with the
request's random source. The decision carries a trace — algorithm, bucket, the whole
distribution, the features of a contextual bandit — and the exact propensity of what was shown.

Learning (no retraining): after a decision commits, each bandit slot of it counts as a trial of
its arm (:meth:`on_decision`); after the projection commits an outcome attributed to a recent
decision (an ``OutcomeAttributed`` effect: the click on the slot, or the conversion), the arm
gets its success (:meth:`on_effects`), once per decision and slot.

Durable: the state is derived from the decision log (traces and outcomes) and checkpointed in the
configuration store. At start-up :meth:`rebuild` loads the checkpoint and folds the decisions
logged after it; the decisions older than the attribution window (whose outcomes are settled)
then become the new checkpoint, so the next start folds only the tail. Outcomes that arrive for
a decision after it left the window are not learned by later starts (clicks come within
seconds; conversions within the window).

Shared across workers (``loopwise serve --redis-url``): every change to the state is an *op* —
``open`` (a decision's bandit slots, trials counted), ``trial`` (counted on its impression),
``success`` — applied here and handed to :attr:`publish`; the other workers apply them with
:meth:`apply_remote`. Ops are idempotent per decision and slot (the flags on the open choice), so
a duplicate is harmless; a lost one is healed by :meth:`resync`, which re-derives the state from
the decision log (the system of record) and replays the ops that arrived while it read.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from loopwise.bandits.learners import BetaArms, FloatArray, LinearArms, feature_vector, with_floor
from loopwise.bandits.rewards import counts_for, rewarded
from loopwise.bandits.settings import BanditSettings
from loopwise.clock import Clock, isoformat, parse_timestamp
from loopwise.storage.records import JsonDict
from loopwise.storage.stores import Storage

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "bandits.checkpoint"
ALL = "all"
RECENT_LIMIT = 100_000  # decisions whose outcomes are still learned (bounded memory)
REFRESH_SHARE = 0.01  # recompute a cached distribution when the counts grew by this share


@dataclass(frozen=True, slots=True)
class BanditChoice:
    """The variant drawn, with the probability it was drawn with and the whole distribution."""

    variant: str
    propensity: float
    probabilities: dict[str, float]
    bucket: str
    algorithm: str
    warmup: bool
    trace: JsonDict


@dataclass(slots=True)
class _Open:
    """A recent bandit choice waiting for its reward."""

    slot: str
    key: tuple[str, ...]
    arm: str
    reward: str
    x: FloatArray | None
    on_impression: bool = False  # the trial counts when an impression (or the reward) arrives
    counted: bool = False
    rewarded: bool = False


@dataclass(slots=True)
class _Cached:
    arms: tuple[str, ...]
    probabilities: FloatArray
    trials: float


@dataclass(slots=True)
class _State:
    beta: dict[tuple[str, ...], BetaArms] = field(default_factory=dict)
    linear: dict[tuple[str, ...], LinearArms] = field(default_factory=dict)

    def to_record(self) -> JsonDict:
        return {
            "beta": [[list(k), v.to_record()] for k, v in self.beta.items()],
            "linear": [[list(k), v.to_record()] for k, v in self.linear.items()],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> _State:
        state = cls()
        for key, value in record.get("beta", ()):
            state.beta[tuple(key)] = BetaArms.from_record(value)
        for key, value in record.get("linear", ()):
            state.linear[tuple(key)] = LinearArms.from_record(value)
        return state

    def fold(self, slot: str, trace: Mapping[str, Any], arm: str, success: bool) -> None:
        key = tuple(trace.get("key") or (slot, trace.get("bucket") or ALL))
        x = trace.get("x")
        if trace.get("algorithm") == "linear_thompson" and isinstance(x, list):
            vector = np.asarray(x, dtype=np.float64)
            learner = self.linear.get(key)
            if learner is None or learner.dim != len(vector):
                learner = self.linear[key] = LinearArms(len(vector), float(trace.get("ridge", 1)))
            learner.trial(arm, vector)
            if success:
                learner.success(arm, vector)
        else:
            beta = self.beta.setdefault(key, BetaArms())
            beta.trial(arm)
            if success:
                beta.success(arm)


def bucket_of(settings: BanditSettings, segments: Iterable[str]) -> str:
    member = set(segments)
    return next((s for s in settings.segments if s in member), ALL)


def learner_key(slot: str, settings: BanditSettings, bucket: str) -> tuple[str, ...]:
    if settings.algorithm == "linear_thompson":
        return (slot, bucket, "linear", *settings.features)
    return (slot, bucket)


class BanditService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        *,
        window: Callable[[], timedelta] = lambda: timedelta(hours=24),
        recent_limit: int = RECENT_LIMIT,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._window = window
        self._lock = threading.Lock()
        self._state = _State()
        self._cache: dict[tuple[str, ...], _Cached] = {}
        self._recent: OrderedDict[str, list[_Open]] = OrderedDict()
        self._recent_limit = recent_limit
        self.learned = 0  # successes learned online (tests and metrics)
        self.publish: Callable[[list[JsonDict]], None] | None = None  # ops for other workers
        self.remote_ops = 0  # ops applied from other workers
        self._journal: list[JsonDict] | None = None  # ops applied while a resync reads the log
        # the settled part of the last fold (as the checkpoint record): a resync starts here,
        # so it reads only the attribution window, not the whole log since start-up
        self._base: JsonDict | None = None

    # -- choosing ------------------------------------------------------------------------------
    def choose(
        self,
        slot: str,
        settings: BanditSettings,
        arms: Sequence[str],
        weights: Sequence[float],
        *,
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        segments: Sequence[str],
        rng: random.Random,
    ) -> BanditChoice:
        bucket = bucket_of(settings, segments)
        key = learner_key(slot, settings, bucket)
        x = None
        if settings.algorithm == "linear_thompson":
            x = feature_vector(settings.features, profile, context)
        base, warm = self.distribution(key, settings, arms, weights, x)
        probabilities = with_floor(base, settings.floor)
        index = _draw(probabilities, rng)
        dist = {arm: float(p) for arm, p in zip(arms, probabilities, strict=True)}
        trace: JsonDict = {
            "algorithm": settings.algorithm,
            "bucket": bucket,
            "key": list(key),
            "reward": settings.reward,
            "trial": settings.trial,
            "probabilities": dist,
            "warmup": warm,
        }
        if x is not None:
            trace["x"] = x.tolist()
            trace["ridge"] = settings.ridge
        return BanditChoice(
            variant=arms[index],
            propensity=float(probabilities[index]),
            probabilities=dist,
            bucket=bucket,
            algorithm=settings.algorithm,
            warmup=warm,
            trace=trace,
        )

    def distribution(
        self,
        key: tuple[str, ...],
        settings: BanditSettings,
        arms: Sequence[str],
        weights: Sequence[float],
        x: FloatArray | None = None,
    ) -> tuple[FloatArray, bool]:
        """Each arm's probability before the floor, and whether it is still warming up."""
        with self._lock:
            if x is not None:
                linear = self._state.linear.get(key)
                if linear is None or linear.dim != len(x):
                    linear = LinearArms(len(x), settings.ridge)
                trials = linear.trials(arms)
                if min(trials) < settings.warmup:
                    return _by_weight(weights), True
                return linear.probabilities(arms, x, settings.noise, settings.grid), False
            beta = self._state.beta.get(key) or BetaArms()
            trials = beta.trials(arms)
            if min(trials) < settings.warmup:
                return _by_weight(weights), True
            total = float(sum(trials))
            cached = self._cache.get(key)
            if (
                cached is not None
                and cached.arms == tuple(arms)
                and total - cached.trials <= max(1.0, REFRESH_SHARE * total)
            ):
                return cached.probabilities, False
            probabilities = beta.probabilities(
                arms, settings.prior_alpha, settings.prior_beta, settings.grid
            )
            self._cache[key] = _Cached(tuple(arms), probabilities, total)
            return probabilities, False

    def probabilities_for(
        self,
        slot: str,
        settings: BanditSettings,
        arms: Sequence[str],
        weights: Sequence[float],
        segments: Sequence[str],
        x: Sequence[float] | None = None,
    ) -> dict[str, float]:
        """The live bandit's distribution (floor included) for a person in ``segments`` (and at
        logged features ``x``): what off-policy evaluation of ``bandit`` reads."""
        key = learner_key(slot, settings, bucket_of(settings, segments))
        vector = None
        if settings.algorithm == "linear_thompson":
            if x is None:
                vector = np.zeros(len(settings.features) + 1)
                vector[0] = 1.0
            else:
                vector = np.asarray(x, dtype=np.float64)
        base, _ = self.distribution(key, settings, arms, weights, vector)
        probabilities = with_floor(base, settings.floor)
        return {arm: float(p) for arm, p in zip(arms, probabilities, strict=True)}

    # -- learning ------------------------------------------------------------------------------
    def on_decision(self, record: Mapping[str, Any]) -> None:
        """A decision committed: each bandit slot is a trial of its arm."""
        opened = self._open(record)
        if not opened:
            return
        op: JsonDict = {
            "op": "open",
            "d": str(record.get("decision_id")),
            "items": [{**_item_record(i), "counted": not i.on_impression} for i in opened],
        }
        with self._lock:
            self._apply_op(op)
        self._send([op])

    def on_effects(self, effects: Sequence[object]) -> None:
        """The projection committed effects: an outcome attributed to a recent bandit decision
        is its arm's success (once per decision and slot)."""
        from loopwise.projection.effects import OutcomeAttributed

        outcomes = [e for e in effects if isinstance(e, OutcomeAttributed)]
        if not outcomes:
            return
        ops: list[JsonDict] = []
        with self._lock:
            for effect in outcomes:
                for item in list(self._recent.get(effect.decision_id, ())):
                    success = counts_for(effect.outcome, item.slot, item.reward)
                    seen = success or counts_for(effect.outcome, item.slot, "impression")
                    record = _item_record(item)
                    if seen and not item.counted:  # trials counted on impressions
                        ops.append({"op": "trial", "d": effect.decision_id, "item": record})
                        self._apply_op(ops[-1])
                    if success and not item.rewarded:
                        ops.append({"op": "success", "d": effect.decision_id, "item": record})
                        self._apply_op(ops[-1])
                        self.learned += 1
        self._send(ops)

    def apply_remote(self, ops: Sequence[object]) -> None:
        """Another worker's ops (malformed ones are skipped: the resync heals what they lose)."""
        with self._lock:
            for op in ops:
                try:
                    if isinstance(op, Mapping):
                        self._apply_op(op)
                        self.remote_ops += 1
                except (KeyError, TypeError, ValueError):
                    log.warning("ignored a malformed bandit op from another worker")

    def _send(self, ops: list[JsonDict]) -> None:
        if ops and self.publish is not None:
            try:
                self.publish(ops)
            except Exception as exc:  # the others' resync catches up
                log.warning("publishing bandit ops failed: %s", type(exc).__name__)

    def _apply_op(self, op: Mapping[str, Any]) -> None:
        """Apply one op under the lock; idempotent per decision and slot."""
        if self._journal is not None:
            self._journal.append(dict(op))
        decision_id = str(op["d"])
        if op["op"] == "open":
            if decision_id in self._recent:
                return
            items = [_item_from(r) for r in op["items"]]
            for item, record in zip(items, op["items"], strict=True):
                if record.get("counted"):
                    self._trial(item)
                    item.counted = True
            self._remember(decision_id, items)
            return
        wanted = _item_from(op["item"])
        opened = self._recent.get(decision_id)
        if opened is None:
            opened = []
            self._remember(decision_id, opened)
        found = next((i for i in opened if i.slot == wanted.slot), None)
        item = found if found is not None else wanted
        if found is None:
            opened.append(item)
        if op["op"] == "trial" and not item.counted:
            self._trial(item)
            item.counted = True
        elif op["op"] == "success" and not item.rewarded:
            item.rewarded = True
            self._success(item)

    def _open(self, record: Mapping[str, Any]) -> list[_Open]:
        opened: list[_Open] = []
        if not record.get("profile_id"):
            return opened  # logged without analytics consent: its outcomes are never attributed
        for entry in record.get("slots") or ():
            trace = entry.get("bandit") if isinstance(entry, Mapping) else None
            if not isinstance(trace, Mapping) or not entry.get("variant"):
                continue
            x = trace.get("x")
            opened.append(
                _Open(
                    slot=str(entry["slot"]),
                    key=tuple(trace.get("key") or (entry["slot"], trace.get("bucket") or ALL)),
                    arm=str(entry["variant"]),
                    reward=str(trace.get("reward") or "click"),
                    x=np.asarray(x, dtype=np.float64) if isinstance(x, list) else None,
                    on_impression=trace.get("trial") == "impression",
                )
            )
        return opened

    def _trial(self, item: _Open) -> None:
        if item.x is not None:
            linear = self._state.linear.get(item.key)
            if linear is None or linear.dim != len(item.x):
                linear = self._state.linear[item.key] = LinearArms(len(item.x), 1.0)
            linear.trial(item.arm, item.x)
        else:
            self._state.beta.setdefault(item.key, BetaArms()).trial(item.arm)

    def _success(self, item: _Open) -> None:
        if item.x is not None:
            linear = self._state.linear.get(item.key)
            if linear is not None:
                linear.success(item.arm, item.x)
        else:
            self._state.beta.setdefault(item.key, BetaArms()).success(item.arm)
        self._cache.pop(item.key, None)

    def _remember(self, decision_id: str, opened: list[_Open]) -> None:
        self._recent[decision_id] = opened
        while len(self._recent) > self._recent_limit:
            self._recent.popitem(last=False)

    # -- durability ----------------------------------------------------------------------------
    def resync(self) -> int:
        """Re-derive the state from the decision log (no checkpoint write): what heals the ops
        another worker sent that never arrived. The ops applied meanwhile are replayed. It
        starts from the settled part of the previous fold, kept in memory, so each round reads
        the decisions of the attribution window only (their outcomes can still arrive)."""
        return self.rebuild(checkpoint=False, from_memory=True)

    def rebuild(self, *, checkpoint: bool = True, from_memory: bool = False) -> int:
        """Load the checkpoint (or, with ``from_memory``, the settled part of the last fold),
        fold the decisions logged after it, and checkpoint again the part whose outcomes are
        settled. Returns how many bandit decisions were folded."""
        with self._lock:
            self._journal = []
            base = self._base if from_memory else None
        try:
            return self._rebuild(checkpoint, base)
        finally:
            with self._lock:
                self._journal = None  # a failed read leaves the live state as it was

    def _rebuild(self, checkpoint: bool, base: JsonDict | None) -> int:
        stored = base if base is not None else self._storage.config.get(CHECKPOINT_KEY)
        state = _State.from_record(stored.get("state") or {}) if stored else _State()
        since = parse_timestamp(stored.get("as_of")) if stored else None
        # decisions made at exactly ``as_of`` that the checkpoint already holds
        skip = set(stored.get("folded") or ()) if stored else set()
        now = self._clock()
        settle = now - self._window()
        settled: JsonDict | None = None
        folded = 0
        recent: OrderedDict[str, list[_Open]] = OrderedDict()
        # the newest stamp read and the decisions folded at it (the checkpoint's own included)
        last: str | None = isoformat(since) if since is not None else None
        at_last: list[str] = list(skip)
        for decision in self._storage.decisions.iter(since):
            created = parse_timestamp(decision.get("created_at"))
            decision_id = str(decision.get("decision_id"))
            if created is None or decision_id in skip:
                continue
            stamp = isoformat(created)
            if stamp != last:
                last, at_last = stamp, []
            at_last.append(decision_id)
            opened = self._open(decision)
            # the next start reads from the first bandit decision whose outcomes may still
            # come: the decisions of other slots before it (most of the log) are never read again
            if settled is None and opened and created >= settle:
                settled = {"as_of": stamp, "folded": [], "state": state.to_record()}
            for item in opened:
                entry: Mapping[str, Any] = next(
                    (s for s in decision.get("slots") or () if s.get("slot") == item.slot), {}
                )
                success = rewarded(decision, item.slot, item.reward)
                seen = success or rewarded(decision, item.slot, "impression")
                if seen or not item.on_impression:
                    state.fold(item.slot, entry.get("bandit") or {}, item.arm, success)
                    item.counted = True
                item.rewarded = success
                folded += 1
            if opened and created >= settle:
                recent[decision_id] = opened
        if settled is None and last is not None:
            # everything folded is settled: the next start begins at the newest decision
            settled = {"as_of": last, "folded": at_last, "state": state.to_record()}
        with self._lock:
            journal, self._journal = self._journal or [], None
            self._state = state
            self._cache.clear()
            self._recent = recent
            while len(self._recent) > self._recent_limit:
                self._recent.popitem(last=False)
            # ops applied while the log was read: those it already held are no-ops (the flags)
            for op in journal:
                self._apply_op(op)
            if settled is not None:
                self._base = settled
            elif stored and self._base is None:
                self._base = dict(stored)
        moved = settled is not None and (stored is None or stored.get("as_of") != settled["as_of"])
        if checkpoint and settled is not None and (folded or moved):
            try:
                self._storage.write(lambda uow: uow.config.put(CHECKPOINT_KEY, settled))
            except Exception as exc:  # the next start folds a longer tail
                log.warning("bandit checkpoint not saved: %s", type(exc).__name__)
        return folded

    def reset(self) -> None:
        """Forget everything learned: a fresh start from the priors. The checkpoint then says
        "nothing, as of now", so later starts ignore the decisions logged before the reset."""
        fresh = {"as_of": isoformat(self._clock()), "folded": [], "state": {}}
        self._storage.write(lambda uow: uow.config.put(CHECKPOINT_KEY, fresh))
        with self._lock:
            self._base = fresh
            self._state = _State()
            self._cache.clear()
            self._recent.clear()

    # -- reports -------------------------------------------------------------------------------
    def snapshot(self) -> list[JsonDict]:
        """Per learner: its slot, bucket and each arm's decisions, successes and mean reward."""
        out: list[JsonDict] = []
        with self._lock:
            for key, beta in sorted(self._state.beta.items()):
                arms = {
                    arm: {
                        "decisions": int(c[0]),
                        "successes": int(c[1]),
                        "rate": c[1] / c[0] if c[0] else None,
                    }
                    for arm, c in sorted(beta.counts.items())
                }
                out.append(
                    {"slot": key[0], "bucket": key[1], "algorithm": "thompson", "arms": arms}
                )
            for key, linear in sorted(self._state.linear.items()):
                arms = {
                    arm: {
                        "decisions": int(linear.n.get(arm, 0)),
                        "successes": round(float(linear.b[arm][0])),
                        "rate": float(linear.b[arm][0]) / linear.n[arm]
                        if linear.n.get(arm)
                        else None,
                    }
                    for arm in sorted(linear.a)
                }
                out.append(
                    {
                        "slot": key[0],
                        "bucket": key[1],
                        "algorithm": "linear_thompson",
                        "features": list(key[3:]),
                        "arms": arms,
                    }
                )
        return out


def _item_record(item: _Open) -> JsonDict:
    return {
        "slot": item.slot,
        "key": list(item.key),
        "arm": item.arm,
        "reward": item.reward,
        "x": item.x.tolist() if item.x is not None else None,
        "imp": item.on_impression,
    }


def _item_from(record: Mapping[str, Any]) -> _Open:
    x = record.get("x")
    return _Open(
        slot=str(record["slot"]),
        key=tuple(str(k) for k in record["key"]),
        arm=str(record["arm"]),
        reward=str(record.get("reward") or "click"),
        x=np.asarray(x, dtype=np.float64) if isinstance(x, list) else None,
        on_impression=bool(record.get("imp")),
    )


def _by_weight(weights: Sequence[float]) -> FloatArray:
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    return w / total if total > 0 else np.full(len(w), 1.0 / max(len(w), 1))


def _draw(probabilities: FloatArray, rng: random.Random) -> int:
    u = rng.random()
    cumulative = 0.0
    for index, p in enumerate(probabilities):
        cumulative += float(p)
        if u < cumulative:
            return index
    return len(probabilities) - 1
