"""Plain-language calculators over the statistics, for people who have numbers but no experiment.

A marketer with "10,000 visitors, 500 orders" per variant from any tool should get the lift, the
uncertainty and a one-line verdict without reading a statistics book; these functions return
JSON-ready dicts that the CLI (and later the dashboard) render. Parsing lives here so the message
for a typo names the option the user typed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from loopwise.errors import ValidationFailed
from loopwise.experiments import stats

_FRACTION = re.compile(r"\s*(\d[\d_,]*)\s*/\s*(\d[\d_,]*)\s*")


@contextmanager
def _option_names(names: Mapping[str, str]) -> Iterator[None]:
    """Report errors from the statistics under the option the user typed (``--users``)."""
    try:
        yield
    except ValidationFailed as exc:
        if exc.field is not None and exc.field in names:
            raise ValidationFailed(exc.detail, field=names[exc.field], **exc.extra) from None
        raise


_PROPORTION_OPTIONS = {"alpha": "--alpha", "control": "--control", "treatment": "--treatment"}
_SRM_OPTIONS = {"observed": "--users", "weights": "--weights"}
_PLAN_OPTIONS = {k: "--" + k for k in ("baseline", "mde", "alpha", "power", "arms")}


def _to_int(text: str) -> int:
    return int(text.replace(",", "").replace("_", ""))


def parse_fraction(text: str, field: str) -> tuple[int, int]:
    """``"10000/500"`` → ``(10000, 500)``: users, then conversions."""
    match = _FRACTION.fullmatch(text)
    if match is None:
        raise ValidationFailed(
            f"Expected USERS/CONVERSIONS such as 10000/500, got {text!r}.", field=field
        )
    users, conversions = _to_int(match.group(1)), _to_int(match.group(2))
    if users < 2:
        raise ValidationFailed(f"Need at least 2 users, got {users} in {text!r}.", field=field)
    if conversions > users:
        raise ValidationFailed(
            f"{conversions} conversions out of {users} users is impossible; write USERS first, "
            "then CONVERSIONS, e.g. 10000/500.",
            field=field,
        )
    return users, conversions


def parse_int_list(text: str, field: str) -> list[int]:
    """``"10000,10600"`` → ``[10000, 10600]``."""
    try:
        values = [int(part.strip().replace("_", "")) for part in text.split(",")]
    except ValueError:
        raise ValidationFailed(
            f"Expected whole numbers separated by commas, such as 10000,10600; got {text!r}.",
            field=field,
        ) from None
    if len(values) < 2 or any(v < 0 for v in values):
        raise ValidationFailed(
            f"Give at least two counts, none negative, such as 10000,10600; got {text!r}.",
            field=field,
        )
    return values


def parse_float_list(text: str, field: str) -> list[float]:
    """``"0.5,0.5"`` → ``[0.5, 0.5]``."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValidationFailed(
            f"Expected numbers separated by commas, such as 0.5,0.5; got {text!r}.", field=field
        ) from None
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValidationFailed(f"Every value must be positive; got {text!r}.", field=field)
    return values


def format_percent(value: float) -> str:
    """12% rather than 12.0%, 3.1% rather than 3%: two significant digits for small numbers."""
    text = f"{value * 100:.0f}" if abs(value) >= 0.095 else f"{value * 100:.1f}"
    text = text.removesuffix(".0")
    return "0" if text == "-0" else text


def _signed_percent(value: float) -> str:
    text = format_percent(value)
    return text if text.startswith("-") or text == "0" else "+" + text


def _verdict(
    relative: float,
    ci: stats.Interval,
    p_value: float,
    significant: bool,
    confidence: int,
    more_users: int | None,
) -> str:
    if ci[0] < 0 < ci[1]:
        bounds = f"{format_percent(ci[0])}% to +{format_percent(ci[1])}%"
    else:
        bounds = f"{format_percent(ci[0])}\u2013{format_percent(ci[1])}%"
    ci_text = f"{confidence}% CI {bounds}"
    if significant and relative > 0:
        return f"B beats A by {format_percent(relative)}% ({ci_text})"
    if significant:
        return f"B is worse than A by {format_percent(-relative)}% ({ci_text})"
    summary = (
        f"No significant difference yet (B vs A {_signed_percent(relative)}%, {ci_text}, "
        f"p = {p_value:.3g})"
    )
    if more_users is None:
        return summary + "; the rates are identical so far."
    return (
        f"{summary}; about {more_users:,} more users per arm needed to detect a "
        f"{format_percent(abs(relative))}% lift"
    )


def proportions_report(
    control: tuple[int, int], treatment: tuple[int, int], alpha: float = 0.05
) -> dict[str, Any]:
    """Everything about A (``(users, conversions)``) vs B in one JSON-ready dict."""
    with _option_names({"conversions": "--control"}):
        c = stats.SampleStats.from_proportion(*control)
    with _option_names({"conversions": "--treatment"}):
        t = stats.SampleStats.from_proportion(*treatment)
    if c.sum == 0:
        raise ValidationFailed(
            "The control has no conversions, so a relative lift is undefined; wait until it "
            "has some.",
            field="--control",
        )
    with _option_names(_PROPORTION_OPTIONS):
        lift = stats.lift(c, t)
        freq = stats.welch_test(c, t, alpha)
        bayes = stats.bayesian(c, t, alpha=alpha)
        seq = stats.sequential(c, t, alpha)
    more_users: int | None = None
    needed: int | None = None
    if lift.relative != 0 and c.mean < 1 and c.mean * (1 + lift.relative) < 1:
        needed = stats.sample_size(c.mean, lift.relative, alpha=alpha)
        more_users = max(0, needed - min(c.n, t.n))
    confidence = round((1 - alpha) * 100)
    return {
        "control": {"users": c.n, "conversions": int(c.sum), "rate": c.mean},
        "treatment": {"users": t.n, "conversions": int(t.sum), "rate": t.mean},
        "absolute_lift": lift.absolute,
        "relative_lift": lift.relative,
        "confidence": 1 - alpha,
        "ci_relative": list(freq.ci_relative),
        "ci_absolute": list(freq.ci_absolute),
        "p_value": freq.p_value,
        "significant": freq.significant,
        "chance_to_win": bayes.chance_to_win,
        "risk": {"treatment": bayes.expected_loss, "control": bayes.expected_loss_control},
        "sequential": {"ci_relative": list(seq.ci_relative), "significant": seq.significant},
        "users_needed_per_arm": needed,
        "verdict": _verdict(
            lift.relative, freq.ci_relative, freq.p_value, freq.significant, confidence, more_users
        ),
    }


def srm_report(
    users: Sequence[int], weights: Sequence[float], threshold: float = 0.001
) -> dict[str, Any]:
    """Whether users split across arms as intended, with a verdict and what to check."""
    with _option_names(_SRM_OPTIONS):
        result = stats.srm(users, weights, threshold)
    total_weight = sum(weights)
    if result.flagged:
        verdict = (
            f"Sample ratio mismatch (p = {result.p_value:.2g} < {threshold:g}): the arms did not "
            "get the traffic their weights promise, so the results cannot be trusted. Check "
            "assignment, exposure logging, redirects and bot filtering."
        )
    else:
        verdict = f"No sample ratio mismatch (p = {result.p_value:.3g})."
    return {
        "observed": list(users),
        "expected": list(result.expected),
        "weights": [w / total_weight for w in weights],
        "chi2": result.chi2,
        "p_value": result.p_value,
        "threshold": threshold,
        "flagged": result.flagged,
        "verdict": verdict,
    }


def sample_size_report(
    baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8, arms: int = 2
) -> dict[str, Any]:
    """Users per arm (and in total) to detect a relative change ``mde`` from ``baseline``."""
    with _option_names(_PLAN_OPTIONS):
        per_arm = stats.sample_size(baseline, mde, alpha, power, arms)
    return {
        "baseline_rate": baseline,
        "mde_relative": mde,
        "alpha": alpha,
        "power": power,
        "arms": arms,
        "users_per_arm": per_arm,
        "total_users": per_arm * arms,
        "verdict": (
            f"About {per_arm:,} users per arm ({per_arm * arms:,} in total) to detect a "
            f"{format_percent(abs(mde))}% {'lift' if mde > 0 else 'drop'} from a "
            f"{format_percent(baseline)}% baseline with {format_percent(power)}% power."
        ),
    }
