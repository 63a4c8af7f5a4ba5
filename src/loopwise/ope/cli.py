"""``loopwise ope``: estimate a candidate policy from logged decisions (or Open Bandit Dataset).

    loopwise ope --policy uniform --slot hero [--from 2026-11-01 --to 2026-11-08] [--json]
    loopwise ope --policy policy.yaml --slot hero
    loopwise ope --format obd --data ../shared/data/obd --campaign all \\
        --logging-policy random --policy obd-bts --json

Exit code 0 with the estimates; 2 with a message for bad input, and 3 when the candidate cannot
be estimated from the logs (zero support, or nothing logged).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    WorkspaceFile,
    console,
    err_console,
    fail,
    open_engine,
)
from loopwise.errors import LoopwiseError
from loopwise.ope.evaluate import NotEstimable

NOT_ESTIMABLE_EXIT = 3


def _print(report: dict[str, Any]) -> None:
    title = f"Off-policy estimate of {report['policy']}"
    if report.get("slot"):
        title += f" on slot {report['slot']}"
    table = Table(title=title, title_justify="left")
    for column in ("estimator", "value", "95% interval"):
        table.add_column(column)
    for name, estimate in report["estimates"].items():
        interval = estimate["interval"]
        table.add_row(
            name, f"{estimate['value']:.5g}", f"{interval['lower']:.4g} to {interval['upper']:.4g}"
        )
    console.print(table)
    console.print(
        f"{report['rounds']} logged rounds, logged reward rate {report['logged_reward_rate']:.4g},"
        f" effective sample size {report['effective_sample_size']:.0f}"
    )
    if report.get("on_policy_value") is not None:
        console.print(f"on-policy value of the candidate's own logs: {report['on_policy_value']}")


def ope_command(
    policy: Annotated[
        str,
        typer.Option(
            help="uniform | logged | bandit | variant:<id> | a policy file (YAML/JSON); "
            "with --format obd: obd-bts | obd-random."
        ),
    ],
    slot: Annotated[str | None, typer.Option(help="The block slot to evaluate.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Decisions from (ISO date or time, UTC).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Decisions before (ISO, UTC).")] = None,
    reward: Annotated[str, typer.Option(help="click | conversion.")] = "click",
    format: Annotated[
        str, typer.Option("--format", help="loopwise (the decision log) | obd.")
    ] = "loopwise",
    data: Annotated[
        Path | None, typer.Option(help="--format obd: the Open Bandit Dataset folder.")
    ] = None,
    campaign: Annotated[str, typer.Option(help="--format obd: all | men | women.")] = "all",
    logging_policy: Annotated[
        str, typer.Option(help="--format obd: whose logs (random | bts).")
    ] = "random",
    n_sim: Annotated[
        int, typer.Option(help="--format obd: Monte Carlo draws of the action distribution.")
    ] = 100_000,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed (bootstrap; OBD Monte Carlo).")] = 12345,
    as_json: JsonFlag = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
) -> None:
    """Estimate a candidate policy's reward rate (IPW, SNIPW, DR with bootstrap intervals)."""
    try:
        if format == "obd":
            report = _obd(data, campaign, logging_policy, policy, n_sim, seed, bootstrap)
        elif format == "loopwise":
            report = _loopwise(
                data_dir, workspace, policy, slot, start, end, reward, bootstrap, seed
            )
        else:
            raise typer.BadParameter("use --format loopwise or --format obd", param_hint="format")
    except NotEstimable as exc:
        err_console.print(f"[red]not estimable:[/red] {exc.detail}", highlight=False)
        raise typer.Exit(code=NOT_ESTIMABLE_EXIT) from None
    except LoopwiseError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report)


def _obd(
    data: Path | None,
    campaign: str,
    logging_policy: str,
    policy: str,
    n_sim: int,
    seed: int,
    bootstrap: int,
) -> dict[str, Any]:
    from loopwise.ope.obd import evaluate_obd

    if data is None:
        raise typer.BadParameter("--format obd needs --data <folder>", param_hint="data")
    return evaluate_obd(
        data,
        campaign=campaign,
        logging_policy=logging_policy,
        policy=policy,
        n_sim=n_sim,
        seed=seed,
        n_bootstrap=bootstrap,
    )


def _loopwise(
    data_dir: Path,
    workspace: Path | None,
    policy: str,
    slot: str | None,
    start: str | None,
    end: str | None,
    reward: str,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    from loopwise.ope import policies
    from loopwise.ope.service import OpeService, parse_request

    document: dict[str, Any] = {"reward": reward, "bootstrap": bootstrap, "seed": seed}
    path = Path(policy)
    is_file = path.suffix in (".yaml", ".yml", ".json")
    document["policy"] = policies.load_file(path) if is_file else policy
    if slot is not None:
        document["slot"] = slot
    if start is not None:
        document["from"] = start
    if end is not None:
        document["to"] = end
    request = parse_request(document)
    with open_engine(data_dir, workspace) as engine:
        services = engine.services
        service = OpeService(
            services.storage, lambda: services.workspace.compiled, services.bandits
        )
        try:
            return service.run(request)
        except NotEstimable as exc:  # past open_engine's own error exit (code 2)
            refused = exc
    raise refused
