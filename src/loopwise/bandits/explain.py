"""The reasons a bandit-chosen variant carries (``/why`` and the decide reply)."""

from __future__ import annotations

from loopwise.bandits.service import ALL, BanditChoice
from loopwise.bandits.settings import BanditSettings
from loopwise.decide.request import Reason

_ALGORITHMS = {
    "thompson": "Thompson sampling",
    "linear_thompson": "contextual (linear) Thompson sampling",
}
_REWARDS = {"click": "clicks", "conversion": "conversions"}


def bandit_reasons(choice: BanditChoice, settings: BanditSettings) -> list[Reason]:
    who = "everyone" if choice.bucket == ALL else f'people in segment "{choice.bucket}"'
    how = _ALGORITHMS.get(choice.algorithm, choice.algorithm)
    if choice.warmup:
        state = f"still warming up (each variant needs {settings.warmup} decisions)"
    else:
        state = f"learning from {_REWARDS.get(settings.reward, settings.reward)}"
    text = (
        f'Variant "{choice.variant}" chosen by a {how} bandit {state} for {who}; it showed '
        f"this variant with probability {choice.propensity:.0%} (every variant keeps at least "
        f"{settings.floor:.0%})"
    )
    return [
        Reason(kind="variant", text=text, ref=choice.variant),
        Reason(
            kind="model",
            text="AI-influenced: a bandit learning from visitors' responses chose this content",
            ref="bandit",
        ),
    ]
