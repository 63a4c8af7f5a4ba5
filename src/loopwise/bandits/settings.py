"""A block slot's bandit settings (``strategy: bandit`` with a ``bandit:`` block in the workspace).

```yaml
slots:
  - key: hero
    kind: block
    strategy: bandit
    bandit:
      algorithm: thompson        # or linear_thompson (contextual)
      reward: click              # or conversion (a purchase attributed to the decision)
      trial: decision            # or impression: only decisions whose content was seen count
      segments: [vip, new_visitors]   # one learner per segment (first the person is in), else all
      features: [profile.engagement, profile.purchases, context.device.type=mobile]
      floor: 0.01                # every arm keeps at least this probability (>= 1%)
      warmup: 50                 # decisions per arm before the posterior is trusted
    variants: [...]
```
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_FLOOR = 0.01
BANDIT = "bandit"


class BanditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["thompson", "linear_thompson"] = Field(
        default="thompson",
        description="thompson: Beta-Bernoulli Thompson sampling per arm (per segment bucket); "
        "linear_thompson: contextual linear Thompson sampling on the features.",
    )
    reward: Literal["click", "conversion"] = Field(
        default="click",
        description="What counts as a success: a click on the slot, or a conversion "
        "(purchase) attributed to the decision.",
    )
    trial: Literal["decision", "impression"] = Field(
        default="decision",
        description="What counts as a try: every decision, or only decisions whose content was "
        "seen (an impression event with the decision id, or the reward itself).",
    )
    segments: list[str] = Field(
        default_factory=list,
        description="Learn separately per segment: the first of these the person is in names "
        "the bucket; everyone else shares the bucket 'all'.",
    )
    features: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="linear_thompson: profile.* / context.* paths (numbers, booleans) or "
        "path=value indicators; an intercept is always added.",
    )
    floor: float = Field(
        default=MIN_FLOOR,
        ge=MIN_FLOOR,
        le=0.5,
        description="Exploration floor: every arm is shown with at least this probability.",
    )
    warmup: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Until every arm of a bucket has this many decisions, arms are shown in "
        "proportion to their variant weight (then the posterior decides).",
    )
    prior_alpha: float = Field(default=1.0, gt=0, description="thompson: Beta prior successes.")
    prior_beta: float = Field(default=1.0, gt=0, description="thompson: Beta prior failures.")
    ridge: float = Field(default=1.0, gt=0, description="linear_thompson: ridge penalty.")
    noise: float = Field(
        default=0.25, gt=0, description="linear_thompson: posterior scale (exploration)."
    )
    grid: int = Field(
        default=256,
        ge=64,
        le=8192,
        description="Cells of the numerical integration that computes each arm's probability "
        "of being best (the arm is drawn from those probabilities: the logged propensity is "
        "exact).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.features and self.algorithm != "linear_thompson":
            raise ValueError("features only apply to algorithm: linear_thompson")
        return self
