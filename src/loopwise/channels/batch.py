"""Campaign decisions: one slot decided for a whole audience (the content of an email).

``POST /v1/decide/batch`` and ``loopwise decide-batch`` decide a slot for everyone in a segment or
in a list of users, the way ``/v1/decide`` decides it for one page view (profile, segments, rules,
strategies, experiment arms, the holdout, consent to personalization), with two more gates:

- **consent**: only people who consented to ``channels.batch.consent`` (``marketing``) are
  decided; the others get a ``skipped`` row (``no_consent``), so nobody is emailed by mistake;
- **frequency cap**: at most ``channels.batch.frequency_cap`` campaign decisions per person per
  slot in any 24 hours (``frequency_cap``). The cap counts the campaign decisions in the decision
  log (so it holds across runs, restarts and processes that ran before this one) plus those of
  this run; campaigns on one slot run one at a time in a process.

Every decision is logged (a chunk of them per write job, durable before its rows are given out),
under the person and marked ``channel: campaign`` with the campaign's name, so opens and clicks
sent back with its ``decision_id`` (``Email Opened``, ``Email Link Clicked``, or any impression
and click event) attribute to it, and a purchase within the attribution window does too.

Segment audiences: every stored profile of a known person (a user id: someone to send to) whose
profile, evaluated now, is in the segment; anonymous profiles are left out and counted.
User audiences: user ids (or ``{user_id, anonymous_id}``); a person Loopwise never saw is decided
too when their consent says so (``PUT /v1/consent/{user_id}``), from popular content.
"""

from __future__ import annotations

import csv
import gc
import io
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopwise.catalog.items import Item
from loopwise.clock import Clock, parse_timestamp
from loopwise.decide.request import DecideRequest, DecideUser, SlotRequest
from loopwise.decide.service import DecideService, Prepared
from loopwise.decide.slots import SLUG_PATTERN
from loopwise.errors import ValidationFailed
from loopwise.events.limits import MAX_ID_CHARS
from loopwise.profiles import codec
from loopwise.profiles.context import request_context_attributes
from loopwise.profiles.identity import profile_id_for
from loopwise.profiles.model import (
    AFFINITY_TABLES,
    ATTRIBUTE_GROUP,
    RECORD_TABLES,
    Profile,
    record_tables,
)
from loopwise.segments.conditions import compile_condition, referenced_paths
from loopwise.storage.records import Exposure, JsonDict, ProfileRecord
from loopwise.storage.stores import Storage
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace

#: People decided per write job (their rows are given out once it committed).
CHUNK = 500
#: People one HTTP request may list (larger audiences: a segment, several requests, the CLI).
MAX_USERS = 10_000
CAP_WINDOW = timedelta(hours=24)
CHANNEL = "campaign"

Status = Literal["decided", "skipped"]
SkipReason = Literal["no_consent", "frequency_cap"]


class BatchUser(BaseModel):
    """One person of a user audience."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)
    anonymous_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_CHARS)

    @model_validator(mode="after")
    def _some_id(self) -> Self:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("give user_id or anonymous_id (or both)")
        return self


class DecideBatchRequest(BaseModel):
    """Body of ``POST /v1/decide/batch``: one slot, and a segment or a list of users."""

    model_config = ConfigDict(extra="forbid")

    slot: str = Field(min_length=1, max_length=100, description="Slot key from the workspace.")
    segment: str | None = Field(
        default=None, min_length=1, max_length=100, description="Everyone (known) in it now."
    )
    users: list[BatchUser] | None = Field(
        default=None,
        min_length=1,
        description=f"People: user ids, or {{user_id, anonymous_id}} objects (over HTTP 1 to "
        f"{MAX_USERS}; the CLI reads any number from a file).",
        json_schema_extra={"maxItems": MAX_USERS},
    )
    n: int | None = Field(default=None, ge=1, le=100, description="List slots: items per person.")
    campaign: str = Field(
        default="campaign",
        pattern=SLUG_PATTERN,
        max_length=100,
        description="The campaign's name, logged with each decision.",
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Segment-style context shared by the whole audience (e.g. campaign UTM).",
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_ids(cls, data: Any) -> Any:
        """A bare string in ``users`` is a user id."""
        if isinstance(data, dict) and isinstance(data.get("users"), list):
            users = [{"user_id": u} if isinstance(u, str) else u for u in data["users"]]
            data = {**data, "users": users}
        return data

    @model_validator(mode="after")
    def _one_audience(self) -> Self:
        if (self.segment is None) == (self.users is None):
            raise ValueError("give exactly one audience: segment or users")
        return self

    def audience_users(self) -> list[BatchUser]:
        return list(self.users or ())


@dataclass(slots=True)
class Summary:
    """What a run did, counted."""

    slot: str
    campaign: str
    audience: int = 0
    decided: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    anonymous: int = 0  # segment audiences: profiles without a user id, left out
    # segment audiences: stored profiles that could not be read (a non-member's record is read
    # as far as the condition needs: damage elsewhere in it is not seen, nor counted)
    damaged: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "campaign": self.campaign,
            "audience": self.audience,
            "decided": self.decided,
            "skipped": dict(sorted(self.skipped.items())),
            "anonymous_left_out": self.anonymous,
            "damaged_left_out": self.damaged,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class Shard:
    """One of ``count`` disjoint parts of an audience, split by profile id (a campaign over
    several processes, :mod:`loopwise.channels.workers`): everyone resolving to one profile
    lands in one part, so each part's frequency cap counts all of that person's decisions."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")

    def holds(self, profile_id: str) -> bool:
        # crc32, not hash(): every process must split the audience the same way
        return zlib.crc32(profile_id.encode()) % self.count == self.index


@dataclass(frozen=True, slots=True)
class _Person:
    user_id: str | None
    anonymous_id: str | None
    pid: str
    profile: Profile | None
    attributes: Mapping[str, Any] | None = None  # profile.* now (segment audiences)
    position: int = -1  # user audiences: the person's index in the list (segments: -1)


Row = dict[str, Any]
#: Where a row goes in the audience's order: (its position in a user list, its profile id);
#: segment audiences come in profile id order (every store iterates profiles so).
RowKey = tuple[int, str]


class Campaign:
    """One validated run; iterate :meth:`rows` (once) for the output, then read ``summary``."""

    def __init__(
        self,
        service: BatchService,
        request: DecideBatchRequest,
        compiled: CompiledWorkspace,
        people: Iterator[_Person],
        now: datetime,
        timer: Callable[[], float],
        summary: Summary,
    ) -> None:
        self._service = service
        self.request = request
        self._compiled = compiled
        self._people = people
        self._now = now
        self._timer = timer
        self.summary = summary
        # the audience's shared context.* (the campaign's UTM...), built once
        self._context = request_context_attributes(
            request.context, compiled.workspace.profiles, now
        )
        # every segment with the shared context folded in: each person pays for profile.* only
        self._segments = (compiled.registry, compiled.registry.evaluator(self._context))

    def rows(self) -> Iterator[Row]:
        """Every person's row, in audience order, a chunk at a time: a chunk's rows come out
        once its decisions are durable. The slot's campaigns wait for each other here."""
        for _, row in self.keyed_rows():
            yield row

    def keyed_rows(self) -> Iterator[tuple[RowKey, Row]]:
        """:meth:`rows`, each with its place in the whole audience (the parts of a campaign
        decided in several processes are merged by it)."""
        start = self._timer()
        lock = self._service.slot_lock(self.request.slot)
        collector = _Collector()
        with lock:
            try:
                cap = self._compiled.workspace.channels.batch.frequency_cap.cap(self.request.slot)
                # no cap: nothing to count (the day's log is not read)
                with collector.paused():
                    counts = (
                        self._service.cap_counts(self.request.slot, self._now) if cap else Counter()
                    )
                pending: tuple[Future[Any] | None, list[tuple[RowKey, Row]]] | None = None
                chunks = _chunks(self._people, CHUNK)
                while True:
                    with collector.paused():  # reading the chunk's profiles, deciding it
                        chunk = next(chunks, None)
                        if chunk is None:
                            break
                        rows, entries = self._decide_chunk(chunk, counts)
                    future = self._service.decide.log_many(entries) if entries else None
                    if pending is not None:
                        yield from _when_durable(*pending)
                    keys = [(person.position, person.pid) for person in chunk]
                    pending = (future, list(zip(keys, rows, strict=True)))
                if pending is not None:
                    yield from _when_durable(*pending)
            finally:
                collector.release()
        self.summary.seconds = self._timer() - start

    def _decide_chunk(
        self, chunk: list[_Person], counts: Counter[str]
    ) -> tuple[list[Row], list[tuple[JsonDict, list[Exposure]]]]:
        compiled, request, summary = self._compiled, self.request, self.summary
        workspace = compiled.workspace
        settings = workspace.channels.batch
        cap = settings.frequency_cap.cap(request.slot)
        privacy = workspace.privacy
        decide = self._service.decide
        slots = [SlotRequest.model_construct(slot=request.slot, n=request.n, filters=None)]
        segments = self._segments
        rows: list[Row] = []
        entries: list[tuple[JsonDict, list[Exposure]]] = []
        decide.prefetch_consent([(person.user_id, person.anonymous_id) for person in chunk])
        for person in chunk:
            summary.audience += 1
            row: Row = {"user_id": person.user_id, "profile_id": person.pid}
            if person.anonymous_id is not None and person.user_id is None:
                row["anonymous_id"] = person.anonymous_id
            state = decide.consent_state(person.user_id, person.anonymous_id)
            country = person.profile.country if person.profile is not None else None
            if not decide.granted(state, settings.consent, country, privacy):
                rows.append(_skipped(row, "no_consent", summary))
                continue
            if cap and counts[person.pid] >= cap:
                rows.append(_skipped(row, "frequency_cap", summary))
                continue
            body = _decide_request(person.user_id, person.anonymous_id, request.context, slots)
            prepared = Prepared(
                person.pid, person.profile, state, self._context, person.attributes, segments
            )
            decision = decide.decide_campaign(body, prepared)
            record = decision.record
            # under the person whatever their analytics choice: the frequency cap counts it
            record["profile_id"] = decision.profile_id
            record["channel"] = CHANNEL
            record["campaign"] = request.campaign
            entries.append((record, decision.exposures))
            counts[decision.profile_id] += 1
            summary.decided += 1
            row["status"] = "decided"
            row["decision_id"] = decision.decision_id
            row["slot"] = decision.slots[0]
            rows.append(row)
        return rows, entries


class _Collector:
    """The cycle collector waits while a chunk is decided (or the day's log read for the cap).
    A chunk allocates hundreds of thousands of short-lived objects, freed by reference
    counting (a campaign makes next to no cycles: a few dozen in 20,000 people); left on, the
    collector walks the chunk's live profiles, rows and records again and again, and now and
    then every object of the process (the profile view's decoded profiles, the decision log's
    rows...): a tenth to a fifth of a campaign's time.

    It runs as usual between chunks (while rows go out, so an abandoned campaign never leaves
    it off), over what was allocated since: what was alive when it came back on is frozen
    (``gc.freeze``, constant time), so neither the chunk's rows nor the rest of the process
    are walked again. The campaign unfreezes it all (into the oldest generation) when it
    ends. A process that froze objects itself (a pre-fork server) is left as it is: no
    freezing then."""

    def __init__(self) -> None:
        self._freezes = gc.get_freeze_count() == 0

    @contextmanager
    def paused(self) -> Iterator[None]:
        if not gc.isenabled():
            yield
            return
        gc.disable()
        try:
            yield
        finally:
            if self._freezes:
                gc.freeze()
            gc.enable()

    def release(self) -> None:
        if self._freezes:
            gc.unfreeze()


def _read_keys(paths: Iterable[str]) -> frozenset[str] | None:
    """The ``profile.*`` names a condition reading ``paths`` needs, or None when it needs the
    whole namespace: a path to ``profile`` itself, to an attribute the profile does not compute
    (``profile.cluster``, ``profile.scores``: added by the compiled workspace) or outside
    ``profile.*`` and ``context.*``."""
    keys: set[str] = set()
    for path in paths:
        root, _, rest = path.partition(".")
        if root == "context" and rest:
            continue
        name = rest.split(".", 1)[0]
        if root != "profile" or name not in ATTRIBUTE_GROUP:
            return None
        keys.add(name)
    return frozenset(keys)


def _decide_request(
    user_id: str | None,
    anonymous_id: str | None,
    context: dict[str, Any],
    slots: list[SlotRequest],
) -> DecideRequest:
    """The one-slot decide request of a person, built without validation (what it holds was
    validated with the campaign's request): the object ``model_construct`` makes, equal to the
    validated one, in a fraction of its time (a campaign builds one per person)."""
    user = DecideUser.__new__(DecideUser)
    object.__setattr__(
        user, "__dict__", {"user_id": user_id, "anonymous_id": anonymous_id, "user_token": None}
    )
    object.__setattr__(user, "__pydantic_fields_set__", set(_USER_FIELDS))
    object.__setattr__(user, "__pydantic_extra__", None)
    object.__setattr__(user, "__pydantic_private__", None)
    body = DecideRequest.__new__(DecideRequest)
    object.__setattr__(body, "__dict__", {"user": user, "context": context, "slots": slots})
    object.__setattr__(body, "__pydantic_fields_set__", set(_REQUEST_FIELDS))
    object.__setattr__(body, "__pydantic_extra__", None)
    object.__setattr__(body, "__pydantic_private__", {"_caller_only": False})
    return body


_USER_FIELDS = ("user_id", "anonymous_id", "user_token")
_REQUEST_FIELDS = ("user", "context", "slots")


def _skipped(row: Row, reason: SkipReason, summary: Summary) -> Row:
    summary.skipped[reason] += 1
    row["status"] = "skipped"
    row["reason"] = reason
    return row


def _when_durable(
    future: Future[Any] | None, rows: list[tuple[RowKey, Row]]
) -> Iterator[tuple[RowKey, Row]]:
    if future is not None:
        future.result()  # a failed write raises: no row of an unlogged decision goes out
    yield from rows


def _chunks(people: Iterator[_Person], size: int) -> Iterator[list[_Person]]:
    chunk: list[_Person] = []
    for person in people:
        chunk.append(person)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class BatchService:
    """Validates campaign requests and runs them (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        views: Views,
        decide: DecideService,
        compiled: Callable[[], CompiledWorkspace],
        catalog: Callable[[], Mapping[str, Item]],
        clock: Clock,
        timer: Callable[[], float],
    ) -> None:
        self._storage = storage
        self._views = views
        self.decide = decide
        self._compiled = compiled
        self._catalog = catalog
        self._clock = clock
        self._timer = timer
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def slot_lock(self, slot: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(slot, threading.Lock())

    def prepare(self, request: DecideBatchRequest, shard: Shard | None = None) -> Campaign:
        """Check the request against the live workspace (ValidationFailed naming the field);
        nothing is decided until the campaign's rows are read. ``shard``: only the people of
        that part of the audience (the others are not read, decided or counted)."""
        compiled = self._compiled()
        if request.slot not in compiled.slots:
            known = sorted(compiled.slots)
            raise ValidationFailed(
                f"Unknown slot {request.slot!r}. Known slots: {', '.join(known) or 'none'}. Fix "
                "the key or define the slot in the workspace.",
                field="slot",
                known_slots=known,
            )
        now = self._clock()
        people: Iterator[_Person]
        summary = Summary(slot=request.slot, campaign=request.campaign)
        if request.segment is not None:
            people = self._segment(compiled, request.segment, request.context, now, summary, shard)
        else:
            people = self._users(request.audience_users(), shard)
        return Campaign(self, request, compiled, people, now, self._timer, summary)

    # -- audiences -----------------------------------------------------------------------------
    def _users(self, users: Sequence[BatchUser], shard: Shard | None = None) -> Iterator[_Person]:
        """The people of a user audience with their profiles, read a chunk at a time from the
        store (one query per chunk), not through the profile view: a campaign reads each
        person once, and would push the site's hot profiles out of the view's decoded tier
        (and pay a compression for each one pushed out)."""
        identities = self._views.identities
        for start in range(0, len(users), CHUNK):
            part = users[start : start + CHUNK]
            # one store read for the chunk's identifiers the view does not hold (a campaign's
            # audience is mostly people not seen lately), as resolve_user would resolve them
            linked = identities.resolve_many(
                i for u in part for i in (u.user_id, u.anonymous_id) if i
            )
            found = [linked.get(u.user_id or "") or linked.get(u.anonymous_id or "") for u in part]
            # someone Loopwise never saw: the profile id their first event would create
            pids = [
                p or profile_id_for(u.user_id or u.anonymous_id or "")
                for u, p in zip(part, found, strict=True)
            ]
            ours = [shard is None or shard.holds(pid) for pid in pids]
            records = self._storage.profiles.get_many(
                [p for p, mine in zip(found, ours, strict=True) if p and mine]
            )
            for offset, user in enumerate(part):
                if not ours[offset]:
                    continue
                known = found[offset]
                profile = self._profile(known, records) if known else None
                yield _Person(
                    user.user_id, user.anonymous_id, pids[offset], profile, None, start + offset
                )

    def _profile(self, pid: str, records: Mapping[str, ProfileRecord]) -> Profile | None:
        """The stored profile (committed before the view hears of it, so never older than the
        view's); the view's when the record is missing or damaged (it repairs from events)."""
        record = records.get(pid)
        if record is not None:
            try:
                return codec.decode(record)
            except codec.DamagedProfile:
                pass
        return self._views.profiles.get(pid)

    def _segment(
        self,
        compiled: CompiledWorkspace,
        key: str,
        context: Mapping[str, Any],
        now: datetime,
        summary: Summary,
        shard: Shard | None = None,
    ) -> Iterator[_Person]:
        definition = compiled.registry.get(key)
        if definition is None:
            known = sorted(d.key for d in compiled.registry.definitions)
            raise ValidationFailed(
                f"Unknown segment {key!r}. Known segments: {', '.join(known)}.",
                field="segment",
            )
        saved_groups = compiled.workspace.saved_groups
        condition = compile_condition(definition.condition, saved_groups)
        attributes_context = request_context_attributes(context, compiled.workspace.profiles, now)
        keys = _read_keys(referenced_paths(definition.condition, saved_groups))
        return self._members(compiled, condition, keys, attributes_context, now, summary, shard)

    def _members(
        self,
        compiled: CompiledWorkspace,
        condition: Callable[[Mapping[str, Any]], bool],
        keys: frozenset[str] | None,
        context: Mapping[str, Any],
        now: datetime,
        summary: Summary,
        shard: Shard | None = None,
    ) -> Iterator[_Person]:
        """``keys``: the ``profile.*`` attributes the condition reads, when it reads only some
        the profile computes itself: evaluated from those alone (the same answer: each is
        computed as in the whole namespace), the whole namespace computed for members only.
        Likewise a record's costly tables (the affinity scores, recent views, daily counts)
        are decoded for the test only when the condition reads them, for a member after."""
        settings = compiled.settings
        # the record tables the condition reads; a member's others are read once it is in
        tables = record_tables(keys)
        rest = RECORD_TABLES - tables
        for record in self._storage.profiles.iter():
            if shard is not None and not shard.holds(record.id):
                continue  # another part's: not even parsed
            try:
                document = codec.parse(record.id, record.data)
                profile = codec.from_document(record.id, document, tables)
            except codec.DamagedProfile:
                summary.damaged += 1
                continue
            if profile.user_id is None:
                summary.anonymous += 1
                continue
            if keys is not None:
                some = profile.attributes(now, settings, AFFINITY_TABLES, keys)
                if not condition({"profile": some, "context": context}):
                    continue
                if rest:
                    try:
                        codec.read_tables(profile, document, rest)
                    except codec.DamagedProfile:
                        summary.damaged += 1
                        continue
                attributes = compiled.profile_attributes(profile, now)
            else:
                attributes = compiled.profile_attributes(profile, now)
                if not condition({"profile": attributes, "context": context}):
                    continue
            yield _Person(profile.user_id, None, profile.id, profile, attributes)

    # -- the frequency cap ---------------------------------------------------------------------
    def cap_counts(self, slot: str, now: datetime) -> Counter[str]:
        """Campaign decisions per profile for ``slot`` in the 24 hours before ``now``, from the
        decision log (waiting for this process's pending writes first)."""
        self.decide.flush()
        counts: Counter[str] = Counter()
        since = now - CAP_WINDOW
        for record in self._storage.decisions.iter(since):
            if record.get("channel") != CHANNEL or not record.get("profile_id"):
                continue
            at = parse_timestamp(record.get("created_at"))
            if at is None or at < since or at > now:
                continue
            if any(s.get("slot") == slot for s in record.get("slots") or ()):
                counts[str(record["profile_id"])] += 1
        return counts


# -- output files ------------------------------------------------------------------------------
CSV_COLUMNS = (
    "user_id",
    "profile_id",
    "status",
    "reason",
    "decision_id",
    "variant",
    "items",
    "content",
)


def csv_row(row: Row) -> dict[str, str]:
    slot = row.get("slot") or {}
    variant = slot.get("variant") or {}
    return {
        "user_id": row.get("user_id") or "",
        "profile_id": row.get("profile_id") or "",
        "status": row.get("status") or "",
        "reason": row.get("reason") or "",
        "decision_id": row.get("decision_id") or "",
        "variant": variant.get("id", ""),
        "items": " ".join(item["id"] for item in slot.get("items") or ()),
        "content": orjson.dumps(variant["content"]).decode() if variant.get("content") else "",
    }


def write_rows(rows: Iterable[Row], path: Path, format: str | None = None) -> int:
    """Write rows as JSON Lines or CSV (from the suffix unless ``format`` says); returns how
    many were written. Rows stream through: the file grows as the audience is decided."""
    kind = (format or path.suffix.lstrip(".")).lower()
    if kind not in ("jsonl", "csv"):
        raise ValidationFailed(
            f"Cannot write {path.name!r}: name the output file .jsonl or .csv.", field="out"
        )
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        if kind == "jsonl":
            for row in rows:
                out.write(orjson.dumps(row).decode() + "\n")
                count += 1
        else:
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(csv_row(row))
                count += 1
    return count


def read_users(path: Path) -> list[BatchUser]:
    """A user file: one user id per line (``.txt`` and the like), a CSV with a ``user_id``
    column, or JSON Lines of ``{"user_id": ...}`` / ``{"anonymous_id": ...}``."""
    text = path.read_text(encoding="utf-8-sig")
    users: list[BatchUser] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "user_id" not in reader.fieldnames:
            raise ValidationFailed(
                f"{path.name}: a CSV user file needs a user_id column.", field="users"
            )
        for line, record in enumerate(reader, start=2):
            value = (record.get("user_id") or "").strip()
            if value:
                users.append(_user(value, path, line))
        return users
    for line, raw in enumerate(text.splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        if suffix in (".jsonl", ".ndjson"):
            try:
                document = orjson.loads(raw)
                users.append(BatchUser.model_validate(document, strict=True))
            except (orjson.JSONDecodeError, ValueError) as exc:
                raise ValidationFailed(
                    f"{path.name}:{line}: not a user object ({str(exc).splitlines()[0]}); "
                    'write {"user_id": "..."} per line.',
                    field=f"users[{line - 1}]",
                ) from None
        else:
            users.append(_user(raw, path, line))
    return users


def _user(value: str, path: Path, line: int) -> BatchUser:
    if len(value) > MAX_ID_CHARS:
        raise ValidationFailed(
            f"{path.name}:{line}: the user id is over {MAX_ID_CHARS} characters.",
            field=f"users[{line - 1}]",
        )
    return BatchUser(user_id=value)
