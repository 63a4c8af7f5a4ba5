"""The end-user answer to "Why am I seeing this?", built from a logged decision's reasons.

Reasons in the decision log are written for operators (they name rules, strategies and variants);
this turns them into short plain sentences for the person who saw the page: no rule, strategy or
variant ids, only what they could see or know about themselves (their segment names, categories
they viewed). Pure: a decision record in, a JSON-safe dict out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Reason kinds that say nothing the person can act on or recognise.
_HIDDEN = frozenset({"variant", "filter"})
# The order in which a reason kind makes the one-line summary (first present wins).
_SUMMARY_ORDER = ("consent", "holdout", "rule", "strategy", "segment", "cold_start")
SCORE_REF_PREFIX = "scores."  # reasons of predictive scores (loopwise.scores.explain)


def _after_colon(text: str) -> str:
    return text.split(": ", 1)[1] if ": " in text else text


def _because(detail: str) -> str:
    """'you viewed this recently' -> 'Because you viewed this recently'."""
    detail = detail.strip().rstrip(".")
    if detail.startswith(("you ", "your ")):
        return f"Because {detail}"
    if detail.startswith("new arrival"):
        return f"Because it is a {detail}"
    if detail.startswith(("popular", "trending", "often", "random")):
        return f"Because it is {detail}"
    return f"Because {detail[:1].lower()}{detail[1:]}"


def plain_reason(reason: Mapping[str, Any]) -> str | None:
    """One reason in plain words, or None when it is internal detail."""
    kind = str(reason.get("kind", ""))
    text = str(reason.get("text", ""))
    if kind in _HIDDEN or not text:
        return None
    if kind == "strategy":
        if " used instead of " in text:
            return "Chosen without using your profile"
        return _because(_after_colon(text)).replace(" (segment ", " (group ")
    if kind == "rule":
        if " pinned " in text:
            return "Featured by the shop"
        return _because(_after_colon(text))
    if kind == "fallback":
        return "Popular items filled in where there were too few suggestions"
    if kind == "cold_start":
        return "We don't know your interests yet, so these are popular items"
    if kind == "exploration":
        return "One item is a random pick, to discover what you like"
    if kind == "experiment":
        return "This page is part of an experiment comparing versions of it"
    if kind == "model" and text.startswith("Strategy "):
        # a model strategy's item reason names the model, its version or an operator command
        if " is not trained yet" in text:
            return "Because it is popular right now"
        return "Ranked for you by a model trained on visitors' behaviour, from your activity"
    return text  # segment, consent, holdout, model: already written for the person


def _summary(reasons: Sequence[Mapping[str, Any]], ai: bool) -> str:
    by_kind: dict[str, str] = {}
    for reason in reasons:
        # a predictive score that made the rule fire says more than the rule's own words
        if (
            str(reason.get("ref", "")).startswith(SCORE_REF_PREFIX)
            and reason.get("kind") == "model"
        ):
            return str(reason.get("text", ""))
        text = plain_reason(reason)
        if text is not None:
            by_kind.setdefault(str(reason.get("kind")), text)
    for kind in _SUMMARY_ORDER:
        if kind in by_kind:
            return by_kind[kind]
    if ai:
        return by_kind.get("model", "Chosen automatically from your activity")
    return "Everyone sees this: it is the page's default content"


def explain_decision(record: Mapping[str, Any]) -> dict[str, Any]:
    """``{"decision_id", "ai_influenced", "slots": [{"slot", "ai_influenced", "summary",
    "reasons": [plain texts]}]}`` for a logged decision (as ``Storage.get_decision`` returns)."""
    slots = []
    for slot in record.get("slots", []):
        reasons = [r for r in slot.get("reasons", []) if isinstance(r, Mapping)]
        ai = bool(slot.get("ai_influenced", False))
        texts = [t for t in (plain_reason(r) for r in reasons) if t is not None]
        if not ai:
            texts.append(
                "Not AI-influenced: no trained model or automatic personalization chose this"
            )
        slots.append(
            {
                "slot": str(slot.get("slot", "")),
                "ai_influenced": ai,
                "summary": _summary(reasons, ai),
                "reasons": list(dict.fromkeys(texts)),
            }
        )
    return {
        "decision_id": str(record.get("decision_id", "")),
        "ai_influenced": bool(record.get("ai_influenced", False)),
        "slots": slots,
    }
