"""Open Bandit Dataset: the BTS policy's click rate estimated from the random policy's logs
equals Open Bandit Pipeline's IPW estimate (the issue's target: 3 significant digits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from loopwise.cli import app
from loopwise.ope.obd import bts_action_dist, evaluate_obd, load_priors, read_obd

OBD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "obd"
needs_obd = pytest.mark.skipif(not OBD.exists(), reason=f"Open Bandit Dataset not found at {OBD}")

# Open Bandit Pipeline 0.4.1, measured (docs/ope.md): OpenBanditDataset(random, all),
# BernoulliTS(n_actions=80, len_list=3, is_zozotown_prior=True, campaign="all",
# random_state=12345).compute_batch_action_dist(n_sim=100000), then
# OffPolicyEvaluation(..., [InverseProbabilityWeighting()]).estimate_policy_values
OBP_IPW = 0.00455288
OBP_SNIPW = 0.0047758330812309535


def _sig3(value: float) -> str:
    return f"{value:.3g}"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return evaluate_obd(OBD, campaign="all", logging_policy="random", policy="obd-bts")


@needs_obd
def test_reads_obd_as_open_bandit_pipeline_does() -> None:
    data = read_obd(OBD, "all", "random")
    assert data.n_rounds == 10_000
    assert data.n_actions == 80
    assert data.len_list == 3
    assert set(data.position.tolist()) == {0, 1, 2}  # 1..3 in the file, 0-indexed
    assert np.allclose(data.pscore, 1 / 80)
    assert data.reward.sum() == 38


@needs_obd
def test_bts_ipw_estimate_equals_open_bandit_pipelines(report: dict[str, Any]) -> None:
    ours = report["estimates"]["ipw"]["value"]
    assert _sig3(ours) == _sig3(OBP_IPW) == "0.00455"
    assert ours == pytest.approx(OBP_IPW, rel=1e-9)  # the same Monte Carlo stream: equal
    assert report["estimates"]["snipw"]["value"] == pytest.approx(OBP_SNIPW, rel=1e-9)
    for name in ("ipw", "snipw", "dr"):
        estimate = report["estimates"][name]
        assert estimate["interval"]["lower"] <= estimate["value"] <= estimate["interval"]["upper"]
    # the ground truth: BTS's own logs clicked 42 of 10,000
    assert report["on_policy_value"] == pytest.approx(0.0042)
    assert report["estimates"]["dr"]["interval"]["lower"] < 0.0042


@needs_obd
def test_a_different_seed_moves_the_estimate() -> None:
    """The Monte Carlo stream matters at this precision: why the seed is OBP's (12345)."""
    alpha, beta = load_priors(OBD / "prior_bts.yaml", "all")
    a = bts_action_dist(alpha, beta, n_sim=20_000, seed=12345)
    b = bts_action_dist(alpha, beta, n_sim=20_000, seed=1)
    assert np.allclose(a.sum(axis=0), 1.0)
    assert not np.array_equal(a, b)


def test_action_dist_is_the_same_stream_as_one_draw_at_a_time() -> None:
    """OBP draws ``RandomState.beta(alpha, beta)`` once per simulation; drawing blocks of rows
    must give the same counts."""
    alpha = np.array([3.0, 5.0, 2.0, 8.0, 1.0])
    beta = np.array([30.0, 40.0, 10.0, 90.0, 5.0])
    random = np.random.RandomState(12345)
    counts = np.zeros((5, 2))
    for _ in range(3000):
        top = random.beta(a=alpha, b=beta).argsort()[::-1][:2]
        for pos in range(2):
            counts[top[pos], pos] += 1
    assert np.array_equal(bts_action_dist(alpha, beta, 2, n_sim=3000, seed=12345), counts / 3000)


@needs_obd
def test_open_bandit_pipeline_itself_when_installed() -> None:
    """A live comparison with obp (test-only; never a runtime dependency)."""
    obp = pytest.importorskip("obp", reason="obp (Open Bandit Pipeline) is not installed")
    pd = pytest.importorskip("pandas")
    from obp.dataset import OpenBanditDataset
    from obp.ope import InverseProbabilityWeighting, OffPolicyEvaluation
    from obp.policy import BernoulliTS

    class Dataset(OpenBanditDataset):  # type: ignore[misc]
        def pre_process(self) -> None:  # obp 0.4.1's calls a pandas 1 signature
            users = self.data.loc[:, self.data.columns.str.contains("user_feature")]
            self.context = pd.get_dummies(users, drop_first=True).values
            self.action_context = self.item_context.values

    dataset = Dataset(behavior_policy="random", campaign="all", data_path=OBD)
    feedback = dataset.obtain_batch_bandit_feedback()
    policy = BernoulliTS(
        n_actions=dataset.n_actions,
        len_list=dataset.len_list,
        is_zozotown_prior=True,
        campaign="all",
        random_state=12345,
    )
    action_dist = policy.compute_batch_action_dist(n_sim=100_000, n_rounds=feedback["n_rounds"])
    ope = OffPolicyEvaluation(
        bandit_feedback=feedback, ope_estimators=[InverseProbabilityWeighting()]
    )
    theirs = ope.estimate_policy_values(action_dist=action_dist)["ipw"]
    assert obp.__version__
    assert float(theirs) == pytest.approx(OBP_IPW, rel=1e-9)
    ours = evaluate_obd(OBD, campaign="all", logging_policy="random", policy="obd-bts")
    assert _sig3(ours["estimates"]["ipw"]["value"]) == _sig3(float(theirs))


@needs_obd
def test_the_issue_command() -> None:
    result = CliRunner().invoke(
        app,
        [
            "ope", "--format", "obd", "--data", str(OBD), "--campaign", "all",
            "--logging-policy", "random", "--policy", "obd-bts", "--json", "--bootstrap", "200",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert set(body["estimates"]) == {"ipw", "snipw", "dr"}
    assert _sig3(body["estimates"]["ipw"]["value"]) == "0.00455"
    assert set(body["estimates"]["dr"]["interval"]) >= {"lower", "upper"}


@needs_obd
def test_unknown_obd_policy_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        app, ["ope", "--format", "obd", "--data", str(OBD), "--policy", "obd-nope"]
    )
    assert result.exit_code == 2
    assert "obd-bts" in result.output
