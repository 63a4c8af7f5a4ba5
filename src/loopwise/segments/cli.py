"""``loopwise cluster``: fit K-Means on the stored profiles and publish the clusters as segments.

``cluster_app`` is a Typer app whose callback is the command, mounted with
``app.add_typer(cluster_app, name="cluster")``. A running server does the same through
``POST /v1/admin/cluster``; a server started later loads the published clusters from storage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loopwise.errors import LoopwiseError
from loopwise.segments.clusters import DEFAULT_K_RANGE, feature_label, format_value

cluster_app = typer.Typer(
    help="Group profiles with K-Means and publish the groups as segments.", add_completion=False
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def render(report: dict[str, Any]) -> Table:
    """The clusters, one row each: key, name, size and the features that set it apart."""
    table = Table(title=f"{report['k']} clusters over {report['profiles']} profiles")
    table.add_column("segment", no_wrap=True)
    table.add_column("name")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("distinctive (cluster mean vs all, z)")
    for cluster in report["clusters"]:
        distinctive = "; ".join(
            f"{feature_label(d['feature'])} {format_value(d['mean'])} vs "
            f"{format_value(d['overall'])} ({d['z']:+.1f})"
            for d in cluster["distinctive"]
        )
        table.add_row(
            cluster["key"],
            cluster["name"],
            f"{cluster['size']} ({cluster['share']:.0%})",
            distinctive,
        )
    return table


@cluster_app.callback(invoke_without_command=True)
def cluster_command(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the SQLite database and keys live.")
    ] = Path(os.environ.get("LOOPWISE_DATA_DIR", "loopwise-data")),
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="Workspace file (loopwise.yaml). Default: the demo."),
    ] = None,
    k_min: Annotated[int, typer.Option("--k-min", help="Fewest clusters to try.")] = (
        DEFAULT_K_RANGE[0]
    ),
    k_max: Annotated[int, typer.Option("--k-max", help="Most clusters to try.")] = (
        DEFAULT_K_RANGE[1]
    ),
    seed: Annotated[int, typer.Option(help="Random seed (K-Means starts, samples).")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of a table.")
    ] = False,
) -> None:
    """Fit K-Means on recency, frequency, monetary value, engagement and category affinities,
    pick k by silhouette and publish each cluster as segment cluster_<n>."""
    from loopwise.engine import Engine

    try:
        engine, _ = Engine.open(data_dir, workspace)
    except LoopwiseError as exc:
        raise _fail(exc) from None
    try:
        report = engine.cluster(k_min, k_max, seed)
    except LoopwiseError as exc:
        raise _fail(exc) from None
    finally:
        engine.close()
    if as_json:
        console.print_json(json.dumps(report))
        return
    scores = ", ".join(f"k={k}: {s:.3f}" for k, s in report["silhouette_by_k"].items())
    console.print(f"silhouette by k: {scores}")
    console.print(
        f"chose k={report['k']} (silhouette {report['silhouette']:.3f} on "
        f"{report['silhouette_sample']} profiles)"
    )
    console.print(render(report))
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(
        f"Published {report['k']} segments ({', '.join(c['key'] for c in report['clusters'])}). "
        "A server already running on this data directory picks them up when restarted; "
        "POST /v1/admin/cluster refits and applies them without a restart."
    )


def _fail(exc: LoopwiseError) -> typer.Exit:
    where = f" (at {exc.field})" if exc.field else ""
    err_console.print(f"[red]error:[/red] {exc.detail}{where}")
    return typer.Exit(code=2)
