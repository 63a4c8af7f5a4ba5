"""The profile: the state the reducer keeps per user, and the ``profile.*`` attributes derived
from it at a given time.

The state is small and exact (counters, per-day counts, affinities with their as-of time); every
time-dependent attribute (decay, windows, abandonment, lifecycle, engagement) is computed at read
time from ``now``, so a stored profile never goes stale. Times are kept at millisecond precision,
the precision of :func:`loopwise.clock.isoformat`, so a record round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from sys import intern
from typing import Any

from loopwise.clock import isoformat, parse_timestamp
from loopwise.errors import ValidationFailed
from loopwise.profiles.settings import ProfileSettings

RECORD_VERSION = 2  # 2: times as epoch milliseconds (1: ISO text; still read)
DAILY_WINDOW_DAYS = 30  # per-day event counts kept (events_30d is the longest window)
TOP_CATEGORIES = 3
SECONDS_PER_DAY = 86_400.0
AFFINITY_TABLES: tuple[str, ...] = ("items", "categories", "tags")

# Engagement: each component is in [0, 1], then weighted (ProfileSettings.engagement_weights).
RECENCY_HALF_LIFE_DAYS = 7.0  # seen today 1.0, a week ago 0.5
FREQUENCY_HALF_SESSIONS = 3.0  # 3 sessions 0.5, 6 sessions 0.75
DEPTH_HALF_VIEWS = 4.0  # 4 views per session 0.5
CONVERSION_HALF_ORDERS = 1.0  # 1 order 0.5, 2 orders 0.75


def to_ms(dt: datetime) -> datetime:
    """Aware UTC, truncated to milliseconds (naive times are taken as UTC)."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def day_number(dt: datetime) -> int:
    """UTC calendar day as a proleptic ordinal: the key of the per-day counts."""
    return dt.astimezone(UTC).date().toordinal()


def days_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / SECONDS_PER_DAY


def decay_factor(from_time: datetime, to_time: datetime, half_life_days: float) -> float:
    """How much a score at ``from_time`` is worth at ``to_time`` (never grows: clamped at 1)."""
    days = days_between(from_time, to_time)
    return 0.5 ** (days / half_life_days) if days > 0 else 1.0


def _saturate(value: float, half: float) -> float:
    """0 at 0, 0.5 at ``half``, approaching 1."""
    return 1.0 - 0.5 ** (max(value, 0.0) / half)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_TABLES: dict[str, Any] = {}  # a missing record entry read as empty (never changed)


def _ms(dt: datetime) -> int:
    """A stored time: milliseconds since the epoch (record version 2; cheaper to write and read
    than ISO text, and exact at the millisecond precision profiles keep)."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _opt_ms(dt: datetime | None) -> int | None:
    return _ms(dt) if dt is not None else None


def _time(value: Any, path: str) -> datetime:
    if type(value) is int:  # version 2 records
        return _EPOCH + timedelta(0, 0, 0, value)  # milliseconds (positional: faster)
    parsed = parse_timestamp(value)  # version 1 records kept ISO text
    if parsed is None:
        raise ValidationFailed(
            f"stored profile has an unreadable time {value!r}; rebuild profiles with "
            "`loopwise replay`",
            field=path,
        )
    return parsed


def _opt_time(value: Any, path: str) -> datetime | None:
    return None if value is None else _time(value, path)


CONTEXT_FIELDS: tuple[str, ...] = (
    "device_type",
    "device_os",
    "device_browser",
    "country",
    "region",
    "city",
    "locale",
    "timezone",
    "traffic_source",
)
_SCALAR_FIELDS: tuple[str, ...] = (
    "id",
    "first_seen",
    "last_seen",
    "user_id",
    "events",
    "sessions",
    "session_started_at",
    "page_views",
    "item_views",
    "affinity_as_of",
    "purchases",
    "revenue",
    "cart_value",
    "cart_changed_at",
    "last_purchase_at",
    *CONTEXT_FIELDS,
)


#: The record's costly tables (most of a decode's time) by the attribute groups reading them:
#: a profile decoded for some attributes only (a segment audience's membership test) leaves
#: the other tables out of the decode.
TABLE_GROUPS: dict[str, frozenset[str]] = {
    "daily": frozenset({"events_7d", "events_30d"}),
    "recent": frozenset({"items"}),
    "affinity": frozenset({"affinity"}),
}
RECORD_TABLES = frozenset(TABLE_GROUPS)


@dataclass(slots=True)
class Profile:
    """One user's state. Mutated only by :mod:`loopwise.profiles.reducer` on a private copy."""

    id: str
    first_seen: datetime
    last_seen: datetime
    user_id: str | None = None
    anonymous_ids: list[str] = field(default_factory=list)
    events: int = 0
    sessions: int = 0
    session_started_at: datetime | None = None
    page_views: int = 0
    item_views: int = 0
    # event name -> {day_number: count}, only the last DAILY_WINDOW_DAYS days before last_seen
    daily_counts: dict[str, dict[int, int]] = field(default_factory=dict)
    recently_viewed: list[str] = field(default_factory=list)  # newest first, unique
    recently_viewed_at: list[datetime] = field(default_factory=list)  # parallel to the above
    # scores valued at affinity_as_of; worth score * 0.5 ** (days since as_of / half-life) later
    affinity_items: dict[str, float] = field(default_factory=dict)
    affinity_categories: dict[str, float] = field(default_factory=dict)
    affinity_tags: dict[str, float] = field(default_factory=dict)
    affinity_as_of: datetime | None = None
    purchases: int = 0
    revenue: float = 0.0
    purchased_items: list[str] = field(default_factory=list)  # newest first, unique
    cart_items: list[str] = field(default_factory=list)  # in the order added
    cart_value: float = 0.0
    cart_changed_at: datetime | None = None
    last_purchase_at: datetime | None = None
    device_type: str | None = None
    device_os: str | None = None
    device_browser: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    locale: str | None = None
    timezone: str | None = None
    traffic_source: str | None = None  # of the latest session
    traits: dict[str, Any] = field(default_factory=dict)
    # page views per page name and per path: {name: {day_number: count}}, like daily_counts
    page_daily: dict[str, dict[int, int]] = field(default_factory=dict)
    path_daily: dict[str, dict[int, int]] = field(default_factory=dict)
    session_campaign: dict[str, str] = field(default_factory=dict)  # UTM of the latest session
    campaigns: list[str] = field(default_factory=list)  # campaign names, newest first, unique
    # derived, never stored: (score model, settings, {score: probability}) of this state,
    # remembered by loopwise.scores.serving (a published profile's state never changes)
    scores_memo: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def new(cls, profile_id: str, at: datetime) -> Profile:
        at = to_ms(at)
        return cls(id=profile_id, first_seen=at, last_seen=at)

    def affinity(self, table: str) -> dict[str, float]:
        """The live dict of one affinity table (``items``, ``categories`` or ``tags``)."""
        if table == "items":
            return self.affinity_items
        if table == "categories":
            return self.affinity_categories
        if table == "tags":
            return self.affinity_tags
        raise KeyError(table)

    def copy(self) -> Profile:
        """A copy whose containers can be changed without touching this profile. Trait values are
        shared: the reducer replaces them, never edits them in place."""
        new = _new_profile(Profile)
        _copy_scalars(self, new)
        new.anonymous_ids = list(self.anonymous_ids)
        new.daily_counts = {name: dict(days) for name, days in self.daily_counts.items()}
        new.recently_viewed = list(self.recently_viewed)
        new.recently_viewed_at = list(self.recently_viewed_at)
        new.affinity_items = dict(self.affinity_items)
        new.affinity_categories = dict(self.affinity_categories)
        new.affinity_tags = dict(self.affinity_tags)
        new.purchased_items = list(self.purchased_items)
        new.cart_items = list(self.cart_items)
        new.traits = dict(self.traits)
        new.page_daily = {name: dict(days) for name, days in self.page_daily.items()}
        new.path_daily = {name: dict(days) for name, days in self.path_daily.items()}
        new.session_campaign = dict(self.session_campaign)
        new.campaigns = list(self.campaigns)
        for name, fresh in _FRESH_FIELDS:  # derived fields (memos) start over, as in __init__
            setattr(new, name, fresh())
        return new

    # -- storage -----------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """JSON-safe dict. Empty and default values are left out to keep stored profiles small."""
        record: dict[str, Any] = {
            "v": RECORD_VERSION,
            "id": self.id,
            "first_seen": _ms(self.first_seen),
            "last_seen": _ms(self.last_seen),
        }
        optional: dict[str, Any] = {
            "user_id": self.user_id,
            "anonymous_ids": list(self.anonymous_ids),
            "events": self.events,
            "sessions": self.sessions,
            "session_started_at": _opt_ms(self.session_started_at),
            "page_views": self.page_views,
            "item_views": self.item_views,
            "daily": _days_record(self.daily_counts),
            "recent": [
                [item, _ms(at)]
                for item, at in zip(self.recently_viewed, self.recently_viewed_at, strict=True)
            ],
            "affinity": {
                table: dict(self.affinity(table))
                for table in AFFINITY_TABLES
                if self.affinity(table)
            },
            "affinity_as_of": _opt_ms(self.affinity_as_of),
            "purchases": self.purchases,
            "revenue": self.revenue,
            "purchased_items": list(self.purchased_items),
            "cart_items": list(self.cart_items),
            "cart_value": self.cart_value,
            "cart_changed_at": _opt_ms(self.cart_changed_at),
            "last_purchase_at": _opt_ms(self.last_purchase_at),
            "traits": dict(self.traits),
            "pages": _days_record(self.page_daily),
            "paths": _days_record(self.path_daily),
            "session_campaign": dict(self.session_campaign),
            "campaigns": list(self.campaigns),
        }
        optional.update({name: getattr(self, name) for name in CONTEXT_FIELDS})
        record.update({k: v for k, v in optional.items() if v is not None and v != 0 and v != []})
        return {k: v for k, v in record.items() if v != {}}

    @classmethod
    def from_record(cls, record: dict[str, Any], tables: frozenset[str] = RECORD_TABLES) -> Profile:
        """Inverse of :meth:`to_record`; raises ``ValidationFailed`` on a damaged record.
        ``tables`` (of :data:`RECORD_TABLES`): the costly tables to read, the others left
        empty (see :func:`record_tables`; :meth:`read_tables` reads them later)."""
        try:
            profile = cls._from_record(record)
            profile._read_tables(record, tables)
            return profile
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _damaged(record, exc) from exc

    def read_tables(self, record: dict[str, Any], tables: frozenset[str]) -> None:
        """Read the ``tables`` a :meth:`from_record` of ``record`` left out (this profile's
        own record: nothing else is read)."""
        try:
            self._read_tables(record, tables)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _damaged(record, exc) from exc

    def _read_tables(self, r: dict[str, Any], tables: frozenset[str]) -> None:
        get = r.get
        if "daily" in tables:
            self.daily_counts = _days_from_record(get("daily"))
        if "recent" in tables:
            recent = get("recent", ())
            self.recently_viewed = [intern(str(item)) for item, _ in recent]
            self.recently_viewed_at = [
                _EPOCH + timedelta(0, 0, 0, at) if type(at) is int else _time(at, "recent")
                for _, at in recent
            ]
        if "affinity" in tables:
            affinity = get("affinity", _NO_TABLES)
            self.affinity_items = _scores(affinity.get("items"))
            self.affinity_categories = _scores(affinity.get("categories"))
            self.affinity_tags = _scores(affinity.get("tags"))

    @classmethod
    def _from_record(cls, r: dict[str, Any]) -> Profile:
        """Fields set one by one on a bare instance (as :meth:`copy` does): a campaign decodes
        a stored profile per person, and the dataclass ``__init__`` with its 45 keyword
        arguments and default factories costs more than most of the fields' conversions. The
        same values, checks and errors as building it with ``cls(...)``. The costly tables
        start empty (:meth:`_read_tables` reads them)."""
        get = r.get
        new = _new_profile(cls)
        new.id = str(r["id"])
        new.first_seen = _time(r["first_seen"], "first_seen")
        new.last_seen = _time(r["last_seen"], "last_seen")
        new.user_id = get("user_id")
        new.anonymous_ids = [str(a) for a in get("anonymous_ids", ())]
        new.events = int(get("events", 0))
        new.sessions = int(get("sessions", 0))
        new.session_started_at = _opt_time(get("session_started_at"), "session_started_at")
        new.page_views = int(get("page_views", 0))
        new.item_views = int(get("item_views", 0))
        new.daily_counts = {}  # the costly tables: _read_tables
        new.recently_viewed, new.recently_viewed_at = [], []
        new.affinity_items, new.affinity_categories, new.affinity_tags = {}, {}, {}
        new.affinity_as_of = _opt_time(get("affinity_as_of"), "affinity_as_of")
        new.purchases = int(get("purchases", 0))
        new.revenue = float(get("revenue", 0.0))
        new.purchased_items = [intern(str(i)) for i in get("purchased_items", ())]
        new.cart_items = [intern(str(i)) for i in get("cart_items", ())]
        new.cart_value = float(get("cart_value", 0.0))
        new.cart_changed_at = _opt_time(get("cart_changed_at"), "cart_changed_at")
        new.last_purchase_at = _opt_time(get("last_purchase_at"), "last_purchase_at")
        for name in CONTEXT_FIELDS:
            setattr(new, name, _interned(get(name)))
        new.traits = dict(get("traits", _NO_TABLES))
        new.page_daily = _days_from_record(get("pages"))
        new.path_daily = _days_from_record(get("paths"))
        new.session_campaign = {
            str(k): str(v) for k, v in get("session_campaign", _NO_TABLES).items()
        }
        new.campaigns = [intern(str(c)) for c in get("campaigns", ())]
        for name, fresh in _FRESH_FIELDS:  # derived fields (memos) start as in __init__
            setattr(new, name, fresh())
        return new

    # -- attributes --------------------------------------------------------------------------
    def decayed_affinity(
        self, table: str, now: datetime, half_life_days: float
    ) -> dict[str, float]:
        """Scores decayed to ``now``, rounded to 6 decimals, highest first (ties by key)."""
        scores = self.affinity(table)
        if not scores or self.affinity_as_of is None:
            return {}
        factor = decay_factor(self.affinity_as_of, now, half_life_days) * 1e6
        # two C-level sorts of the keys (by key, then stably by score) instead of a Python key
        # function; scores are never negative, so adding 0.5 and truncating rounds to 6 decimals
        ranked = sorted(scores)
        ranked.sort(key=scores.__getitem__, reverse=True)
        return {key: int(scores[key] * factor + 0.5) / 1e6 for key in ranked}

    def window_counts(self, now: datetime, days: int) -> dict[str, int]:
        """Events per name on the ``days`` UTC days ending with ``now``'s day (later days too)."""
        return window_totals(self.daily_counts, now, days)

    def cart_abandoned(self, now: datetime, settings: ProfileSettings) -> bool:
        if not self.cart_items or self.cart_changed_at is None:
            return False
        if self.last_purchase_at is not None and self.last_purchase_at >= self.cart_changed_at:
            return False
        return (now - self.cart_changed_at).total_seconds() >= (
            settings.cart_abandon_after_minutes * 60
        )

    def lifecycle(self, now: datetime, settings: ProfileSettings) -> str:
        """``churned`` (unseen for churn_after_days and had bought or come back), else
        ``repeat_customer`` (2+ orders), ``customer`` (1), ``prospect``."""
        unseen = days_between(self.last_seen, now) >= settings.churn_after_days
        if self.events and unseen and (self.purchases > 0 or self.sessions >= 2):
            return "churned"
        if self.purchases >= 2:
            return "repeat_customer"
        if self.purchases == 1:
            return "customer"
        return "prospect"

    def engagement(self, now: datetime, settings: ProfileSettings) -> float:
        """0-100: ``100 * sum(w_i * c_i) / sum(w_i)`` over four components in [0, 1]:

        - recency ``0.5 ** (days since last seen / 7)``;
        - frequency ``1 - 0.5 ** (sessions / 3)``;
        - depth ``1 - 0.5 ** ((page views + item views) / sessions / 4)``;
        - conversion ``1 - 0.5 ** orders``.

        A profile without events scores 0. Rounded to one decimal.
        """
        if not self.events:
            return 0.0
        w = settings.engagement_weights
        days = max(days_between(self.last_seen, now), 0.0)
        recency = 0.5 ** (days / RECENCY_HALF_LIFE_DAYS)
        frequency = _saturate(self.sessions, FREQUENCY_HALF_SESSIONS)
        views = (self.page_views + self.item_views) / max(self.sessions, 1)
        depth = _saturate(views, DEPTH_HALF_VIEWS)
        conversion = _saturate(self.purchases, CONVERSION_HALF_ORDERS)
        score = (
            w.recency * recency
            + w.frequency * frequency
            + w.depth * depth
            + w.conversion * conversion
        ) / w.total
        return round(min(max(100.0 * score, 0.0), 100.0), 1)

    def visit_views(self, now: datetime, gap: timedelta) -> tuple[list[str], list[str]]:
        """``(this visit, last visit)``: the recently viewed items of the visit in progress at
        ``now`` (none when the newest view is more than ``gap`` before it) and of the visit
        before that; a visit ends where two views are more than ``gap`` apart. An item viewed
        in both counts in the later one (``recently_viewed`` keeps each item once)."""
        visits: tuple[list[str], list[str]] = ([], [])
        edge, visit = now, 0
        for item, at in zip(self.recently_viewed, self.recently_viewed_at, strict=True):
            if edge - at > gap:
                visit += 1
                if visit > 1:
                    break
            visits[visit].append(item)
            edge = at
        return visits

    def attributes(
        self,
        now: datetime,
        settings: ProfileSettings,
        affinity_tables: tuple[str, ...] = AFFINITY_TABLES,
        keys: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        """The ``profile.*`` namespace (docs/internals.md) as seen at ``now``. Affinity tables
        left out of ``affinity_tables`` read as empty (segment evaluation asks only for the
        tables some condition reads; the item table is the largest). ``keys`` (see
        :func:`attribute_groups`) limits the result to the groups of attributes holding them:
        segment evaluation computes only what its conditions read."""
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
        groups = ALL_GROUPS if keys is None else attribute_groups(keys)
        values: dict[str, Any] = {}
        if "identity" in groups:
            values["id"] = self.id
            values["user_id"] = self.user_id
            values["anonymous_ids"] = list(self.anonymous_ids)
            values["known"] = self.user_id is not None
        if "seen" in groups:
            values["first_seen"] = isoformat(self.first_seen)
            values["last_seen"] = isoformat(self.last_seen)
            values["days_since_first_seen"] = _days_since(self.first_seen, now)
            values["days_since_last_seen"] = _days_since(self.last_seen, now)
        if "counters" in groups:
            values["sessions"] = self.sessions
            values["page_views"] = self.page_views
            values["events"] = self.events
        today = day_number(now)  # the windows' last day
        if "events_7d" in groups:
            values["events_7d"] = _window(self.daily_counts, today - 6)
        if "events_30d" in groups:
            values["events_30d"] = _window(self.daily_counts, today - DAILY_WINDOW_DAYS + 1)
        if "counters" in groups:
            values["is_returning"] = self.sessions > 1
        if "items" in groups:
            values["recently_viewed"] = list(self.recently_viewed)
            values["item_views"] = self.item_views
            gap = timedelta(minutes=settings.session_timeout_minutes)
            values["viewed_this_visit"], values["viewed_last_visit"] = self.visit_views(now, gap)
        if "affinity" in groups:
            half_life = settings.affinity_half_life_days
            affinity = {
                t: self.decayed_affinity(t, now, half_life) if t in affinity_tables else {}
                for t in AFFINITY_TABLES
            }
            top = list(affinity["categories"])[:TOP_CATEGORIES]
            values["affinity"] = affinity
            values["top_category"] = top[0] if top else None
            values["top_categories"] = top
        if "orders" in groups:
            values["purchases"] = self.purchases
            values["revenue"] = round(self.revenue, 6)
            values["average_order_value"] = (
                round(self.revenue / self.purchases, 6) if self.purchases else 0.0
            )
            values["purchased_items"] = list(self.purchased_items)
        if "cart" in groups:
            values["cart"] = {
                "items": list(self.cart_items),
                "value": round(self.cart_value, 6),
                "abandoned": self.cart_abandoned(now, settings),
            }
        if "context" in groups:
            values["device"] = {
                "type": self.device_type,
                "os": self.device_os,
                "browser": self.device_browser,
            }
            values["country"] = self.country
            values["region"] = self.region
            values["locale"] = self.locale
            values["timezone"] = self.timezone
            values["traffic_source"] = self.traffic_source
            values["city"] = self.city
        if "pages" in groups:
            week, month = today - 6, today - DAILY_WINDOW_DAYS + 1
            values["pages_7d"] = _window(self.page_daily, week)
            values["pages_30d"] = _window(self.page_daily, month)
            values["page_paths_7d"] = _window(self.path_daily, week)
            values["page_paths_30d"] = _window(self.path_daily, month)
        if "campaign" in groups:
            values["campaign"] = dict(self.session_campaign)
            values["campaigns"] = list(self.campaigns)
        if "traits" in groups:
            values["traits"] = dict(self.traits)
        if "lifecycle" in groups:
            values["lifecycle"] = self.lifecycle(now, settings)
        if "engagement" in groups:
            values["engagement"] = self.engagement(now, settings)
        return values

    def context_attributes(self) -> dict[str, Any]:
        """The last context in the shape of ``context.*`` (known values only), for evaluating
        context conditions outside a request."""
        device = {
            "type": self.device_type,
            "os": self.device_os,
            "browser": self.device_browser,
        }
        values: dict[str, Any] = {
            "device": {k: v for k, v in device.items() if v is not None},
            "country": self.country,
            "region": self.region,
            "city": self.city,
            "locale": self.locale,
            "timezone": self.timezone,
            "traffic_source": self.traffic_source,
        }
        return {k: v for k, v in values.items() if v is not None and v != {}}


def _scalar_copier() -> Callable[[Profile, Profile], None]:
    """Straight-line code copying the scalar fields (the reducer copies a profile per event;
    a generated function is several times faster than ``dataclasses.replace`` or a loop)."""
    lines = ["def copy_scalars(source, target):"]
    lines += [f"    target.{name} = source.{name}" for name in _SCALAR_FIELDS]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)
    copier: Callable[[Profile, Profile], None] = namespace["copy_scalars"]
    return copier


_copy_scalars = _scalar_copier()
_new_profile = object.__new__
_COPIED_CONTAINERS = frozenset(
    {
        "anonymous_ids", "daily_counts", "recently_viewed", "recently_viewed_at",
        "affinity_items", "affinity_categories", "affinity_tags", "purchased_items",
        "cart_items", "traits", "page_daily", "path_daily", "session_campaign", "campaigns",
    }
)  # fmt: skip


def _fresh(spec: Any) -> Callable[[], Any]:
    if spec.default_factory is not MISSING:
        factory: Callable[[], Any] = spec.default_factory
        return factory
    default = spec.default
    return lambda: default


# every other field (a memo of derived values) gets its default in a copy
_FRESH_FIELDS: tuple[tuple[str, Callable[[], Any]], ...] = tuple(
    (spec.name, _fresh(spec))
    for spec in fields(Profile)
    if spec.name not in _SCALAR_FIELDS and spec.name not in _COPIED_CONTAINERS
)


def _damaged(record: Any, exc: Exception) -> ValidationFailed:
    return ValidationFailed(
        f"stored profile record is damaged ({exc!r}); rebuild profiles with `loopwise replay`",
        field=f"profiles[{record.get('id')!r}]" if isinstance(record, dict) else None,
    )


# every ``profile.*`` attribute by the group :meth:`Profile.attributes` computes it in
ATTRIBUTE_GROUP: dict[str, str] = {
    **dict.fromkeys(("id", "user_id", "anonymous_ids", "known"), "identity"),
    **dict.fromkeys(
        ("first_seen", "last_seen", "days_since_first_seen", "days_since_last_seen"), "seen"
    ),
    **dict.fromkeys(("sessions", "page_views", "events", "is_returning"), "counters"),
    "events_7d": "events_7d",
    "events_30d": "events_30d",
    **dict.fromkeys(
        ("recently_viewed", "item_views", "viewed_this_visit", "viewed_last_visit"), "items"
    ),
    **dict.fromkeys(("affinity", "top_category", "top_categories"), "affinity"),
    **dict.fromkeys(("purchases", "revenue", "average_order_value", "purchased_items"), "orders"),
    "cart": "cart",
    **dict.fromkeys(
        ("device", "country", "region", "locale", "timezone", "traffic_source", "city"),
        "context",
    ),
    **dict.fromkeys(("pages_7d", "pages_30d", "page_paths_7d", "page_paths_30d"), "pages"),
    **dict.fromkeys(("campaign", "campaigns"), "campaign"),
    "traits": "traits",
    "lifecycle": "lifecycle",
    "engagement": "engagement",
}
ALL_GROUPS = frozenset(ATTRIBUTE_GROUP.values())


def record_tables(keys: frozenset[str] | None) -> frozenset[str]:
    """The record tables the ``profile.*`` attributes ``keys`` are computed from (every table
    for None: the whole namespace)."""
    if keys is None:
        return RECORD_TABLES
    groups = attribute_groups(keys)
    return frozenset(table for table, readers in TABLE_GROUPS.items() if readers & groups)


@lru_cache(maxsize=64)
def attribute_groups(keys: frozenset[str]) -> frozenset[str]:
    """The groups holding ``keys`` (``profile.*`` names; an unknown name, such as one a
    clustering adds, needs none)."""
    return frozenset(ATTRIBUTE_GROUP[k] for k in keys if k in ATTRIBUTE_GROUP)


def window_totals(per_name: dict[str, dict[int, int]], now: datetime, days: int) -> dict[str, int]:
    """Counts per name on the ``days`` UTC days ending with ``now``'s day (later days too)."""
    return _window(per_name, day_number(now) - days + 1)


def _window(per_name: dict[str, dict[int, int]], first_day: int) -> dict[str, int]:
    """Counts per name on ``first_day`` and later."""
    counts: dict[str, int] = {}
    for name, per_day in per_name.items():
        total = sum(count for day, count in per_day.items() if day >= first_day)
        if total:
            counts[name] = total
    return counts


def _days_record(per_name: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    return {
        name: {str(day): count for day, count in days.items()} for name, days in per_name.items()
    }


def _days_from_record(value: Any) -> dict[str, dict[int, int]]:
    if not value:
        return {}
    return {  # JSON object keys are strings: interned as they are
        intern(name): {int(day): int(count) for day, count in days.items()}
        for name, days in value.items()
    }


def _scores(values: Any) -> dict[str, float]:
    if not values:
        return {}
    return {intern(k): float(v) for k, v in values.items()}  # keys: JSON's, strings


def _interned(value: Any) -> Any:
    """Item ids, labels, event names and context values repeat across profiles: a loaded profile
    shares one copy of each (``sys.intern``) instead of holding its own (~1.4 KB per profile)."""
    return intern(value) if type(value) is str else value


def _days_since(then: datetime, now: datetime) -> float:
    return round(max(days_between(then, now), 0.0), 6)
