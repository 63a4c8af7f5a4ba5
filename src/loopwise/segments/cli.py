"""``loopwise cluster``: fit K-Means on the stored profiles and publish the clusters as segments.

``cluster_app`` is a Typer app whose callback is the command, mounted with
``app.add_typer(cluster_app, name="cluster")``. A running server does the same through
``POST /v1/admin/cluster``; a server started later loads the published clusters from storage.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from loopwise.cli_options import (
    DEFAULT_DATA_DIR,
    DataDir,
    JsonFlag,
    WorkspaceFile,
    console,
    open_engine,
)
from loopwise.cli_tables import print_table
from loopwise.segments.clusters import DEFAULT_K_RANGE, feature_label, format_value

cluster_app = typer.Typer(
    help="Group profiles with K-Means and publish the groups as segments.", add_completion=False
)


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
    data_dir: DataDir = DEFAULT_DATA_DIR,
    workspace: WorkspaceFile = None,
    k_min: Annotated[int, typer.Option("--k-min", help="Fewest clusters to try.")] = (
        DEFAULT_K_RANGE[0]
    ),
    k_max: Annotated[int, typer.Option("--k-max", help="Most clusters to try.")] = (
        DEFAULT_K_RANGE[1]
    ),
    seed: Annotated[int, typer.Option(help="Random seed (K-Means starts, samples).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Fit K-Means on recency, frequency, monetary value, engagement and category affinities,
    pick k by silhouette and publish each cluster as segment cluster_<n>."""
    with open_engine(data_dir, workspace) as engine:
        report = engine.cluster(k_min, k_max, seed)
    if as_json:
        console.print_json(json.dumps(report))
        return
    scores = ", ".join(f"k={k}: {s:.3f}" for k, s in report["silhouette_by_k"].items())
    console.print(f"silhouette by k: {scores}")
    console.print(
        f"chose k={report['k']} (silhouette {report['silhouette']:.3f} on "
        f"{report['silhouette_sample']} profiles)"
    )
    print_table(render(report), console)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(
        f"Published {report['k']} segments ({', '.join(c['key'] for c in report['clusters'])}). "
        "A server already running on this data directory picks them up when restarted; "
        "POST /v1/admin/cluster refits and applies them without a restart."
    )
