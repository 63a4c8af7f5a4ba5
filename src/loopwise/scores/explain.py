"""When a score influenced a decision: the slot's rule read ``profile.scores.<key>`` (in its
``when``, or in the condition of a segment it required and the person is in). Such a slot is
AI-influenced, and its reasons — the decide reply, the decision log and so ``/why`` — name the
score, its value and the features that moved it most for this person (SHAP values)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from loopwise.decide import explain
from loopwise.decide.request import SlotDecision
from loopwise.profiles.model import Profile
from loopwise.scores.serving import LiveScores
from loopwise.scores.spec import referenced_scores
from loopwise.workspace.compiled import CompiledWorkspace


def rule_scores(
    compiled: CompiledWorkspace, slot_key: str, rule_id: str, segments: Iterable[str]
) -> list[str]:
    """Score keys the rule ``rule_id`` of slot ``slot_key`` read for this person."""
    slot = compiled.slots.get(slot_key)
    rule = next((r for r in slot.rules if r.id == rule_id), None) if slot is not None else None
    if rule is None:
        return []
    keys = list(referenced_scores(rule.when))
    member_of = set(segments)
    for key in rule.segments:
        definition = compiled.registry.get(key) if key in member_of else None
        if definition is not None:
            keys.extend(referenced_scores(definition.condition))
    return list(dict.fromkeys(keys))


def annotate(
    decisions: Sequence[SlotDecision],
    compiled: CompiledWorkspace,
    live: LiveScores | None,
    profile: Profile | None,
    segments: Sequence[str],
) -> bool:
    """Add the score reasons to the slots a score influenced; True when any was."""
    if live is None or live.model is None or profile is None:
        return False
    settings = compiled.settings
    top = compiled.workspace.scores.explain_top
    touched = False
    for decision in decisions:
        if decision.rule is None:
            continue
        keys = rule_scores(compiled, decision.slot, decision.rule, segments)
        if not keys:
            continue
        for explanation in live.explain(profile, settings, keys, top):
            factors = [(c.description, c.contribution) for c in explanation.top]
            decision.reasons.append(
                explain.score_influenced(
                    explanation.key, explanation.definition.label_text(), explanation.value, factors
                )
            )
            decision.ai_influenced = True
            touched = True
    return touched
