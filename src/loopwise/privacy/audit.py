"""The consent audit trail: an append-only, hash-chained log.

Every record carries ``prev_hash`` (the ``hash`` of the record before it; 64 zeros for the first)
and its own ``hash`` = SHA-256 of the record's canonical JSON (UTF-8, keys sorted, no whitespace)
without the ``hash`` field. Changing, removing or reordering any record breaks the chain at that
record, which :func:`verify_chain` names. The retention job may drop records older than
``audit_retention_months`` (never fewer than 24); it then stores the ``prev_hash`` of the first
kept record as the chain's anchor, so the rest still verifies.

Records (``kind``):
- ``consent``: ``user`` (the id as given) and ``subject`` (the profile key it was stored under),
  both as pseudonymous ids (the engine passes them through :func:`pseudonymous_id`),
  ``before`` / ``after`` (explicit choices, category -> bool), ``source``, ``policy_version``,
  ``at``;
- ``erasure``: ``user`` and ``subject`` are a pseudonymous id (salted SHA-256, see
  :func:`pseudonymous_id`), ``receipt`` a summary of what was removed; no real id is kept.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from loopwise.clock import isoformat
from loopwise.storage.stores import AuditLog, ConfigStore

GENESIS = "0" * 64
SALT_META_KEY = "privacy_salt"
ANCHOR_META_KEY = "audit_anchor"


class AuditWriter(Protocol):
    """The part of a unit of work the audit trail uses."""

    @property
    def audit(self) -> AuditLog: ...

    @property
    def config(self) -> ConfigStore: ...


def canonical(record: Mapping[str, Any]) -> bytes:
    """Canonical JSON of a record without its ``hash``: sorted keys, compact, UTF-8."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def chain(previous: Mapping[str, Any] | None, anchor: str | None, body: dict[str, Any]) -> dict:
    """``body`` as the next record after ``previous``: numbered, linked and hashed."""
    record = dict(body)
    record["seq"] = int(previous["seq"]) + 1 if previous else 1
    record["prev_hash"] = str(previous["hash"]) if previous else (anchor or GENESIS)
    record["hash"] = record_hash(record)
    return record


def append(uow: AuditWriter, body: dict[str, Any]) -> dict[str, Any]:
    """Append one record inside a write job (the single writer keeps the chain linear)."""
    record = chain(uow.audit.head(), uow.config.meta(ANCHOR_META_KEY), body)
    uow.audit.append(record)
    return record


def consent_record(
    *,
    user: str,
    subject: str,
    before: Mapping[str, bool],
    after: Mapping[str, bool],
    source: str,
    policy_version: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "kind": "consent",
        "at": isoformat(at),
        "user": user,
        "subject": subject,
        "before": dict(before),
        "after": dict(after),
        "source": source,
        "policy_version": policy_version,
    }


def erasure_record(
    pseudonym: str, receipt_summary: Mapping[str, Any], policy_version: str, at: datetime
) -> dict[str, Any]:
    return {
        "kind": "erasure",
        "at": isoformat(at),
        "user": pseudonym,
        "subject": pseudonym,
        "receipt": dict(receipt_summary),
        "source": "erasure",
        "policy_version": policy_version,
    }


def pseudonymous_id(identifier: str, salt: str) -> str:
    """``sha256(salt + ":" + identifier)`` in hex: stable within one data directory, not
    reversible without its salt, different in every data directory."""
    return hashlib.sha256(f"{salt}:{identifier}".encode()).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
        }


def verify_chain(records: Iterable[Mapping[str, Any]], anchor: str | None = None) -> Verification:
    """Check every record's hash and link, oldest first; stop at the first broken record."""
    expected_prev = anchor or GENESIS
    expected_seq: int | None = None
    checked = 0
    for record in records:
        seq = record.get("seq")
        if expected_seq is not None and seq != expected_seq:
            return Verification(
                False, checked, expected_seq, f"record {expected_seq} is missing (found {seq})"
            )
        if record.get("prev_hash") != expected_prev:
            return Verification(
                False, checked, _seq(seq), f"record {seq} does not link to the record before it"
            )
        if record.get("hash") != record_hash(record):
            return Verification(
                False, checked, _seq(seq), f"record {seq} was changed (its hash does not match)"
            )
        checked += 1
        expected_prev = str(record["hash"])
        expected_seq = _seq(seq) + 1
    return Verification(True, checked)


def _seq(value: Any) -> int:
    return value if isinstance(value, int) else -1
