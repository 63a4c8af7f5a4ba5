"""The channel services (campaign decisions and search reranking), built by the composition root
over the decide service, the views and the live workspace."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loopwise.catalog.items import Item
from loopwise.channels.batch import BatchService
from loopwise.channels.rerank import RerankService
from loopwise.clock import Clock
from loopwise.decide.service import DecideService
from loopwise.decide.strategies import StrategyRegistry
from loopwise.storage.stores import Storage
from loopwise.views import Views
from loopwise.workspace.compiled import CompiledWorkspace


@dataclass(frozen=True, slots=True)
class Channels:
    batch: BatchService
    rerank: RerankService


def build_channels(
    storage: Storage,
    views: Views,
    decide: DecideService,
    compiled: Callable[[], CompiledWorkspace],
    catalog: Callable[[], Mapping[str, Item]],
    strategies: StrategyRegistry,
    clock: Clock,
) -> Channels:
    return Channels(
        batch=BatchService(storage, views, decide, compiled, catalog, clock, time.perf_counter),
        rerank=RerankService(views, decide, compiled, catalog, strategies, clock),
    )
