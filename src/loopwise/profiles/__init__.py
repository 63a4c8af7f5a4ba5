"""Profiles: the per-user state the loop personalizes on.

:func:`reducer.reduce` folds one event into a :class:`model.Profile`; :func:`reducer.merge` joins
two profiles when identity resolution finds they are one person; :meth:`model.Profile.attributes`
and :func:`context.request_context_attributes` give conditions their ``profile.*`` and
``context.*`` namespaces.
"""

from __future__ import annotations

from loopwise.profiles.context import request_context_attributes
from loopwise.profiles.model import Profile
from loopwise.profiles.reducer import merge, reduce
from loopwise.profiles.settings import EngagementWeights, ProfileSettings
from loopwise.profiles.traffic import TRAFFIC_SOURCES, classify_source
from loopwise.profiles.useragent import DEVICE_TYPES, parse_device

__all__ = [
    "DEVICE_TYPES",
    "TRAFFIC_SOURCES",
    "EngagementWeights",
    "Profile",
    "ProfileSettings",
    "classify_source",
    "merge",
    "parse_device",
    "reduce",
    "request_context_attributes",
]
