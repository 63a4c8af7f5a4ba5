"""The predict stage: recommenders behind one interface, offline metrics and evaluation.

- :mod:`.interactions` — ``Interaction``, ``InteractionMatrix`` (users x items, CSR)
- :mod:`.base` — the ``Recommender`` protocol (fit, score rows, recommend, similar items)
- models — ``PopularityModel``, ``ALSModel``, ``BPRModel``, ``EASEModel``, ``ItemKNNModel``,
  ``ContentModel``, ``HybridModel``
- :mod:`.metrics`, :mod:`.split`, :mod:`.datasets`, :mod:`.evaluate` — offline evaluation
"""

from __future__ import annotations

from loopwise.models.als import ALSModel, BPRModel
from loopwise.models.base import Recommender
from loopwise.models.content import ContentModel
from loopwise.models.ease import EASEModel
from loopwise.models.hybrid import HybridModel
from loopwise.models.interactions import Interaction, InteractionMatrix, interactions_from_events
from loopwise.models.item_knn import ItemKNNModel
from loopwise.models.popularity import PopularityModel

__all__ = [
    "ALSModel",
    "BPRModel",
    "ContentModel",
    "EASEModel",
    "HybridModel",
    "Interaction",
    "InteractionMatrix",
    "ItemKNNModel",
    "PopularityModel",
    "Recommender",
    "interactions_from_events",
]
