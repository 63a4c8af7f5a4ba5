"""``loopwise stats ...``: the experiment calculators on the command line.

A Typer sub-app (registered by ``loopwise.cli`` as ``stats``) so a marketer can check a test run
in any tool, or plan one, without a running Loopwise. Tables by default, ``--json`` for scripts;
bad input exits with code 2 and a red message naming the option.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from loopwise.cli_options import JsonFlag, console, fail
from loopwise.cli_tables import print_table
from loopwise.errors import LoopwiseError
from loopwise.experiments import calculator
from loopwise.experiments.calculator import format_percent

stats_app = typer.Typer(
    help="Experiment calculators: significance of a finished test, sample-ratio checks, "
    "sample sizes. No running server needed.",
    no_args_is_help=True,
    add_completion=False,
)

Alpha = Annotated[float, typer.Option(help="Significance level (0.05 = 95% confidence).")]


def _emit_json(report: dict[str, Any]) -> None:
    typer.echo(json.dumps(report, indent=2))


def _pct(value: float) -> str:
    return format_percent(value) + "%"


def _probability(value: float) -> str:
    """Chances and risks: never print 100% or 0% for something merely very likely."""
    if 0 < value < 0.001:
        return "<0.1%"
    if 0.999 < value < 1:
        return ">99.9%"
    return f"{value * 100:.1f}%"


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


@stats_app.command()
def proportions(
    control: Annotated[str, typer.Option(help="Control USERS/CONVERSIONS, e.g. 10000/500.")],
    treatment: Annotated[str, typer.Option(help="Treatment USERS/CONVERSIONS, e.g. 10000/560.")],
    alpha: Alpha = 0.05,
    as_json: JsonFlag = False,
) -> None:
    """Compare two conversion rates: lift, confidence interval, p-value, chance to win, risk."""
    try:
        report = calculator.proportions_report(
            calculator.parse_fraction(control, "--control"),
            calculator.parse_fraction(treatment, "--treatment"),
            alpha,
        )
    except LoopwiseError as exc:
        raise fail(exc) from None
    if as_json:
        _emit_json(report)
        return
    confidence = format_percent(report["confidence"])
    lo, hi = report["ci_relative"]
    seq_lo, seq_hi = report["sequential"]["ci_relative"]
    rows = [
        ("A (control)", f"{report['control']['conversions']:,} / {report['control']['users']:,}"),
        (
            "B (treatment)",
            f"{report['treatment']['conversions']:,} / {report['treatment']['users']:,}",
        ),
        ("Rate A → B", f"{_pct(report['control']['rate'])} → {_pct(report['treatment']['rate'])}"),
        ("Relative lift", _pct(report["relative_lift"])),
        (f"{confidence}% CI", f"{_pct(lo)} to {_pct(hi)}"),
        ("p-value", f"{report['p_value']:.4g}"),
        ("Chance B beats A", _probability(report["chance_to_win"])),
        ("Risk choosing B", _probability(report["risk"]["treatment"])),
        ("Sequential CI", f"{_pct(seq_lo)} to {_pct(seq_hi)} (safe to peek)"),
    ]
    console.print(_table("A/B test: conversion rates", rows))
    style = "green" if report["significant"] else "yellow"
    console.print(f"[{style}]{report['verdict']}[/{style}]", highlight=False)


@stats_app.command()
def srm(
    users: Annotated[str, typer.Option(help="Users per arm, e.g. 10000,10600.")],
    weights: Annotated[
        str | None, typer.Option(help="Intended split, e.g. 0.5,0.5. Default: equal.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sample-ratio mismatch: did the arms get the traffic their weights promise?"""
    try:
        counts = calculator.parse_int_list(users, "--users")
        split = (
            calculator.parse_float_list(weights, "--weights")
            if weights is not None
            else [1.0] * len(counts)
        )
        report = calculator.srm_report(counts, split)
    except LoopwiseError as exc:
        raise fail(exc) from None
    if as_json:
        _emit_json(report)
        return
    table = Table(title="Sample ratio check", title_justify="left")
    for column in ("Arm", "Users", "Expected", "Weight"):
        table.add_column(column, justify="right")
    for index, (observed, expected, weight) in enumerate(
        zip(report["observed"], report["expected"], report["weights"], strict=True)
    ):
        table.add_row(str(index), f"{observed:,}", f"{expected:,.0f}", _pct(weight))
    print_table(table, console)
    console.print(f"χ² = {report['chi2']:.3f}, p = {report['p_value']:.3g}", highlight=False)
    style = "red" if report["flagged"] else "green"
    console.print(f"[{style}]{report['verdict']}[/{style}]", highlight=False)


@stats_app.command("sample-size")
def sample_size(
    baseline: Annotated[float, typer.Option(help="Current conversion rate, e.g. 0.05 for 5%.")],
    mde: Annotated[
        float, typer.Option(help="Smallest relative lift worth detecting, e.g. 0.1 for 10%.")
    ],
    alpha: Alpha = 0.05,
    power: Annotated[float, typer.Option(help="Chance to detect a real effect.")] = 0.8,
    arms: Annotated[int, typer.Option(help="Number of arms including the control.")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Users needed per arm before starting an experiment."""
    try:
        report = calculator.sample_size_report(baseline, mde, alpha, power, arms)
    except LoopwiseError as exc:
        raise fail(exc) from None
    if as_json:
        _emit_json(report)
        return
    rows = [
        ("Baseline rate", _pct(baseline)),
        ("Relative MDE", _pct(mde)),
        ("Alpha / power", f"{alpha:g} / {power:g}"),
        ("Arms", str(arms)),
        ("Users per arm", f"{report['users_per_arm']:,}"),
        ("Total users", f"{report['total_users']:,}"),
    ]
    console.print(_table("Sample size", rows))
    console.print(report["verdict"], highlight=False)
