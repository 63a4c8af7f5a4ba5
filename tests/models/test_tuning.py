"""Optuna tuning within a budget, on a validation split carved from training data."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.models.cli import evaluate_app
from loopwise.models.evaluate import evaluate
from loopwise.models.movielens_like import MovieLensLikeConfig, generate, write_ratings
from loopwise.models.split import temporal_split
from loopwise.models.tuning import Validation, tune_hybrid, tune_model
from tests.models.synthetic import write_workspace
from tests.models.test_train_cli import ENV, fill

DATA = generate(MovieLensLikeConfig(n_users=80, n_items=300, interactions=2400, seed=2))


def test_a_study_starts_from_the_defaults_and_never_ends_worse() -> None:
    found = tune_model("ease", DATA, seconds=60, max_trials=6)
    assert found.trials == 6
    assert found.best_ndcg >= found.default_ndcg > 0
    assert set(found.params["ease"]) == {"l2"}
    assert found.as_dict()["params"] == found.params


def test_the_validation_split_never_sees_the_test_part() -> None:
    split = temporal_split(DATA)
    validation = Validation.carve(split.train)
    assert validation is not None
    test_pairs = {(it.user, it.item) for it in split.test}
    train = validation.train
    rows, cols = validation.relevant.nonzero()
    pairs = zip(rows, cols, strict=True)
    relevant = {(train.user_index.id_of(r), train.item_index.id_of(c)) for r, c in pairs}
    assert relevant and not relevant & test_pairs


def test_tune_hybrid_stages_components_then_blend() -> None:
    found = tune_hybrid(DATA, ["popularity", "ease", "transitions"], seconds=60, max_trials=3)
    assert set(found.params) == {"ease", "transitions"}
    assert found.best_ndcg >= found.default_ndcg > 0
    assert set(found.hybrid) == {"weights", "half_life", "recent_items", "recent_decay"}


def test_evaluate_with_a_budget_reports_the_tuning() -> None:
    result = evaluate(DATA, ["ease", "hybrid"], tune_seconds=2.0)
    assert set(result["tuning"]) == {"ease", "hybrid"}
    assert result["tuning"]["ease"]["trials"] >= 1
    assert result["models"]["hybrid"]["ndcg@10"] > 0


def test_cli_evaluate_tune_seconds(tmp_path: Path) -> None:
    ratings = write_ratings(DATA, tmp_path / "ratings.dat")
    out = tmp_path / "result.json"
    run = CliRunner().invoke(
        evaluate_app,
        ["--data", str(ratings), "--format", "movielens", "--models", "ease,transitions",
         "--tune-seconds", "1", "--json", str(out)],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "tuned ease:" in run.output and "diversity@10" in run.output
    assert set(json.loads(out.read_text())["tuning"]) == {"ease", "transitions"}


def test_cli_train_tune(tmp_path: Path) -> None:
    workspace = write_workspace(tmp_path)
    data = tmp_path / "data"
    fill(data, workspace, users=30)
    args = ["--data-dir", str(data), "--workspace", str(workspace), "--tune-seconds", "2"]
    run = CliRunner().invoke(app, ["train", *args, "--json"], env=ENV)
    assert run.exit_code == 0, run.output
    meta = json.loads(run.output)
    tuning = meta["tuning"]["hybrid"]
    assert tuning["trials"] >= 2 and tuning["best_ndcg"] >= tuning["default_ndcg"]
    assert set(meta["recency"]) == {"half_life", "recent_items", "recent_decay"}


def test_each_search_starts_from_the_models_own_defaults() -> None:
    import optuna

    from loopwise.models.tuning import TUNED_PARAMETERS, _defaults, _suggest, build

    for name, params in TUNED_PARAMETERS.items():
        defaults = _defaults(name)
        suggested = _suggest(optuna.trial.FixedTrial(defaults), name)
        assert tuple(suggested) == params, name  # the table names what the search tunes
        model = build(name, {}, 0)
        assert all(getattr(model, p) == v for p, v in suggested.items()), name
