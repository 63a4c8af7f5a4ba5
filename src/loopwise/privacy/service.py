"""The privacy service: consent (read, set, history), the consent gate's bookkeeping, erasure,
export and retention — on the stores, with the views told after commit.

Consent keys: a person's state is stored under their canonical profile id, else under the id a
first event would give the identifier (``profile_id_for``), and read as the merge of every key
that is theirs, so consent given while anonymous follows them once identified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from loopwise.clock import Clock, isoformat
from loopwise.errors import NotFound
from loopwise.privacy import audit as privacy_audit
from loopwise.privacy import consent as privacy_consent
from loopwise.privacy import retention as privacy_retention
from loopwise.privacy.erasure import add_counts, delete_profile_data
from loopwise.privacy.settings import PrivacySettings
from loopwise.profiles.identity import profile_id_for
from loopwise.storage.stores import ConsentStoreReader, IdentityStoreReader, Storage, UnitOfWork
from loopwise.views import Views


def resolve(identities: IdentityStoreReader, identifier: str) -> str | None:
    """The profile of an identifier; a profile id resolves to itself when it has identifiers."""
    linked = identities.resolve([identifier]).get(identifier)
    if linked is not None:
        return linked
    return identifier if identities.members([identifier]) else None


def consent_keys(identities: IdentityStoreReader, *identifiers: str | None) -> list[str]:
    """Every key a person's consent may be stored under: their canonical profile first (else
    the id their first event would get), then the ids of all their identifiers."""
    keys: list[str] = []
    for identifier in identifiers:
        if not identifier:
            continue
        pid = resolve(identities, identifier)
        if pid is not None:
            keys.append(pid)
            members = identities.members([pid]).get(pid, set())
            keys.extend(profile_id_for(i) for i in sorted(members))
        keys.append(profile_id_for(identifier))
    return list(dict.fromkeys(keys))


class PrivacyService:
    def __init__(
        self,
        storage: Storage,
        views: Views,
        settings: Callable[[], PrivacySettings],
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._views = views
        self._settings = settings
        self._clock = clock
        self._salt = self._privacy_salt()

    # -- pseudonymous ids ----------------------------------------------------------------------
    def _privacy_salt(self) -> str:
        """The data directory's salt for pseudonymous ids, created once."""
        salt = self._storage.config.meta(privacy_audit.SALT_META_KEY)
        if salt is not None:
            return salt

        def create(uow: UnitOfWork) -> str:
            existing = uow.config.meta(privacy_audit.SALT_META_KEY)
            if existing is not None:
                return existing
            fresh = privacy_audit.new_salt()
            uow.config.put_meta(privacy_audit.SALT_META_KEY, fresh)
            return fresh

        return self._storage.write(create)

    def pseudonymous_id(self, identifier: str) -> str:
        """Salted SHA-256 of ``identifier``; the salt is created once per data directory."""
        return privacy_audit.pseudonymous_id(identifier, self._salt)

    # -- consent -------------------------------------------------------------------------------
    def record_consent(
        self,
        uow: UnitOfWork,
        staged: dict[str, privacy_consent.ConsentState],
        keys: Sequence[str],
        user: str,
        choices: Mapping[str, bool],
        at: datetime,
        source: str,
        *,
        always: bool = False,
    ) -> privacy_consent.ConsentState:
        """Apply choices to a person's state and append the change to the audit trail (a choice
        that changes nothing is recorded only when ``always``: an explicit API call). The new
        state goes to ``staged`` (for the rest of the job) and to the view after commit."""
        policy = self._settings().policy_version
        before = state_of(uow, keys, staged)
        after = privacy_consent.with_choices(before, choices, at, source, policy)
        if after is before and not always:
            return before
        staged[keys[0]] = after
        uow.consent.put(keys[0], after.to_record())
        privacy_audit.append(
            uow,
            privacy_audit.consent_record(
                user=self.pseudonymous_id(user),
                subject=self.pseudonymous_id(keys[0]),
                before=before.explicit(),
                after=after.explicit(),
                source=source,
                policy_version=policy,
                at=at,
            ),
        )
        published = {keys[0]: after}
        uow.on_commit(lambda: self._views.consent.publish(published))
        return after

    def get_consent(
        self, user_id: str, country: str | None, profile_country: Callable[[str], str | None]
    ) -> dict[str, Any]:
        """Effective consent per category (explicit choice, else the regional default for
        ``country``, else the profile's country)."""
        keys = consent_keys(self._storage.identities, user_id)
        state = self._views.consent.state(keys)
        if country is None:
            country = profile_country(user_id)
        view = privacy_consent.view(state, country, self._settings())
        return {"user_id": user_id, **view}

    def put_consent(self, user_id: str, body: Any) -> None:
        """Set explicit choices; durable and applied to the very next request on return."""
        choices, source = privacy_consent.parse_choices(body, self._settings())
        now = self._clock()

        def job(uow: UnitOfWork) -> None:
            keys = consent_keys(uow.identities, user_id)
            self.record_consent(uow, {}, keys, user_id, choices, now, source, always=True)

        self._storage.write(job)

    def consent_history(self, user_id: str) -> list[dict[str, Any]]:
        """The audit records of this person's consent changes, oldest first."""
        keys = consent_keys(self._storage.identities, user_id)
        return list(self._storage.audit.iter([self.pseudonymous_id(k) for k in keys]))

    def consent_states(self) -> Iterator[tuple[str, privacy_consent.ConsentState]]:
        """Every stored consent state by key (read-only; the console's consent rates)."""
        for key, record in self._storage.consent.iter():
            yield key, privacy_consent.ConsentState.from_record(record)

    def audit_trail(self) -> tuple[str | None, Iterator[dict[str, Any]]]:
        """The audit chain's anchor and its records oldest first (read-only; the console
        verifies the chain and charts consent changes from it)."""
        anchor = self._storage.config.meta(privacy_audit.ANCHOR_META_KEY)
        return anchor, self._storage.audit.iter()

    def append_erasure_record(
        self, pseudonymous_id: str, receipt_summary: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record an erasure in the audit trail under a pseudonymous id only; the summary must
        hold counts and times, no ids."""
        record = privacy_audit.erasure_record(
            pseudonymous_id, receipt_summary, self._settings().policy_version, self._clock()
        )
        return self._storage.write(lambda uow: privacy_audit.append(uow, record))

    # -- the person ----------------------------------------------------------------------------
    def person(self, uow: UnitOfWork | None, identifier: str) -> tuple[str, list[str], list[str]]:
        """The live profile of ``identifier``, its identifiers, and every profile id the person's
        data may be stored under: the live one plus the provisional ids of merged identities
        (decisions made before a merge keep the id they were made for), minus ids that are now
        another person's live profile. NotFound when nothing is held."""
        identities = uow.identities if uow is not None else self._storage.identities
        exposures = uow.exposures if uow is not None else self._storage.exposures
        decisions = uow.decisions if uow is not None else self._storage.decisions
        consent = uow.consent if uow is not None else self._storage.consent
        profiles = uow.profiles if uow is not None else self._storage.profiles
        pid = resolve(identities, identifier)
        members = identities.members([pid]).get(pid, set()) if pid else set()
        if pid is None or (profiles.get(pid) is None and not members):
            # no accepted event ever linked the id (e.g. analytics refused), yet its consent,
            # decisions and exposures are stored under the id a first event would give it
            phantom = profile_id_for(identifier)
            if (
                consent.get([phantom])
                or exposures.for_profiles([phantom])
                or decisions.for_profile(phantom)
            ):
                return phantom, [identifier], [phantom]
            raise NotFound(
                f'No profile for "{identifier}". Use a userId or anonymousId an accepted event '
                "carried, or the profile id.",
                field="identifier",
            )
        identifiers = sorted(members)
        earlier = {profile_id_for(i) for i in identifiers} - {pid}
        live_elsewhere = {p for p in earlier if identities.members([p])}
        profile_ids = [pid, *sorted(earlier - live_elsewhere)]
        return pid, identifiers, profile_ids

    def erase(self, identifier: str) -> dict[str, Any]:
        """Erase a person across every merged identity, in one write job (all or nothing):
        profile, identity links, events, decisions and their outcomes, segment history,
        exposures, consent; then the views and the write-ahead log. Works on damaged rows too
        (deletes by key). Trained models forget the person at the next training; item
        statistics keep only anonymous counts."""
        erased_at = self._clock()

        def job(uow: UnitOfWork) -> dict[str, Any]:
            pid, identifiers, profile_ids = self.person(uow, identifier)
            counts: dict[str, int] = {}
            for profile_id in profile_ids:
                add_counts(counts, delete_profile_data(uow, profile_id))
            keys = consent_keys(uow.identities, *identifiers, *profile_ids)
            keys = list(dict.fromkeys([*keys, *profile_ids]))
            counts["consent"] = uow.consent.delete(keys)
            summary = {"removed": dict(counts), "identifiers": len(identifiers)}
            privacy_audit.append(
                uow,
                privacy_audit.erasure_record(
                    self.pseudonymous_id(pid),
                    summary,
                    self._settings().policy_version,
                    erased_at,
                ),
            )
            token = object()
            pending = self._views.profiles.pending
            for profile_id in profile_ids:
                pending.stage(token, profile_id, None, None)

            def forget() -> None:
                pending.release(token)
                self._views.consent.forget(keys)
                self._views.exposures.forget(profile_ids)
                self._views.identities.forget(identifiers)
                self._views.profiles.mark_absent(profile_ids)

            uow.on_commit(forget)
            uow.on_rollback(lambda: pending.release(token))
            return {
                "profile_id": pid,
                "identifiers": identifiers,
                "profile_ids": profile_ids,
                "removed": counts,
                "erased_at": isoformat(erased_at),
                "audit": "the consent audit trail keeps only a pseudonymous record of this erasure",
            }

        receipt = self._storage.write(job)
        self._storage.checkpoint()
        return receipt

    def export(
        self, identifier: str, profile_view: Callable[[str], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Everything held about a person, as one JSON-safe document (access and portability).
        A damaged profile record is reported, never a reason to refuse the export."""
        pid, identifiers, profile_ids = self.person(None, identifier)
        try:
            view = profile_view(identifier) or {}
        except Exception as exc:
            view = {"profile": {"damaged": f"{type(exc).__name__}: {exc}"}}
        events = [
            logged.event.to_record()
            for profile_id in profile_ids
            for logged in self._storage.events.iter(profile_id)
        ]
        decisions = [d for p in profile_ids for d in self._storage.decisions.for_profile(p)]
        decisions.sort(key=lambda d: str(d.get("created_at", "")))
        exposures = [
            {"experiment": e.experiment, "arm": e.arm, "exposed_at": isoformat(e.exposed_at)}
            for e in sorted(
                self._storage.exposures.for_profiles(profile_ids),
                key=lambda e: (e.experiment, e.exposed_at),
            )
        ]
        history = [
            {"segment": c.segment, "change": c.change, "at": isoformat(c.at)}
            for p in profile_ids
            for c in self._storage.segment_history.for_profile(p)
        ]
        keys = consent_keys(self._storage.identities, identifier)
        state = self._views.consent.state(keys)
        return {
            "profile_id": pid,
            "identifiers": identifiers,
            "exported_at": isoformat(self._clock()),
            "profile": view.get("profile", {}),
            "segments": view.get("segments", []),
            "segment_history": history,
            "events": events,
            "decisions": decisions,
            "exposures": exposures,
            "consent": {
                "user_id": identifier,
                **privacy_consent.view(
                    state, (view.get("profile") or {}).get("country"), self._settings()
                ),
            },
            "consent_history": self.consent_history(identifier),
        }

    # -- retention -----------------------------------------------------------------------------
    def run_retention(
        self, *, dry_run: bool = False, forget: Callable[[Iterable[str]], None] | None = None
    ) -> dict[str, Any]:
        """Purge behavioural data older than ``privacy.retention_days``; report counts."""
        cutoffs = privacy_retention.Cutoffs.at(self._clock(), self._settings())

        def job(uow: UnitOfWork) -> dict[str, int]:
            counts, stale = privacy_retention.purge(uow, cutoffs, dry_run=dry_run)

            def drop() -> None:
                # purged rows are gone from every view (as after a restart)
                self._views.profiles.mark_absent(stale)
                self._views.exposures.clear()
                self._views.identities.clear()
                if forget is not None:
                    forget(stale)

            uow.on_commit(drop)
            return counts

        try:
            counts = self._storage.write(job)
        except privacy_retention.DryRun as run:
            counts = run.counts
        return privacy_retention.report(cutoffs, counts, dry_run=dry_run)


def state_of(
    uow: UnitOfWork,
    keys: Iterable[str],
    staged: Mapping[str, privacy_consent.ConsentState] | None = None,
) -> privacy_consent.ConsentState:
    """A person's consent as this job sees it (staged states of the job first)."""
    return stored_state(uow.consent, keys, staged)


def stored_state(
    store: ConsentStoreReader,
    keys: Iterable[str],
    staged: Mapping[str, privacy_consent.ConsentState] | None = None,
) -> privacy_consent.ConsentState:
    """A person's consent as the store holds it (``staged`` states first): the merge of every
    key that is theirs."""
    keys = list(dict.fromkeys(keys))
    found = []
    stored = store.get([k for k in keys if not staged or k not in staged])
    for key in keys:
        if staged and key in staged:
            found.append(staged[key])
        elif key in stored:
            found.append(privacy_consent.ConsentState.from_record(stored[key]))
    found = [s for s in found if s.choices]
    if not found:
        return privacy_consent.EMPTY
    return found[0] if len(found) == 1 else privacy_consent.merge(found)
