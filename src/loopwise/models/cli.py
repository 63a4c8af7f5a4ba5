"""``loopwise evaluate``: offline evaluation of the recommenders on an interaction log.

``evaluate_app`` is a Typer app whose callback is the command, so it can be mounted with
``app.add_typer(evaluate_app, name="evaluate")`` and run as ``loopwise evaluate --data ...``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loopwise.catalog.items import Item
from loopwise.cli_options import console, fail
from loopwise.cli_tables import print_table
from loopwise.errors import LoopwiseError, ValidationFailed
from loopwise.models.datasets import (
    read_csv,
    read_jsonl,
    read_movielens,
    read_otto,
    read_segments,
)
from loopwise.models.evaluate import EXTRA_MODEL_NAMES, MODEL_NAMES, evaluate
from loopwise.models.interactions import Interaction, interactions_from_logged

evaluate_app = typer.Typer(
    help="Evaluate the recommenders offline on a temporal split.", add_completion=False
)


class DataFormat(StrEnum):
    loopwise = "loopwise"
    csv = "csv"
    jsonl = "jsonl"
    movielens = "movielens"
    otto = "otto"


def read_loopwise(data_dir: Path) -> tuple[list[Interaction], dict[str, Item]]:
    """Interactions and catalog of a Loopwise data directory (its ``loopwise.db``). Events are
    attributed to profiles through the stored identity links (an id never linked stands for
    itself)."""
    from loopwise.storage.sqlite import SqliteStorage

    db = data_dir / "loopwise.db"
    if not db.is_file():
        raise ValidationFailed(f"{db} does not exist; point --data at a Loopwise data directory")
    storage = SqliteStorage(db)
    try:
        interactions = list(interactions_from_logged(storage.events.iter()))
        items = {record["id"]: Item.from_record(record) for record in storage.catalog.all()}
    finally:
        storage.close()
    return interactions, items


def read_loopwise_segments(data_dir: Path, profile_ids: Iterable[str]) -> dict[str, set[str]]:
    """The segments each profile is in now, replayed from the stored segment history (the
    per-segment breakdown of an evaluation on the engine's own data)."""
    from loopwise.storage.sqlite import SqliteStorage

    storage = SqliteStorage(data_dir / "loopwise.db")
    try:
        out: dict[str, set[str]] = {}
        for pid in profile_ids:
            current: set[str] = set()
            for change in storage.segment_history.for_profile(pid):
                if change.change == "entered":
                    current.add(change.segment)
                else:
                    current.discard(change.segment)
            if current:
                out[pid] = current
    finally:
        storage.close()
    return out


def load(path: Path, fmt: DataFormat) -> tuple[list[Interaction], dict[str, Item] | None]:
    if fmt is DataFormat.loopwise:
        return read_loopwise(path)
    readers = {
        DataFormat.csv: read_csv,
        DataFormat.jsonl: read_jsonl,
        DataFormat.movielens: read_movielens,
        DataFormat.otto: read_otto,
    }
    return readers[fmt](path), None


def render(result: dict[str, object]) -> Table:
    models = result["models"]
    assert isinstance(models, dict)
    columns = list(next(iter(models.values())).keys()) if models else []
    table = Table(title="Offline evaluation (temporal split)")
    table.add_column("model", no_wrap=True, min_width=10)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for name, metrics in models.items():
        table.add_row(name, *(f"{metrics[c]:.4f}" for c in columns))
    return table


@evaluate_app.callback(invoke_without_command=True)
def evaluate_command(
    data: Annotated[Path, typer.Option("--data", help="Data file or directory.")],
    fmt: Annotated[
        DataFormat, typer.Option("--format", help="How to read --data.")
    ] = DataFormat.loopwise,
    models: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated models (default: all of {', '.join(MODEL_NAMES)}; also "
            f"{', '.join(EXTRA_MODEL_NAMES)} with the embeddings extra)."
        ),
    ] = None,
    k: Annotated[int, typer.Option(help="Cut-off for nDCG/precision/MAP/coverage.")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed for the models.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Tune the hybrid and ALS/EASE/item-kNN/transitions with Optuna first, on a "
            "validation split carved from the training part (never the test part).",
        ),
    ] = False,
    tune_seconds: Annotated[
        float | None,
        typer.Option(
            "--tune-seconds", min=1.0, help="Tuning budget per model (implies --tune; default 30)."
        ),
    ] = None,
    segments_file: Annotated[
        Path | None,
        typer.Option(
            "--segments",
            help="CSV (user,segment) of segment memberships for a per-segment breakdown "
            "(--format loopwise uses the stored segments).",
        ),
    ] = None,
) -> None:
    """Fit every model on each user's past and score how well it predicts what came next."""
    chosen = [m.strip() for m in models.split(",") if m.strip()] if models else None
    try:
        interactions, items = load(data, fmt)
        segments: dict[str, set[str]] = {}
        if segments_file is not None:
            segments = read_segments(segments_file)
        elif fmt is DataFormat.loopwise:
            segments = read_loopwise_segments(data, {it.user for it in interactions})
        budget = tune_seconds if tune_seconds is not None else (30.0 if tune else None)
        result = evaluate(
            interactions,
            chosen,
            k=k,
            seed=seed,
            items=items,
            segments=segments,
            tune_seconds=budget,
        )
    except LoopwiseError as exc:
        raise fail(exc) from None
    split = result["split"]
    console.print(
        f"{split['users']} test users, {split['train']} training and {split['test']} test "
        f"interactions, {split['skipped_users']} users skipped (fewer than 5 interactions)"
    )
    print_table(render(result), console)
    for name, found in result.get("tuning", {}).items():
        console.print(
            f"tuned {name}: {found['trials']} trials in {found['seconds']:.1f} s, validation "
            f"ndcg@{k} {found['default_ndcg']:.4f} (defaults) -> {found['best_ndcg']:.4f}"
        )
    hybrid = result.get("hybrid")
    if hybrid:
        weights = ", ".join(f"{n} {w:g}" for n, w in hybrid["weights"].items() if w)
        console.print(f"hybrid weights: {weights}; fold-in half-life {hybrid['half_life']}")
    for label, by_model in result["segments"].items():
        users = next(iter(by_model.values()))["users"]
        best = max(by_model, key=lambda name: by_model[name][f"ndcg@{k}"])
        cells = ", ".join(f"{name} {m[f'ndcg@{k}']:.4f}" for name, m in by_model.items())
        console.print(f"segment {label} ({users} users), ndcg@{k}: {cells}; best {best}")
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
