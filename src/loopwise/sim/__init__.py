"""Synthetic population for demos, tests and benchmarks.

A seeded world of users with hidden tastes and a catalog with hidden item vectors; visits emit the
Segment messages a real site would send, and a ground-truth choice model
(:mod:`loopwise.sim.behaviour`) makes outcomes depend on what the site shows, so personalization
can really lift conversion and a bad policy can really hurt. ``Simulation(SimConfig(seed=...))``
is the entry point; ``interaction_log`` feeds offline recommender benchmarks.
"""

from __future__ import annotations

from loopwise.sim.behaviour import BehaviourParams, ChoiceModel, true_utility, utilities
from loopwise.sim.catalog import DEFAULT_CATEGORIES, SimCatalog, generate_catalog
from loopwise.sim.population import SimUser, generate_population
from loopwise.sim.runner import (
    ArmSummary,
    LearningPolicy,
    PopularPolicy,
    SimConfig,
    SimResult,
    Simulation,
    SplitPolicy,
    interaction_log,
    oracle_policy,
    popular_policy,
    random_policy,
    split_policy,
    worst_policy,
)
from loopwise.sim.session import (
    Policy,
    PolicyRequest,
    PolicyResponse,
    SessionOutcome,
    SlotAsk,
    simulate_session,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "ArmSummary",
    "BehaviourParams",
    "ChoiceModel",
    "LearningPolicy",
    "Policy",
    "PolicyRequest",
    "PolicyResponse",
    "PopularPolicy",
    "SessionOutcome",
    "SimCatalog",
    "SimConfig",
    "SimResult",
    "SimUser",
    "Simulation",
    "SlotAsk",
    "SplitPolicy",
    "generate_catalog",
    "generate_population",
    "interaction_log",
    "oracle_policy",
    "popular_policy",
    "random_policy",
    "simulate_session",
    "split_policy",
    "true_utility",
    "utilities",
    "worst_policy",
]
