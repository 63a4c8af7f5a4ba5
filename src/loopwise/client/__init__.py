"""Loopwise from a site's server: :class:`Client` / :class:`AsyncClient` (httpx, retries,
timeouts, a circuit breaker that falls back to defaults) and server-side slot rendering (a Jinja2
helper and an ASGI middleware). See docs/delivery.md."""

from __future__ import annotations

from loopwise.client.breaker import CircuitBreaker
from loopwise.client.client import AsyncClient, Client, LoopwiseClientError
from loopwise.client.render import LoopwiseMiddleware, install_jinja, render_slot
from loopwise.client.slots_html import fill_slots, slot_keys

__all__ = [
    "AsyncClient",
    "CircuitBreaker",
    "Client",
    "LoopwiseClientError",
    "LoopwiseMiddleware",
    "fill_slots",
    "install_jinja",
    "render_slot",
    "slot_keys",
]
