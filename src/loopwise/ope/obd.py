"""Open Bandit Dataset (ZOZOTOWN; Saito et al., NeurIPS Datasets and Benchmarks 2021) logs, and
its production Bernoulli Thompson sampling policy rebuilt for off-policy evaluation.

The logs are read as Open Bandit Pipeline's ``OpenBanditDataset`` reads them: rows sorted by
``timestamp``, the action is ``item_id``, the position is the dense rank of ``position`` less one
(0-indexed; three positions, ``len_list`` 3), the reward is ``click`` and the propensity is
``propensity_score``. Context features for the reward model are the four hashed user features,
one-hot.

``obd-bts`` is the policy that logged ``bts/``: Bernoulli Thompson sampling from the production
Beta priors (``prior_bts.yaml``), ranking items by one posterior draw each and showing the top
three. Its action distribution — the probability of each item in each position — is rebuilt by
Monte Carlo exactly as Open Bandit Pipeline's ``BernoulliTS.compute_batch_action_dist`` does it
(``n_sim`` = 100,000 draws from a ``numpy.random.RandomState`` seeded 12345, the seed of OBP's
quickstart; the posterior equals the prior since the policy is not updated), so the estimates
here can be compared with OBP's to the digit.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from scipy import sparse
from sklearn.preprocessing import OneHotEncoder

from loopwise.errors import NotFound, ValidationFailed
from loopwise.ope.data import LoggedData

CAMPAIGNS = ("all", "men", "women")
LOGGING_POLICIES = ("random", "bts")
OBD_POLICIES = ("obd-bts", "obd-random")
DEFAULT_N_SIM = 100_000
DEFAULT_SEED = 12345
LEN_LIST = 3
_CHUNK = 10_000


def _dense_rank0(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """scipy's ``rankdata(values, "dense") - 1``: 0 for the smallest distinct value, ..."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.int64)


def read_obd(data: Path, campaign: str, logging_policy: str) -> LoggedData:
    """The logs of ``logging_policy`` (random | bts) in ``campaign`` (all | men | women)."""
    if campaign not in CAMPAIGNS:
        raise ValidationFailed(
            f"Unknown campaign {campaign!r}; use one of {', '.join(CAMPAIGNS)}.", field="campaign"
        )
    if logging_policy not in LOGGING_POLICIES:
        raise ValidationFailed(
            f"Unknown logging policy {logging_policy!r}; use one of {', '.join(LOGGING_POLICIES)}.",
            field="logging_policy",
        )
    path = data / logging_policy / campaign / f"{campaign}.csv"
    if not path.is_file():
        raise NotFound(
            f"No Open Bandit Dataset file at {path}; --data must be the folder holding "
            "random/ and bts/.",
            field="data",
        )
    rows: list[dict[str, str]] = []
    with path.open(newline="") as handle:
        rows.extend(csv.DictReader(handle))
    if not rows:
        raise ValidationFailed(f"{path} has no rows", field="data")
    # OBP sorts by timestamp (pandas' default sort); the estimates do not depend on the order
    rows.sort(key=lambda row: row["timestamp"])
    action = np.array([int(row["item_id"]) for row in rows], dtype=np.int64)
    position = _dense_rank0(np.array([int(row["position"]) for row in rows], dtype=np.int64))
    reward = np.array([float(row["click"]) for row in rows])
    pscore = np.array([float(row["propensity_score"]) for row in rows])
    n_actions = int(action.max()) + 1
    item_context = path.parent / "item_context.csv"
    if item_context.is_file():
        with item_context.open(newline="") as handle:
            n_actions = max(n_actions, sum(1 for _ in csv.DictReader(handle)))
    user_cols = sorted(c for c in rows[0] if c.startswith("user_feature_"))
    users = np.array([[row[c] for c in user_cols] for row in rows], dtype=object)
    features = sparse.csr_matrix(OneHotEncoder(handle_unknown="ignore").fit_transform(users))
    logging_dist = None
    if logging_policy == "random":  # uniform: every item in every position with 1/n_actions
        logging_dist = np.full((len(rows), n_actions), 1.0 / n_actions)
    return LoggedData(
        action=action,
        position=position,
        reward=reward,
        pscore=pscore,
        action_names=[str(i) for i in range(n_actions)],
        features=features,
        len_list=int(position.max()) + 1,
        logging_dist=logging_dist,
        source={
            "format": "obd",
            "file": str(path),
            "campaign": campaign,
            "logging_policy": logging_policy,
        },
    )


def on_policy_value(data: Path, campaign: str, policy: str) -> float | None:
    """The observed click rate of ``policy``'s own logs (the ground truth OPE is checked
    against), or None when they are not there."""
    path = data / policy / campaign / f"{campaign}.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        clicks = [float(row["click"]) for row in csv.DictReader(handle)]
    return float(np.mean(clicks)) if clicks else None


def load_priors(path: Path, campaign: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The production Beta priors (alpha, beta per item) of one campaign."""
    if not path.is_file():
        raise NotFound(f"No BTS prior file at {path} (prior_bts.yaml).", field="data")
    with path.open("rb") as handle:
        priors: Any = yaml.safe_load(handle)
    try:
        alpha = np.asarray(priors[campaign]["alpha"], dtype=np.float64)
        beta = np.asarray(priors[campaign]["beta"], dtype=np.float64)
    except (KeyError, TypeError) as exc:
        raise ValidationFailed(
            f"{path} has no alpha/beta for campaign {campaign!r}", field="campaign"
        ) from exc
    return alpha, beta


def bts_action_dist(
    alpha: NDArray[np.float64],
    beta: NDArray[np.float64],
    len_list: int = LEN_LIST,
    *,
    n_sim: int = DEFAULT_N_SIM,
    seed: int | None = DEFAULT_SEED,
) -> NDArray[np.float64]:
    """(n_actions, len_list): how often each item lands in each position when every item draws
    one value from its Beta(alpha, beta) and the top ``len_list`` are shown, over ``n_sim``
    draws. The draws are the same stream as ``n_sim`` successive ``RandomState.beta(alpha,
    beta)`` calls (legacy numpy draws element by element, so drawing a block of rows at once
    gives the same numbers), and ties break as ``argsort()[::-1]`` breaks them."""
    n_actions = len(alpha)
    random = np.random.RandomState(seed)
    counts = np.zeros((n_actions, len_list))
    done = 0
    while done < n_sim:
        size = min(_CHUNK, n_sim - done)
        draws = random.beta(alpha, beta, size=(size, n_actions))
        top = np.argsort(draws, axis=1)[:, ::-1][:, :len_list]
        for pos in range(len_list):
            counts[:, pos] += np.bincount(top[:, pos], minlength=n_actions)
        done += size
    return counts / n_sim


def obd_policy_dist(
    name: str, data: Path, campaign: str, n_actions: int, *, n_sim: int, seed: int | None
) -> NDArray[np.float64]:
    """The action distribution (n_actions, len_list) of a named Open Bandit Dataset policy."""
    if name == "obd-random":
        return np.full((n_actions, LEN_LIST), 1.0 / n_actions)
    if name == "obd-bts":
        alpha, beta = load_priors(data / "prior_bts.yaml", campaign)
        if len(alpha) != n_actions:
            raise ValidationFailed(
                f"prior_bts.yaml has {len(alpha)} items for {campaign!r}, the logs {n_actions}",
                field="policy",
            )
        return bts_action_dist(alpha, beta, LEN_LIST, n_sim=n_sim, seed=seed)
    raise ValidationFailed(
        f"Unknown Open Bandit Dataset policy {name!r}; use one of {', '.join(OBD_POLICIES)}.",
        field="policy",
    )


def evaluate_obd(
    data: Path,
    *,
    campaign: str,
    logging_policy: str,
    policy: str,
    n_sim: int = DEFAULT_N_SIM,
    seed: int = DEFAULT_SEED,
    n_bootstrap: int = 1000,
) -> dict[str, Any]:
    """Estimate a named policy's click rate from one logging policy's Open Bandit Dataset logs.
    The report has the estimates and, as the ground truth to compare them with, the on-policy
    click rate of the candidate's own logs when the data set has them (``bts/`` for obd-bts)."""
    from loopwise.ope.evaluate import evaluate

    logged = read_obd(data, campaign, logging_policy)
    dist = obd_policy_dist(policy, data, campaign, logged.n_actions, n_sim=n_sim, seed=seed)
    pi_full = np.ascontiguousarray(dist[:, logged.position].T)  # (rounds, actions)
    report = evaluate(logged, pi_full, n_bootstrap=n_bootstrap, seed=seed)
    own = policy.removeprefix("obd-")
    return {
        "format": "obd",
        "data": str(data),
        "campaign": campaign,
        "logging_policy": logging_policy,
        "policy": policy,
        "action_dist": {"method": "monte_carlo", "n_sim": n_sim, "seed": seed},
        **report,
        "on_policy_value": on_policy_value(data, campaign, own),
    }
